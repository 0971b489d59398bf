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

/// Smallest snapshot interval a configuration may ask for (tests use small ones).
pub const SNAPSHOT_INTERVAL_ENTRIES_MIN: u64 = 100;

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

// ---- Per-shard Raft (DESIGN.md §5). Each bound below is enforced by `raft::RaftConfig`
// ---- validation or by the consensus core itself.

/// Most voters in one shard's group (one mirror per region).
pub const RAFT_VOTERS_MAX: usize = 9;

/// Largest payload of one log entry: a client's whole frame body at most.
pub const RAFT_ENTRY_PAYLOAD_BYTES_MAX: usize = FRAME_BODY_BYTES_MAX;

/// Bytes counted per entry on top of its payload (term, index, kind, timestamp, framing),
/// so that flow control also bounds messages of many tiny entries.
pub const RAFT_ENTRY_OVERHEAD_BYTES: usize = 48;

/// Upper bound of `RaftConfig::max_entries_per_append`.
pub const RAFT_APPEND_ENTRIES_MAX: usize = 4096;

/// Upper bound of `RaftConfig::max_bytes_per_append`. An append always carries at least one
/// entry, so one maximal entry must fit.
pub const RAFT_APPEND_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Upper bound of `RaftConfig::max_inflight_bytes` (per follower).
pub const RAFT_INFLIGHT_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Most appends in flight to one follower, whatever their size.
pub const RAFT_INFLIGHT_APPENDS_MAX: usize = 256;

/// Upper bound of `RaftConfig::max_snapshot_chunk_bytes`: bytes of a snapshot body per
/// InstallSnapshot chunk (one chunk in flight per follower).
pub const RAFT_SNAPSHOT_CHUNK_BYTES: usize = 1024 * 1024;

/// Largest snapshot body a follower assembles from chunks; a transfer announcing more is
/// refused before anything is allocated.
pub const RAFT_SNAPSHOT_BODY_BYTES_MAX: u64 = SNAPSHOT_BODY_BYTES_MAX;

/// Largest encoded Raft message: a full append or a full snapshot chunk, plus its fields.
pub const RAFT_MESSAGE_BYTES_MAX: usize = RAFT_APPEND_BYTES_MAX + 4096;

/// Most read-index requests waiting for confirmation at one leader; past this `Overloaded`.
pub const RAFT_READ_REQUESTS_PENDING_MAX: usize = 4096;

/// Most entries a leader holds proposed but not committed; past this `Overloaded`.
pub const RAFT_UNCOMMITTED_ENTRIES_MAX: usize = SHARD_UNAPPLIED_ENTRIES_MAX;

/// Most committed entries handed out in one `Ready` (the rest follow in the next).
pub const RAFT_COMMITTED_ENTRIES_PER_READY_MAX: usize = 4096;

/// Most messages a group queues between two `ready()` calls. Past it messages are dropped,
/// which Raft treats as loss (retried by timeouts), so a shell that stalls cannot make the
/// queue grow.
pub const RAFT_OUTBOX_MESSAGES_MAX: usize = 16_384;

/// Upper bound of `RaftConfig::election_ticks_max`.
pub const RAFT_ELECTION_TICKS_MAX: u64 = 100_000;

// One maximal entry fits an append, and one maximal append fits the in-flight window.
const _: () =
    assert!(RAFT_ENTRY_PAYLOAD_BYTES_MAX + RAFT_ENTRY_OVERHEAD_BYTES <= RAFT_APPEND_BYTES_MAX);
const _: () = assert!(RAFT_APPEND_BYTES_MAX <= RAFT_INFLIGHT_BYTES_MAX);
// A snapshot chunk is never larger than an append, so one message bound covers both.
const _: () = assert!(RAFT_SNAPSHOT_CHUNK_BYTES <= RAFT_APPEND_BYTES_MAX);
const _: () = assert!(RAFT_APPEND_BYTES_MAX < RAFT_MESSAGE_BYTES_MAX);
// A snapshot that the store may write can always be received by a follower.
const _: () = assert!(RAFT_SNAPSHOT_BODY_BYTES_MAX >= SNAPSHOT_BODY_BYTES_MAX);
// The leader's uncommitted window fits the shard's queue of unapplied entries.
const _: () = assert!(RAFT_UNCOMMITTED_ENTRIES_MAX <= SHARD_UNAPPLIED_ENTRIES_MAX);
// A full window of uncommitted entries is handed out over a bounded number of Readys.
const _: () = assert!(RAFT_UNCOMMITTED_ENTRIES_MAX / RAFT_COMMITTED_ENTRIES_PER_READY_MAX <= 64);
// A heartbeat round to every voter, one append to each, and a read round fit the outbox.
const _: () = assert!(RAFT_OUTBOX_MESSAGES_MAX >= 4 * RAFT_VOTERS_MAX * RAFT_INFLIGHT_APPENDS_MAX);

/// Frames queued towards one peer (per core) before new ones are dropped.
pub const PEER_QUEUE_FRAMES_MAX: usize = 8192;

/// Bytes gathered into one write on a peer link.
pub const PEER_WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Read buffer of an incoming peer connection.
pub const PEER_READ_BUFFER_BYTES: usize = 256 * 1024;

/// First reconnect delay of a peer link; doubles up to the maximum.
pub const PEER_BACKOFF_MIN_MS: u64 = 20;

/// Longest reconnect delay of a peer link (also its connect timeout).
pub const PEER_BACKOFF_MAX_MS: u64 = 1_000;

/// A queued peer frame older than this is dropped instead of sent.
pub const PEER_FRAME_STALE_MS: u64 = 5_000;

// A delayed (WAN) frame must not count as stale before it may leave.
const _: () = assert!(PEER_FRAME_STALE_MS > 4 * PEER_BACKOFF_MAX_MS);

// Every Raft message fits one peer frame.
const _: () = assert!(RAFT_MESSAGE_BYTES_MAX <= quorder_proto::limits::PEER_FRAME_BODY_BYTES_MAX);

/// How long a node waits for a peer's status before calling it unreachable.
pub const STATUS_PEER_TIMEOUT_MS: u64 = 1_000;

/// Interval of the Raft clock: every mirror ticks this often.
pub const RAFT_TICK_INTERVAL_MS: u64 = 10;

/// How long a node waits for the primary to answer a request it forwarded before it
/// answers `Unavailable` (the client retries, idempotently).
pub const FORWARD_TIMEOUT_MS: u64 = 2_000;

/// Most Raft messages gathered into one peer message (several frames if more).
pub const RAFT_MESSAGES_PER_PEER_FRAME_MAX: usize = 64;

// A peer message of that many maximal Raft messages would not fit a frame, so appends are
// bounded well below: in practice a batch is heartbeats plus a few appends.
const _: () = assert!(RAFT_MESSAGES_PER_PEER_FRAME_MAX >= 2 * SHARDS_PER_CORE_TYPICAL);

/// Shards per core on the default shape (8 shards, 2..=8 cores): a tick's heartbeats.
pub const SHARDS_PER_CORE_TYPICAL: usize = 8;
// Every node holds a voting mirror of every shard, so a full cluster is a valid group.
const _: () = assert!(NODES_MAX <= RAFT_VOTERS_MAX);
