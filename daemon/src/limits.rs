//! The daemon's maxima and intervals, in one place (DESIGN.md §11). Protocol maxima live
//! in `quorder_proto::limits`; these are the node-local ones, related to those by
//! compile-time asserts.

use quorder_proto::limits::{CONNECTION_IN_FLIGHT_MAX, FRAME_BODY_BYTES_MAX};

/// Most messages queued on one cross-core channel before the sender waits.
pub const CORE_CHANNEL_MESSAGES_MAX: usize = 4096;

/// Most client connections one core serves at once; past this, new ones are closed.
pub const CORE_CONNECTIONS_MAX: usize = 4096;

/// Default size of one segment file.
pub const WAL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Smallest segment accepted by `WalOptions::validate` (tests use small segments).
pub const WAL_SEGMENT_BYTES_MIN: u64 = 8 * 1024;

/// Largest segment: replay reads a whole segment into memory.
pub const WAL_SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Segment sizes are a multiple of this, which covers every O_DIRECT block size we
/// expect (512 or 4096 bytes).
pub const WAL_SEGMENT_ALIGNMENT_BYTES: u64 = 4096;

/// Default bound of the bytes appended but not yet handed to a sync. Past it `append`
/// refuses with `WalError::Full` (back-pressure: the caller replies Overloaded).
pub const WAL_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Size of each zero-filled write that pre-writes a new segment.
pub const WAL_PREWRITE_CHUNK_BYTES: usize = 1024 * 1024;

/// Size of each read of a segment during replay.
pub const WAL_REPLAY_READ_BYTES: usize = 4 * 1024 * 1024;

/// Largest snapshot body accepted: a shard's store archive. A header announcing more is
/// refused before anything is allocated.
pub const SNAPSHOT_BODY_BYTES_MAX: u64 = 4 * 1024 * 1024 * 1024;

/// Bytes moved per DMA read or write of a snapshot file.
pub const SNAPSHOT_IO_CHUNK_BYTES: usize = 4 * 1024 * 1024;

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

/// Most nodes in a cluster (each holds a mirror of every shard).
pub const NODES_MAX: usize = 9;
