//! What a member knows about itself: the durable hard state, the volatile soft state, and
//! what the shell restores from disk after a restart.

use super::config::NodeId;
use super::log::{LogEntry, SnapshotMeta};

/// The part of a member's state that must be durable before any message that depends on
/// it leaves the node (a vote given twice in one term could elect two leaders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// Latest term this member has seen.
    pub term: u64,
    /// Who this member voted for in `term`, if anyone.
    pub vote: Option<NodeId>,
}

/// Role of a member in its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts entries from the leader (a backup).
    Follower,
    /// Asks whether it could win an election, without bumping its term yet.
    PreCandidate,
    /// Asks for votes in a new term.
    Candidate,
    /// Orders and replicates entries (the primary).
    Leader,
}

/// The volatile state the shell watches: who leads, in which term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftState {
    /// This member's role.
    pub role: Role,
    /// The leader this member follows (itself when leading), if known.
    pub leader: Option<NodeId>,
    /// The current term.
    pub term: u64,
}

/// Durable state replayed by the shell at start-up, from which a member resumes.
///
/// The store is restored from the snapshot, then (optionally) by applying the restored
/// entries up to `applied`; later entries come out of `Ready::committed` once the member
/// learns they are committed.
#[derive(Debug, Clone, Default)]
pub struct Restored {
    /// Term and vote as last persisted.
    pub hard_state: HardState,
    /// The last snapshot persisted (index 0, term 0 if none).
    pub snapshot: SnapshotMeta,
    /// Every durable entry after the snapshot, contiguous from `snapshot.index + 1`, with
    /// overwritten entries already removed.
    pub entries: Vec<LogEntry>,
    /// Index the store was rebuilt to: the snapshot's, or higher when the shell applied
    /// restored entries it had recorded as committed (a commit index it persisted). 0 means
    /// the snapshot's index.
    pub applied: u64,
}
