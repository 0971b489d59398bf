//! The client's closed set of operating errors (STYLE.md example 6).
//!
//! Every failure a caller can act on is a variant here; `is_retryable` says which ones a
//! retry (on this node or another) may cure. Broken invariants are not errors: they panic.

use quorder_proto::limits::CONNECTION_IN_FLIGHT_MAX;
use quorder_proto::{ErrorReply, FrameError};
use std::fmt;
use std::io;

/// Why a request or a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket operation failed (connect, read, write).
    #[error("{}", describe_io(.0))]
    Io(#[from] io::Error),
    /// No reply arrived before the request's deadline. The request may have been applied.
    #[error("timed out waiting for a reply")]
    Timeout,
    /// The connection was closed (by the peer, by a fault, or by dropping it) before the
    /// reply arrived. The request may have been applied.
    #[error("connection closed")]
    ConnectionClosed,
    /// A frame from the node failed its checks (checksum, header, archive validation).
    #[error("bad frame from the node: {0}")]
    Frame(#[from] FrameError),
    /// The node answered with an error reply.
    #[error("{}", ServerErrorText(.0))]
    Server(ErrorReply),
    /// This connection already has `CONNECTION_IN_FLIGHT_MAX` requests in flight; the
    /// request was not sent. Back-pressure: wait for replies or use another connection.
    #[error("too many requests in flight on this connection (limit {CONNECTION_IN_FLIGHT_MAX})")]
    Overloaded,
    /// The node answered something that does not fit the request (wrong reply kind,
    /// wrong batch length, mismatched ping nonce...).
    #[error("unexpected reply: {0}")]
    Unexpected(String),
    /// None of the configured addresses accepted a connection; the text lists each
    /// address with its reason.
    #[error("cannot reach any node ({0})")]
    NoReachableNode(String),
    /// The request was refused locally before being sent (empty batch, batch over
    /// `BATCH_OPERATIONS_MAX`, frame over `FRAME_BODY_BYTES_MAX`, no address given...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl ClientError {
    /// Whether retrying the same request (after a backoff, possibly on another node) may
    /// succeed. Retrying is only *safe* for idempotent requests, or for any request when
    /// the error proves it was not applied; `Client` makes that distinction.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Io(_)
            | ClientError::Timeout
            | ClientError::ConnectionClosed
            | ClientError::Overloaded
            | ClientError::NoReachableNode(_) => true,
            // A checksum mismatch is corruption in transit: another try may get through.
            // Any other frame error is a protocol mismatch that a retry cannot cure.
            ClientError::Frame(frame) => matches!(
                frame,
                FrameError::HeaderChecksumMismatch { .. } | FrameError::BodyChecksumMismatch { .. }
            ),
            ClientError::Server(reply) => matches!(
                reply,
                ErrorReply::Overloaded | ErrorReply::Unavailable | ErrorReply::NotPrimary { .. }
            ),
            ClientError::Unexpected(_) | ClientError::InvalidRequest(_) => false,
        }
    }

    /// The server's error reply, if this is one.
    pub fn server_reply(&self) -> Option<&ErrorReply> {
        match self {
            ClientError::Server(reply) => Some(reply),
            _ => None,
        }
    }

    /// A copy of this error. `io::Error` is not `Clone`; its copy keeps kind and text.
    pub fn duplicate(&self) -> ClientError {
        match self {
            ClientError::Io(error) => {
                ClientError::Io(io::Error::new(error.kind(), error.to_string()))
            }
            ClientError::Timeout => ClientError::Timeout,
            ClientError::ConnectionClosed => ClientError::ConnectionClosed,
            ClientError::Frame(frame) => ClientError::Frame(frame.clone()),
            ClientError::Server(reply) => ClientError::Server(reply.clone()),
            ClientError::Overloaded => ClientError::Overloaded,
            ClientError::Unexpected(text) => ClientError::Unexpected(text.clone()),
            ClientError::NoReachableNode(text) => ClientError::NoReachableNode(text.clone()),
            ClientError::InvalidRequest(text) => ClientError::InvalidRequest(text.clone()),
        }
    }
}

/// Short lower-case text of an IO error, as an operator would say it: "connection
/// refused" rather than "Connection refused (os error 111)".
pub fn describe_io(error: &io::Error) -> String {
    let text = match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by peer",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::BrokenPipe => "connection closed by peer (broken pipe)",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out",
        io::ErrorKind::UnexpectedEof => "connection closed by peer",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        _ => return error.to_string(),
    };
    text.to_string()
}

/// Display of an `ErrorReply` in the words the CLI prints after `error: `.
pub struct ServerErrorText<'a>(pub &'a ErrorReply);

impl fmt::Display for ServerErrorText<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ErrorReply::NotFound => write!(formatter, "not found"),
            ErrorReply::VersionConflict { current } => {
                write!(formatter, "version conflict: current version is {current}")
            }
            ErrorReply::InsufficientStock { sku, available } => {
                write!(
                    formatter,
                    "insufficient stock for sku {sku} (available {available})"
                )
            }
            ErrorReply::Invalid { field, reason } => write!(formatter, "invalid {field}: {reason}"),
            ErrorReply::Overloaded => write!(formatter, "node overloaded, retry later"),
            ErrorReply::NotPrimary { hint: Some(hint) } => {
                write!(formatter, "not the primary (primary is {hint})")
            }
            ErrorReply::NotPrimary { hint: None } => {
                write!(formatter, "not the primary (primary unknown)")
            }
            ErrorReply::Unavailable => write!(
                formatter,
                "unavailable: no majority reachable or node shutting down"
            ),
            ErrorReply::Internal { message } => write!(formatter, "internal error: {message}"),
            ErrorReply::BadFrame { reason } => {
                write!(formatter, "node refused the frame: {reason}")
            }
            ErrorReply::UnsupportedVersion { got, supported } => write!(
                formatter,
                "protocol version {got} is not supported by the node (it speaks {supported})"
            ),
            ErrorReply::InvalidState { reason } => write!(formatter, "invalid state: {reason}"),
            // `ErrorReply` is non-exhaustive: a newer proto may add variants.
            other => write!(formatter, "{other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_as_the_cli_prints_them() {
        let conflict = ClientError::Server(ErrorReply::VersionConflict { current: 3 });
        assert_eq!(
            conflict.to_string(),
            "version conflict: current version is 3"
        );
        assert_eq!(
            ClientError::Server(ErrorReply::NotFound).to_string(),
            "not found"
        );
        let refused = ClientError::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(refused.to_string(), "connection refused");
    }

    #[test]
    fn retryable_errors_are_the_transient_ones() {
        assert!(ClientError::Timeout.is_retryable());
        assert!(ClientError::ConnectionClosed.is_retryable());
        assert!(ClientError::Overloaded.is_retryable());
        assert!(ClientError::Server(ErrorReply::Unavailable).is_retryable());
        assert!(ClientError::Server(ErrorReply::NotPrimary { hint: None }).is_retryable());
        assert!(!ClientError::Server(ErrorReply::NotFound).is_retryable());
        assert!(!ClientError::Server(ErrorReply::VersionConflict { current: 1 }).is_retryable());
        assert!(!ClientError::Frame(FrameError::UnknownKind { got: 9 }).is_retryable());
        assert!(ClientError::Frame(FrameError::BodyChecksumMismatch {
            expected: 1,
            got: 2
        })
        .is_retryable());
    }
}
