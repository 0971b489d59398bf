//! Every maximum and fixed constant of the load generator in one place (STYLE.md
//! example 4), related to the protocol's own limits by compile-time asserts.

use quorder_proto::limits::{
    BATCH_OPERATIONS_MAX, CONNECTION_IN_FLIGHT_MAX, PRICE_CENTS_MAX, STOCK_MAX,
};
use std::time::Duration;

/// Most connections one run opens.
pub const CONNECTIONS_MAX: usize = 1024;

/// Most SKUs one run creates and orders from (setup writes each one).
pub const SKUS_MAX: u64 = 10_000_000;

/// Most orders per second the open-loop schedule accepts.
pub const RATE_PER_S_MAX: u64 = 10_000_000;

/// Longest measured run (and longest warmup).
pub const RUN_DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

/// Longest time an outstanding request is waited for at the end of the run.
pub const REQUEST_TIMEOUT_MAX: Duration = Duration::from_secs(600);

/// Frames in flight per connection in open-loop mode. Past this the sender waits for a
/// reply before sending (its later orders then carry the wait as latency); the client
/// library refuses more than this anyway.
pub const OPEN_LOOP_WINDOW_FRAMES: usize = CONNECTION_IN_FLIGHT_MAX;

/// Default frames in flight per connection in `--max` (saturation) mode.
pub const SATURATION_WINDOW_FRAMES_DEFAULT: usize = 32;

/// Largest `--window`.
pub const SATURATION_WINDOW_FRAMES_MAX: usize = CONNECTION_IN_FLIGHT_MAX;

/// Default stock given to every SKU at setup: large enough that no realistic run sells
/// out (a billion units), small enough that `available + sold` stays far below
/// `STOCK_MAX` across many runs against the same cluster.
pub const STOCK_DEFAULT: u64 = 1_000_000_000;

/// Default unit price of every SKU.
pub const PRICE_CENTS_DEFAULT: u64 = 100;

/// Customers are drawn from `1..=CUSTOMERS_MAX`.
pub const CUSTOMERS_MAX: u64 = 1_000_000;

/// Latency histograms track `1 µs ..= LATENCY_US_MAX`; larger values are clamped.
pub const LATENCY_US_MAX: u64 = 3_600 * 1_000_000;

/// Significant decimal digits of the latency histograms.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Acknowledged outcomes queued for the record writer. When it falls behind, reply
/// callbacks wait (back-pressure) rather than the queue growing or lines being dropped.
pub const RECORD_QUEUE_LINES_MAX: usize = 64 * 1024;

/// Items per `PutItem` batch at setup.
pub const SETUP_BATCH_ITEMS: usize = BATCH_OPERATIONS_MAX;

/// Attempts per setup request on a retryable error.
pub const SETUP_ATTEMPTS_MAX: u32 = 5;

/// Pause before the first setup retry; later retries wait proportionally longer.
pub const SETUP_RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Pause between reconnection attempts of a connection whose socket was lost.
pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

/// Longest wait for a TCP connection to be established.
pub const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(5);

/// Interval of the progress line on stderr.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

const _: () = assert!(SATURATION_WINDOW_FRAMES_DEFAULT <= SATURATION_WINDOW_FRAMES_MAX);
const _: () = assert!(OPEN_LOOP_WINDOW_FRAMES <= CONNECTION_IN_FLIGHT_MAX);
const _: () = assert!(SETUP_BATCH_ITEMS <= BATCH_OPERATIONS_MAX);
const _: () = assert!(STOCK_DEFAULT <= STOCK_MAX / 100);
const _: () = assert!(PRICE_CENTS_DEFAULT <= PRICE_CENTS_MAX);
// The orders of the longest run (warmup included) counted in nanoseconds fit in a u128,
// the type of the schedule's arithmetic.
const _: () = assert!(
    (2 * RUN_DURATION_MAX.as_secs() as u128) * (RATE_PER_S_MAX as u128) * 1_000_000_000
        < u64::MAX as u128 * u64::MAX as u128
);
