//! Every maximum of the protocol in one place, related to each other by compile-time asserts.
//!
//! The daemon, the client and the simulator read their bounds from here; a bound that is
//! not in this module does not exist.

/// Size of the fixed frame header in bytes.
pub const FRAME_HEADER_BYTES: usize = 32;

/// Largest frame body accepted on any link. A header announcing more is refused before
/// a single body byte is read, so a peer cannot make us allocate more than this.
pub const FRAME_BODY_BYTES_MAX: usize = 1024 * 1024;

/// Largest body of a node-to-node `Peer` frame (batches of replicated entries, snapshot
/// chunks). Only a node that completed the peer hello may send one.
pub const PEER_FRAME_BODY_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Most lines in one order.
pub const ORDER_LINES_MAX: usize = 64;

/// Most units of one SKU in one order line.
pub const LINE_QUANTITY_MAX: u64 = 1_000_000;

/// Highest unit price (one hundred million currency units).
pub const PRICE_CENTS_MAX: u64 = 10_000_000_000;

/// Most stock an item may hold in `available + reserved + sold`.
pub const STOCK_MAX: u64 = 1_000_000_000_000;

/// Most bytes of a payment token.
pub const PAYMENT_TOKEN_BYTES_MAX: usize = 256;

/// Most operations in one `Batch` frame.
pub const BATCH_OPERATIONS_MAX: usize = 256;

/// Most requests a single connection may have in flight; past this the daemon stops
/// reading from that connection until replies drain (back-pressure, not buffering).
pub const CONNECTION_IN_FLIGHT_MAX: usize = 1024;

/// Most bytes of a free-text field in an error reply (reasons, hints, messages).
pub const ERROR_TEXT_BYTES_MAX: usize = 512;

/// Upper bound of the archived size of one operation: an order at every maximum.
/// (16 order id + 8 customer + 8 lines header + 16 per line + payment with token + slack.)
pub const OPERATION_BYTES_MAX: usize = 128 + ORDER_LINES_MAX * 24 + PAYMENT_TOKEN_BYTES_MAX;

/// Upper bound of the archived size of one reply: an order at every maximum, or an error
/// with its longest text.
pub const REPLY_BYTES_MAX: usize = 256 + ORDER_LINES_MAX * 32 + 2 * ERROR_TEXT_BYTES_MAX;

/// Largest body of a single-operation `Request` frame: generous room over the largest
/// valid operation. Larger ones are refused before they are read.
pub const REQUEST_BODY_BYTES_MAX: usize = 4 * OPERATION_BYTES_MAX;

// A total price can never overflow a u64.
const _: () = assert!(
    (ORDER_LINES_MAX as u128) * (LINE_QUANTITY_MAX as u128) * (PRICE_CENTS_MAX as u128)
        < u64::MAX as u128
);
// Stock arithmetic can never overflow a u64 either.
const _: () = assert!((STOCK_MAX as u128) * 4 < u64::MAX as u128);
// A full batch of maximal operations fits in one frame.
const _: () = assert!(BATCH_OPERATIONS_MAX * OPERATION_BYTES_MAX * 2 <= FRAME_BODY_BYTES_MAX);
// A request body fits in a frame.
const _: () = assert!(REQUEST_BODY_BYTES_MAX <= FRAME_BODY_BYTES_MAX);
// The replies to a full batch fit in one frame too.
const _: () = assert!(BATCH_OPERATIONS_MAX * REPLY_BYTES_MAX <= FRAME_BODY_BYTES_MAX);
// The body length travels as a u32, for peers too.
const _: () = assert!(PEER_FRAME_BODY_BYTES_MAX < u32::MAX as usize);
const _: () = assert!(FRAME_BODY_BYTES_MAX <= PEER_FRAME_BODY_BYTES_MAX);
const _: () = assert!(FRAME_BODY_BYTES_MAX < u32::MAX as usize);
// A single order line cannot exceed the stock an item may hold.
const _: () = assert!(LINE_QUANTITY_MAX <= STOCK_MAX);
