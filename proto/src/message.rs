//! Message bodies (DESIGN.md §6). Each is an rkyv archive carried in one frame; the frame
//! kind says which root type the body holds. `proto/PROTOCOL.md` gives the byte layout.
//!
//! Identifiers: SKUs and customers are u64, order ids u128 (chosen by the client; an order
//! id is also the order's idempotency key; zero is invalid). Money is in integer cents.

use rkyv::{Archive, Deserialize, Serialize};

/// One client operation. A `Request` frame carries one, a `BatchRequest` frame many.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Operation {
    /// Liveness check; answered with `Reply::Pong` carrying the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Create an item or replace its available stock and price.
    PutItem(PutItem),
    /// Read an item.
    GetItem {
        /// The item.
        sku: u64,
    },
    /// Add units to an item's available stock.
    Restock {
        /// The item.
        sku: u64,
        /// Units added, `1..=LINE_QUANTITY_MAX`.
        quantity: u64,
    },
    /// Place an order; idempotent by `order_id`.
    PlaceOrder(PlaceOrder),
    /// Read an order.
    GetOrder {
        /// The order.
        order_id: u128,
    },
    /// Cancel a committed order, releasing its stock.
    CancelOrder {
        /// The order.
        order_id: u128,
        /// Optimistic lock on the order record, if given.
        expected_version: Option<u64>,
    },
}

/// Create or update an item. With `expected_version` the write is a compare-and-set on
/// the item's version (a missing item has version 0); without it the write always applies.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PutItem {
    /// The item.
    pub sku: u64,
    /// New available stock.
    pub available: u64,
    /// New unit price.
    pub price_cents: u64,
    /// Compare-and-set guard.
    pub expected_version: Option<u64>,
}

/// One line of an order as the client sends it; the price is taken from the item.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct OrderLine {
    /// The item.
    pub sku: u64,
    /// Units, `1..=LINE_QUANTITY_MAX`.
    pub quantity: u64,
}

/// How an order is paid.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Payment {
    /// No external payment (invoice, prepaid...).
    None,
    /// Card payment through the configured gateway.
    Card {
        /// Opaque card token, at most `PAYMENT_TOKEN_BYTES_MAX` bytes.
        token: String,
    },
}

/// Place an order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PlaceOrder {
    /// Client-chosen id, non-zero; the idempotency key.
    pub order_id: u128,
    /// Customer number.
    pub customer: u64,
    /// Lines, `1..=ORDER_LINES_MAX`, each SKU at most once.
    pub lines: Vec<OrderLine>,
    /// Payment method.
    pub payment: Payment,
}

/// Many operations in one frame; answered by a `BatchReply` with one reply per operation,
/// in the same order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Batch {
    /// The operations, `1..=BATCH_OPERATIONS_MAX`.
    pub operations: Vec<Operation>,
}

/// An item record.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[rkyv(derive(Debug))]
pub struct Item {
    /// The item.
    pub sku: u64,
    /// Units that can be ordered.
    pub available: u64,
    /// Units held by orders in two-phase commit.
    pub reserved: u64,
    /// Units of committed orders.
    pub sold: u64,
    /// Unit price.
    pub price_cents: u64,
    /// Incremented by every change of the record.
    pub version: u64,
}

/// Status of an order (DESIGN.md §3).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum OrderStatus {
    /// In two-phase commit.
    Preparing = 0,
    /// Committed: stock sold.
    Committed = 1,
    /// Rejected, see the reason; nothing reserved.
    Rejected = 2,
    /// Waiting on a transiently unavailable external participant.
    Queued = 3,
    /// Cancelled after commit: stock released.
    Cancelled = 4,
}

impl OrderStatus {
    /// Lower-case name used by the CLI and JSON output.
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Preparing => "preparing",
            OrderStatus::Committed => "committed",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Queued => "queued",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

/// Why an order was rejected.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum RejectReason {
    /// A line asked for more than the item had available when the order was applied.
    InsufficientStock {
        /// The item short of stock.
        sku: u64,
        /// What it had available.
        available: u64,
    },
    /// A line names an item that does not exist.
    UnknownSku {
        /// The missing item.
        sku: u64,
    },
    /// The payment was declined or is impossible here.
    PaymentDeclined {
        /// Why.
        reason: String,
    },
}

/// One line of a recorded order, with the unit price fixed when the order was applied.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct OrderLineRecord {
    /// The item.
    pub sku: u64,
    /// Units.
    pub quantity: u64,
    /// Price per unit when the order was applied.
    pub unit_price_cents: u64,
}

/// An order record.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct Order {
    /// The order id.
    pub order_id: u128,
    /// Customer number.
    pub customer: u64,
    /// Lines with prices.
    pub lines: Vec<OrderLineRecord>,
    /// Sum of quantity × unit price over the lines.
    pub total_cents: u64,
    /// Current status.
    pub status: OrderStatus,
    /// Why it was rejected, when it was.
    pub reason: Option<RejectReason>,
    /// Incremented by every change of the record.
    pub version: u64,
    /// Leader-assigned time the order was first applied, ms since the Unix epoch.
    pub created_ms: u64,
    /// Leader-assigned time of the last change, ms since the Unix epoch.
    pub updated_ms: u64,
}

/// Typed error replies (DESIGN.md §6). Operating errors only: a client can act on each.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[non_exhaustive]
pub enum ErrorReply {
    /// The item or order does not exist.
    NotFound,
    /// `expected_version` did not match; `current` is the record's version now.
    VersionConflict {
        /// The current version.
        current: u64,
    },
    /// Not enough stock (used where no order record is involved).
    InsufficientStock {
        /// The item.
        sku: u64,
        /// What it has available.
        available: u64,
    },
    /// A field is out of range or malformed; nothing was changed.
    Invalid {
        /// Name of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node is at a bound; retry later (the request was not applied).
    Overloaded,
    /// This node is not the primary of the shard; `hint` is the primary's address if known.
    NotPrimary {
        /// Client address of the primary.
        hint: Option<String>,
    },
    /// No majority is reachable or the node is shutting down; the request may be retried.
    Unavailable,
    /// A bug or a local fault; the message says which.
    Internal {
        /// Details.
        message: String,
    },
    /// The frame could not be decoded; the connection is closed after this reply.
    BadFrame {
        /// What was wrong.
        reason: String,
    },
    /// The frame's protocol version is not spoken here.
    UnsupportedVersion {
        /// Version received.
        got: u8,
        /// Version spoken here.
        supported: u8,
    },
    /// The operation is not allowed on the record in its current state
    /// (for example cancelling a rejected order).
    InvalidState {
        /// Why.
        reason: String,
    },
}

/// Reply to one operation.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Reply {
    /// Answer to `Ping`.
    Pong {
        /// The request's nonce.
        nonce: u64,
        /// Number of shards of the cluster.
        shard_count: u32,
    },
    /// An item (after `PutItem`, `GetItem`, `Restock`).
    Item(Item),
    /// An order (after `PlaceOrder`, `GetOrder`, `CancelOrder`); a rejected order is an
    /// order with status `Rejected` and a reason.
    Order(Order),
    /// The operation failed.
    Error(ErrorReply),
}

/// Replies to a `Batch`, one per operation, in order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct BatchReply {
    /// The replies.
    pub replies: Vec<Reply>,
}
