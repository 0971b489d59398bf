//! The follower's side: accepting appends (log matching, conflict truncation, the fast
//! back-off hint), heartbeats, and snapshot chunks.
//!
//! An acknowledgement claims durability, so it leaves only after this Ready is written
//! (`messages_after_persist`); a rejection claims nothing and leaves at once. While a
//! received snapshot waits to be installed the log is frozen: appends are ignored and the
//! commit index does not move, so the snapshot always lands beyond everything applied.

use super::config::NodeId;
use super::log::{LogEntry, SnapshotMeta};
use super::message::{AppendResult, Message, SnapshotOutcome};
use super::node::{PendingInstall, RaftNode};
use super::snapshot_transfer::{receive_chunk, ChunkVerdict};

impl RaftNode {
    pub(crate) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<LogEntry>,
        commit: u64,
    ) {
        self.accept_leader(from);
        if self.pending_install.is_some() {
            return;
        }
        let term = self.term;
        if prev_index < self.log.commit_index() {
            // A duplicate or late append: everything up to our commit index is the leader's.
            let match_index = self.log.commit_index();
            let result = AppendResult::Accepted { match_index };
            self.outbox
                .send_after_persist(from, Message::AppendResponse { term, result });
            return;
        }
        if self.log.term(prev_index) != Some(prev_term) {
            let hint_index = self.log.find_conflict_by_term(prev_index, prev_term);
            let hint_term = self.log.term(hint_index).unwrap_or(0);
            let result = AppendResult::Rejected {
                rejected_index: prev_index,
                hint_index,
                hint_term,
            };
            self.outbox
                .send(from, Message::AppendResponse { term, result });
            return;
        }
        let match_index = prev_index + entries.len() as u64;
        self.append_matching(prev_index, prev_term, &entries);
        self.log
            .commit_to(commit.min(match_index).max(self.log.commit_index()));
        let result = AppendResult::Accepted { match_index };
        self.outbox
            .send_after_persist(from, Message::AppendResponse { term, result });
    }

    /// Appends what is new in `entries` (which follow `prev_index`), overwriting our
    /// entries from the first one whose term differs.
    fn append_matching(&mut self, prev_index: u64, prev_term: u64, entries: &[LogEntry]) {
        let mut previous = (prev_index, prev_term);
        for (position, entry) in entries.iter().enumerate() {
            // Checked by `wire::from_wire` for messages off the wire.
            assert_eq!(entry.index, previous.0 + 1, "append entries not contiguous");
            assert!(
                entry.term >= previous.1 && entry.term <= self.term,
                "append entry term out of order"
            );
            previous = (entry.index, entry.term);
            match self.log.term(entry.index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    self.log.truncate(entry.index);
                    self.log.append(&entries[position..]);
                }
                None => self.log.append(&entries[position..]),
            }
            return;
        }
    }

    pub(crate) fn handle_heartbeat(&mut self, from: NodeId, commit: u64, read_round: u64) {
        self.accept_leader(from);
        if self.pending_install.is_none() {
            let commit = commit
                .min(self.log.last_index())
                .max(self.log.commit_index());
            self.log.commit_to(commit);
        }
        let message = Message::HeartbeatResponse {
            term: self.term,
            read_round,
        };
        self.outbox.send(from, message);
    }

    pub(crate) fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        total_bytes: u64,
        offset: u64,
        data: &[u8],
        last: bool,
    ) {
        self.accept_leader(from);
        if self.pending_install.is_some() {
            return;
        }
        let term = self.term;
        let snapshot_index = meta.index;
        let covered = self.log.term(meta.index) == Some(meta.term);
        if covered || self.log.commit_index() >= meta.index {
            // Our log already holds what the snapshot covers: no need to install it.
            self.assembly = None;
            if covered {
                self.log.commit_to(meta.index.max(self.log.commit_index()));
            }
            let outcome = SnapshotOutcome::Installed;
            let message = Message::InstallSnapshotResponse {
                term,
                snapshot_index,
                outcome,
            };
            self.outbox.send_after_persist(from, message);
            return;
        }
        let outcome = match receive_chunk(
            &mut self.assembly,
            term,
            meta,
            total_bytes,
            offset,
            data,
            last,
        ) {
            ChunkVerdict::Received { next_offset } => SnapshotOutcome::Received { next_offset },
            ChunkVerdict::Refused => SnapshotOutcome::Refused,
            ChunkVerdict::Complete(meta, body) => {
                self.pending_install = Some(PendingInstall { meta, leader: from });
                self.snapshot_to_install = Some((meta, body));
                return;
            }
        };
        let message = Message::InstallSnapshotResponse {
            term,
            snapshot_index,
            outcome,
        };
        self.outbox.send(from, message);
    }
}
