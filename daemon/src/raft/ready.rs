//! What a group hands its shell after input: what to persist, send, apply and serve.
//!
//! The shell's contract, for each `Ready` in the order they were taken:
//! 1. Note `soft_state` (a lost leadership fails the reads and proposals waiting on it).
//! 2. Send `messages` at once: they do not depend on anything unwritten.
//! 3. Write, in this order: `hard_state`; `entries` (if `truncate_from` is set, every entry
//!    written earlier at that index or above is void); then, with `snapshot_to_install`,
//!    the snapshot, dropping every log entry of the group up to now. Readys are written in
//!    the order taken.
//! 4. Once that write (and so every earlier one) is durable: send `messages_after_persist`,
//!    call `RaftNode::persisted` with the last entry's (index, term), and
//!    `snapshot_installed`.
//! 5. Apply `committed` in order (all are durable here), then call `RaftNode::applied`.
//! 6. Serve each read of `read_states` once the store has applied its index.
//! 7. If `snapshot_needed_for` is not empty, load the latest persisted snapshot and hand it
//!    over with `RaftNode::snapshot_body` (once for all the followers listed).

use super::config::NodeId;
use super::log::{LogEntry, SnapshotMeta};
use super::message::Message;
use super::read_index::ReadState;
use super::state::{HardState, SoftState};
use super::EntryId;
use rkyv::util::AlignedVec;

/// Output of a group since the previous `ready()`; see the module docs for the contract.
#[derive(Debug, Default)]
pub struct Ready {
    /// Role, leader or term changed.
    pub soft_state: Option<SoftState>,
    /// Term or vote changed: durable before `messages_after_persist` leave.
    pub hard_state: Option<HardState>,
    /// Entries at this index or above written before are overwritten by `entries`.
    pub truncate_from: Option<u64>,
    /// Entries to append to the WAL, contiguous.
    pub entries: Vec<LogEntry>,
    /// Messages that may leave now (a leader's appends go out before its own write).
    pub messages: Vec<(NodeId, Message)>,
    /// Messages that may leave only once this Ready's state and entries, and those of every
    /// earlier Ready, are durable (they may acknowledge entries handed out before).
    pub messages_after_persist: Vec<(NodeId, Message)>,
    /// Newly committed entries, in log order, all durable on this member. Apply them
    /// before installing `snapshot_to_install`, which lies beyond them.
    pub committed: Vec<LogEntry>,
    /// Confirmed reads.
    pub read_states: Vec<ReadState>,
    /// A complete snapshot received from the leader: persist it (replacing the log), then
    /// call `snapshot_installed`.
    pub snapshot_to_install: Option<(SnapshotMeta, AlignedVec)>,
    /// Followers that need a snapshot: call `snapshot_body` with the latest one.
    pub snapshot_needed_for: Vec<NodeId>,
}

impl Ready {
    /// Position of the last entry to write, for `persisted` once durable.
    pub fn last_entry(&self) -> Option<EntryId> {
        self.entries.last().map(LogEntry::id)
    }

    /// Whether anything must be written before `messages_after_persist` may leave.
    pub fn needs_persist(&self) -> bool {
        self.hard_state.is_some() || !self.entries.is_empty() || self.snapshot_to_install.is_some()
    }
}
