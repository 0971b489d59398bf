//! Messages of the two-phase commit between shards (DESIGN.md §4 step 4).
//!
//! A coordinator (the shard of the order id) sends `ParticipantRequest`s to the shards
//! that hold the order's other lines; each participant logs the request, applies it and
//! answers with a `ParticipantReply` that states its durable state for that order. Both
//! are idempotent: a duplicate request is answered from the participant's state, and a
//! duplicate reply changes nothing at the coordinator.

use quorder_proto::{OrderLine, RejectReason};
use rkyv::{Archive, Deserialize, Serialize};

/// Price a participant fixed for one of its lines when it prepared.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct LinePrice {
    /// The item.
    pub sku: u64,
    /// Unit price when the line was reserved.
    pub unit_price_cents: u64,
}

/// What the coordinator asks of a participant.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ParticipantAction {
    /// Reserve these lines (move `available` to `reserved`) or refuse.
    Prepare {
        /// The participant's lines of the order.
        lines: Vec<OrderLine>,
    },
    /// The order committed: reserved units become sold.
    Commit,
    /// The order aborted: reserved units become available again. Also fences a prepare
    /// that has not arrived yet.
    Abort,
    /// The committed order was cancelled: sold units become available again.
    Release,
}

/// Coordinator → participant.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ParticipantRequest {
    /// The order.
    pub order_id: u128,
    /// Shard coordinating the order.
    pub coordinator: u32,
    /// Shard asked.
    pub participant: u32,
    /// What to do.
    pub action: ParticipantAction,
}

/// Durable state of an order at a participant.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ParticipantState {
    /// Lines reserved at these prices.
    Prepared {
        /// Prices of the participant's lines.
        prices: Vec<LinePrice>,
    },
    /// Could not reserve; nothing held.
    Refused {
        /// Why.
        reason: RejectReason,
    },
    /// Sold.
    Committed,
    /// Released after an abort (or fenced before any prepare).
    Aborted,
    /// Released after a cancellation.
    Released,
}

/// Participant → coordinator.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ParticipantReply {
    /// The order.
    pub order_id: u128,
    /// Shard answering.
    pub participant: u32,
    /// Its state for the order.
    pub state: ParticipantState,
}
