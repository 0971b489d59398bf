//! The simulated disk of one member: what is durable, and the writes still in the queue.
//!
//! Writes complete in the order they were queued (as a WAL's group commit does). A crash
//! loses the queue, except that it may first make a prefix of it durable, down to part of
//! one write's entries (a torn group commit).

use quorder_daemon::raft::config::NodeId;
use quorder_daemon::raft::log::{LogEntry, SnapshotMeta};
use quorder_daemon::raft::message::Message;
use quorder_daemon::raft::state::{HardState, Restored};
use rkyv::util::AlignedVec;
use std::collections::VecDeque;
use std::rc::Rc;

/// One Ready's worth of writing.
#[derive(Debug)]
pub(crate) struct Write {
    pub(crate) hard_state: Option<HardState>,
    pub(crate) truncate_from: Option<u64>,
    pub(crate) entries: Vec<LogEntry>,
    pub(crate) snapshot: Option<(SnapshotMeta, AlignedVec)>,
    pub(crate) messages_after_persist: Vec<(NodeId, Message)>,
}

/// A member's disk.
#[derive(Debug, Default)]
pub(crate) struct Disk {
    pub(crate) hard_state: HardState,
    pub(crate) snapshot: SnapshotMeta,
    pub(crate) snapshot_body: Rc<AlignedVec>,
    /// Durable entries after the snapshot, contiguous.
    pub(crate) entries: Vec<LogEntry>,
    pub(crate) queue: VecDeque<Write>,
}

impl Disk {
    /// Makes the oldest queued write durable and returns it (for what follows a write).
    pub(crate) fn complete_one(&mut self) -> Option<Write> {
        let write = self.queue.pop_front()?;
        if let Some(hard_state) = write.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(from) = write.truncate_from {
            assert_eq!(write.entries.first().map(|entry| entry.index), Some(from));
        }
        self.append(&write.entries);
        if let Some((meta, body)) = &write.snapshot {
            self.snapshot = *meta;
            self.snapshot_body = Rc::new(body.clone());
            self.entries.clear();
        }
        Some(write)
    }

    /// Appends entries, each overwriting whatever was at its index or after.
    fn append(&mut self, entries: &[LogEntry]) {
        for entry in entries {
            assert!(
                entry.index > self.snapshot.index,
                "write of an entry the snapshot covers"
            );
            let keep = (entry.index - self.snapshot.index - 1) as usize;
            assert!(
                keep <= self.entries.len(),
                "write leaves a gap in the durable log"
            );
            self.entries.truncate(keep);
            self.entries.push(entry.clone());
        }
    }

    /// The process died: a prefix of the queue may have reached the disk, the rest is gone.
    pub(crate) fn crash(&mut self, writes_kept: usize, torn_entries_kept: Option<usize>) {
        for _ in 0..writes_kept {
            if self.complete_one().is_none() {
                break;
            }
        }
        if let (Some(kept), Some(write)) = (torn_entries_kept, self.queue.front()) {
            // Hard state first, then entries: the write was torn after `kept` entries.
            if write.snapshot.is_none() {
                if let Some(hard_state) = write.hard_state {
                    self.hard_state = hard_state;
                }
                let entries: Vec<LogEntry> = write.entries.iter().take(kept).cloned().collect();
                self.append(&entries);
            }
        }
        self.queue.clear();
    }

    /// A snapshot of the store was written at `meta`: entries it covers are dropped.
    pub(crate) fn compact(&mut self, meta: SnapshotMeta, body: AlignedVec) {
        assert!(meta.index > self.snapshot.index);
        let drop = ((meta.index - self.snapshot.index) as usize).min(self.entries.len());
        self.entries.drain(..drop);
        self.snapshot = meta;
        self.snapshot_body = Rc::new(body);
    }

    /// Whether the entry (`index`, `term`) is durable here (in the log or the snapshot).
    pub(crate) fn holds(&self, index: u64, term: u64) -> bool {
        if index <= self.snapshot.index {
            return true;
        }
        let at = (index - self.snapshot.index - 1) as usize;
        self.entries.get(at).is_some_and(|entry| entry.term == term)
    }

    /// What a restarted member resumes from.
    pub(crate) fn restored(&self) -> Restored {
        Restored {
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            entries: self.entries.clone(),
            applied: 0,
        }
    }
}
