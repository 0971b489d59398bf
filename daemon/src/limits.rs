//! The daemon's maxima and intervals, in one place (DESIGN.md §11). Protocol maxima live
//! in `quorder_proto::limits`; these are the node-local ones, related to those by
//! compile-time asserts.

use quorder_proto::limits::{CONNECTION_IN_FLIGHT_MAX, FRAME_BODY_BYTES_MAX};

/// Most messages queued on one cross-core channel before the sender waits.
pub const CORE_CHANNEL_MESSAGES_MAX: usize = 4096;

/// Most client connections one core serves at once; past this, new ones are closed.
pub const CORE_CONNECTIONS_MAX: usize = 4096;

/// Most record bytes one core's WAL buffers before proposals get `Overloaded`.
pub const WAL_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Size of a WAL segment file.
pub const WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Most entries a shard may have proposed and not yet applied; past this, `Overloaded`.
pub const SHARD_UNAPPLIED_ENTRIES_MAX: usize = 65_536;

/// How often a coordinator re-sends an unanswered two-phase-commit request.
pub const TXN_RESEND_INTERVAL_MS: u64 = 500;

/// How often each core runs its periodic work (re-sends, snapshot checks).
pub const CORE_TICK_INTERVAL_MS: u64 = 50;

/// Entries applied since a shard's last snapshot that trigger a new snapshot.
pub const SNAPSHOT_INTERVAL_ENTRIES: u64 = 200_000;

/// How long a stopping node waits for in-flight requests to finish.
pub const SHUTDOWN_DRAIN_MS: u64 = 10_000;

/// Most shards a cluster may have.
pub const SHARDS_MAX: u32 = 4096;

// A full WAL buffer holds many maximal frames, so one large request cannot wedge it.
const _: () = assert!(WAL_BUFFER_BYTES_MAX >= 16 * FRAME_BODY_BYTES_MAX);
// A segment holds at least one maximal record.
const _: () = assert!(WAL_SEGMENT_BYTES as usize >= 2 * FRAME_BODY_BYTES_MAX);
// One connection's in-flight requests fit a shard's queue of unapplied entries.
const _: () = assert!(CONNECTION_IN_FLIGHT_MAX <= SHARD_UNAPPLIED_ENTRIES_MAX);
// Re-sends happen on ticks, so the interval must span several ticks.
const _: () = assert!(TXN_RESEND_INTERVAL_MS >= 4 * CORE_TICK_INTERVAL_MS);
