//! Every bound the client library adds to the protocol's (`quorder_proto::limits`), in one
//! place (STYLE.md example 4).

use quorder_proto::limits::CONNECTION_IN_FLIGHT_MAX;

/// Most time one frame write may stall (the node not reading) before the connection is
/// declared dead. A stalled write leaves a partial frame on the socket, so the
/// connection cannot be reused after it.
pub const WRITE_STALL_MS_MAX: u64 = 10_000;

/// First retry backoff of `Client`.
pub const BACKOFF_INITIAL_MS: u64 = 10;

/// Largest retry backoff of `Client` (before jitter, which only shortens it).
pub const BACKOFF_MAX_MS: u64 = 1_000;

/// Most node addresses a `Client` tracks, counting addresses learned from `NotPrimary`
/// hints, so that a misbehaving node cannot grow the list without bound.
pub const CLIENT_ADDRESSES_MAX: usize = 64;

/// Requests one connection may have in flight; the protocol's bound, enforced by
/// `Connection::submit` before anything is sent.
pub const IN_FLIGHT_MAX: usize = CONNECTION_IN_FLIGHT_MAX;

// The backoff doubles from the initial value up to the maximum.
const _: () = assert!(BACKOFF_INITIAL_MS > 0 && BACKOFF_INITIAL_MS <= BACKOFF_MAX_MS);
const _: () = assert!(IN_FLIGHT_MAX > 0);
