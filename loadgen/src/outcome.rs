//! What became of one order: the reply (or error) classified into what the report counts.
//!
//! - An `Order` reply for the order sent, with status `Committed` or `Queued`, counts as
//!   committed (queued: accepted, durable, waiting on the payment gateway; the report also
//!   counts those apart as `queued`). Status `Rejected` counts as rejected. Those three are
//!   the acknowledged outcomes, the ones written to the `--record` file.
//! - Anything else is an error, keyed by a short kind name: the server's typed error
//!   (`overloaded`, `not_primary`, `unavailable`, `invalid`, `internal`, ...), a client
//!   failure (`timeout`, `connection_closed`, `io`, `frame`, ...), or a reply that does not
//!   fit the request (`unexpected_reply`, `unexpected_status`).

use quorder_client::ClientError;
use quorder_proto::{ErrorReply, OrderStatus, Reply};

/// Error kind of an order still unanswered when the end-of-run grace period ran out.
pub const KIND_TIMEOUT: &str = "timeout";
/// Error kind of an order the open-loop sender never sent because the run's end came
/// first (the system stalled so long that the sender could not catch up).
pub const KIND_NOT_SENT: &str = "not_sent";
/// Error kind of a reply that is not an order, or names another order.
pub const KIND_UNEXPECTED_REPLY: &str = "unexpected_reply";
/// Error kind of an order reply with a status a new order cannot have.
pub const KIND_UNEXPECTED_STATUS: &str = "unexpected_status";

/// The outcome of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged: committed, queued or rejected.
    Acknowledged {
        /// The status the node gave.
        status: OrderStatus,
        /// The order's total as the node computed it.
        total_cents: u64,
    },
    /// Not acknowledged; the kind names why.
    Failed {
        /// Short lower-case name of the failure.
        kind: &'static str,
    },
}

impl Outcome {
    /// Whether the report counts this outcome as committed.
    pub fn is_committed(&self) -> bool {
        matches!(
            self,
            Outcome::Acknowledged {
                status: OrderStatus::Committed | OrderStatus::Queued,
                ..
            }
        )
    }
}

/// Classifies the reply to the `PlaceOrder` of `order_id`.
pub fn classify_reply(order_id: u128, reply: &Reply) -> Outcome {
    match reply {
        Reply::Order(order) if order.order_id != order_id => Outcome::Failed {
            kind: KIND_UNEXPECTED_REPLY,
        },
        Reply::Order(order) => match order.status {
            OrderStatus::Committed | OrderStatus::Queued | OrderStatus::Rejected => {
                Outcome::Acknowledged {
                    status: order.status,
                    total_cents: order.total_cents,
                }
            }
            OrderStatus::Preparing | OrderStatus::Cancelled => Outcome::Failed {
                kind: KIND_UNEXPECTED_STATUS,
            },
        },
        Reply::Error(error) => Outcome::Failed {
            kind: error_reply_kind(error),
        },
        Reply::Pong { .. } | Reply::Item(_) => Outcome::Failed {
            kind: KIND_UNEXPECTED_REPLY,
        },
    }
}

/// Short name of a server error reply.
pub fn error_reply_kind(error: &ErrorReply) -> &'static str {
    match error {
        ErrorReply::NotFound => "not_found",
        ErrorReply::VersionConflict { .. } => "version_conflict",
        ErrorReply::InsufficientStock { .. } => "insufficient_stock",
        ErrorReply::Invalid { .. } => "invalid",
        ErrorReply::Overloaded => "overloaded",
        ErrorReply::NotPrimary { .. } => "not_primary",
        ErrorReply::Unavailable => "unavailable",
        ErrorReply::Internal { .. } => "internal",
        ErrorReply::BadFrame { .. } => "bad_frame",
        ErrorReply::UnsupportedVersion { .. } => "unsupported_version",
        ErrorReply::InvalidState { .. } => "invalid_state",
        // `ErrorReply` is non-exhaustive: a newer proto may add variants.
        #[allow(unreachable_patterns)]
        _ => "server_other",
    }
}

/// Short name of a client failure. A server error carried in a `ClientError` gets the
/// server error's name, so the same failure has one name however it arrived.
pub fn client_error_kind(error: &ClientError) -> &'static str {
    match error {
        ClientError::Io(_) => "io",
        ClientError::Timeout => KIND_TIMEOUT,
        ClientError::ConnectionClosed => "connection_closed",
        ClientError::Frame(_) => "frame",
        ClientError::Server(reply) => error_reply_kind(reply),
        // The client's own in-flight bound, not the node's back-pressure.
        ClientError::Overloaded => "client_overloaded",
        ClientError::Unexpected(_) => KIND_UNEXPECTED_REPLY,
        ClientError::NoReachableNode(_) => "unreachable",
        ClientError::InvalidRequest(_) => "invalid_request",
        #[allow(unreachable_patterns)]
        _ => "client_other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorder_proto::{FrameError, Item, Order, RejectReason};
    use std::io;

    fn order(order_id: u128, status: OrderStatus) -> Reply {
        Reply::Order(Order {
            order_id,
            customer: 1,
            lines: Vec::new(),
            total_cents: 300,
            status,
            reason: match status {
                OrderStatus::Rejected => Some(RejectReason::UnknownSku { sku: 4 }),
                _ => None,
            },
            version: 1,
            created_ms: 0,
            updated_ms: 0,
        })
    }

    #[test]
    fn order_statuses_map_to_committed_and_rejected() {
        let committed = classify_reply(5, &order(5, OrderStatus::Committed));
        assert!(committed.is_committed());
        assert_eq!(
            committed,
            Outcome::Acknowledged {
                status: OrderStatus::Committed,
                total_cents: 300
            }
        );
        assert!(classify_reply(5, &order(5, OrderStatus::Queued)).is_committed());
        let rejected = classify_reply(5, &order(5, OrderStatus::Rejected));
        assert!(!rejected.is_committed());
        assert!(matches!(
            rejected,
            Outcome::Acknowledged {
                status: OrderStatus::Rejected,
                ..
            }
        ));
        for status in [OrderStatus::Preparing, OrderStatus::Cancelled] {
            assert_eq!(
                classify_reply(5, &order(5, status)),
                Outcome::Failed {
                    kind: KIND_UNEXPECTED_STATUS
                }
            );
        }
    }

    #[test]
    fn foreign_replies_are_unexpected() {
        let wrong_order = classify_reply(5, &order(6, OrderStatus::Committed));
        assert_eq!(
            wrong_order,
            Outcome::Failed {
                kind: KIND_UNEXPECTED_REPLY
            }
        );
        assert_eq!(
            classify_reply(5, &Reply::Item(Item::default())),
            Outcome::Failed {
                kind: KIND_UNEXPECTED_REPLY
            }
        );
    }

    #[test]
    fn server_errors_have_short_names() {
        let kind = |error: ErrorReply| match classify_reply(1, &Reply::Error(error)) {
            Outcome::Failed { kind } => kind,
            other => panic!("expected a failure, got {other:?}"),
        };
        assert_eq!(kind(ErrorReply::Overloaded), "overloaded");
        assert_eq!(kind(ErrorReply::Unavailable), "unavailable");
        assert_eq!(kind(ErrorReply::NotPrimary { hint: None }), "not_primary");
        assert_eq!(
            kind(ErrorReply::Invalid {
                field: "lines".into(),
                reason: "empty".into()
            }),
            "invalid"
        );
        assert_eq!(
            kind(ErrorReply::Internal {
                message: "bug".into()
            }),
            "internal"
        );
    }

    #[test]
    fn client_errors_have_short_names() {
        assert_eq!(client_error_kind(&ClientError::Timeout), "timeout");
        assert_eq!(
            client_error_kind(&ClientError::ConnectionClosed),
            "connection_closed"
        );
        assert_eq!(
            client_error_kind(&ClientError::Io(io::Error::from(
                io::ErrorKind::ConnectionRefused
            ))),
            "io"
        );
        assert_eq!(
            client_error_kind(&ClientError::Frame(FrameError::UnknownKind { got: 9 })),
            "frame"
        );
        // A server error is named the same whichever way it arrives.
        assert_eq!(
            client_error_kind(&ClientError::Server(ErrorReply::Overloaded)),
            "overloaded"
        );
        assert_eq!(
            client_error_kind(&ClientError::Overloaded),
            "client_overloaded"
        );
    }
}
