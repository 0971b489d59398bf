//! A member's log in memory: the entries after the last snapshot, and how far they are
//! handed to storage, durable, committed, handed out for applying, and applied.
//!
//! Positions only move in one direction except where Raft says otherwise: a follower's
//! uncommitted tail may be overwritten by a newer leader, which pulls the storage and
//! durability marks back to the overwrite point. Everything at or below the commit index
//! is immutable (asserted).

use super::EntryId;
use crate::limits::RAFT_ENTRY_OVERHEAD_BYTES;
use rkyv::util::AlignedVec;
use std::collections::VecDeque;
use std::rc::Rc;

/// One entry of a shard's log. Cheap to clone: the payload is shared between the WAL
/// write, the in-memory log and the messages to followers.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// Term of the leader that proposed it.
    pub term: u64,
    /// Position in the log, from 1.
    pub index: u64,
    /// `EntryKind` byte of the payload.
    pub kind: u8,
    /// Leader-assigned time of the proposal.
    pub timestamp_ms: u64,
    /// The payload, byte for byte as proposed.
    pub payload: Rc<AlignedVec>,
}

impl LogEntry {
    /// Its position.
    pub fn id(&self) -> EntryId {
        EntryId {
            term: self.term,
            index: self.index,
        }
    }

    /// Bytes it counts for in flow control.
    pub fn size_bytes(&self) -> usize {
        self.payload.len() + RAFT_ENTRY_OVERHEAD_BYTES
    }
}

// Entries compare by content: the same bytes make the same entry whichever buffer holds them.
impl PartialEq for LogEntry {
    fn eq(&self, other: &LogEntry) -> bool {
        self.term == other.term
            && self.index == other.index
            && self.kind == other.kind
            && self.timestamp_ms == other.timestamp_ms
            && self.payload.as_slice() == other.payload.as_slice()
    }
}

impl Eq for LogEntry {}

/// The last entry a snapshot covers (both 0 when there is no snapshot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct SnapshotMeta {
    /// Index of the last entry applied into the snapshot.
    pub index: u64,
    /// Term of that entry.
    pub term: u64,
}

/// Entries and positions of one member. Invariants (asserted):
/// `snapshot.index <= applied <= committed_handed <= min(commit, persisted)`,
/// `persisted <= handed_to_storage <= last`, `commit <= last`.
#[derive(Debug)]
pub(crate) struct RaftLog {
    snapshot: SnapshotMeta,
    /// Entries `snapshot.index + 1 ..= last_index`.
    entries: VecDeque<LogEntry>,
    handed_to_storage_index: u64,
    /// Set when entries already handed to storage were overwritten; reported once.
    overwritten_from: Option<u64>,
    persisted_index: u64,
    commit_index: u64,
    committed_handed_index: u64,
    applied_index: u64,
}

impl RaftLog {
    /// The log as restored from disk: all of it durable, nothing known to be committed
    /// beyond the snapshot.
    pub(crate) fn restored(
        snapshot: SnapshotMeta,
        entries: Vec<LogEntry>,
        applied: u64,
    ) -> RaftLog {
        let mut previous = EntryId {
            term: snapshot.term,
            index: snapshot.index,
        };
        for entry in &entries {
            assert_eq!(entry.index, previous.index + 1, "restored log has a gap");
            assert!(
                entry.term >= previous.term,
                "restored log goes back in term"
            );
            previous = entry.id();
        }
        // Entries the shell applied before were committed: they count as such again.
        let applied = applied.max(snapshot.index);
        assert!(
            applied <= previous.index,
            "restored applied index {applied} beyond the log"
        );
        RaftLog {
            snapshot,
            entries: entries.into(),
            handed_to_storage_index: previous.index,
            overwritten_from: None,
            persisted_index: previous.index,
            commit_index: applied,
            committed_handed_index: applied,
            applied_index: applied,
        }
    }

    pub(crate) fn snapshot(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// Index of the first entry held in memory.
    pub(crate) fn first_index(&self) -> u64 {
        self.snapshot.index + 1
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.snapshot.index + self.entries.len() as u64
    }

    pub(crate) fn last_term(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.snapshot.term, |entry| entry.term)
    }

    pub(crate) fn persisted_index(&self) -> u64 {
        self.persisted_index
    }

    pub(crate) fn commit_index(&self) -> u64 {
        self.commit_index
    }

    pub(crate) fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Term of the entry at `index`, if known (compacted entries are not, except the last
    /// one the snapshot covers).
    pub(crate) fn term(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.entry(index).map(|entry| entry.term)
    }

    pub(crate) fn entry(&self, index: u64) -> Option<&LogEntry> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?)
    }

    /// Whether a log ending at (`last_index`, `last_term`) is at least as up to date as
    /// this one (Raft §5.4.1).
    pub(crate) fn is_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Appends entries that follow the last one.
    pub(crate) fn append(&mut self, entries: &[LogEntry]) {
        for entry in entries {
            assert_eq!(entry.index, self.last_index() + 1, "append leaves a gap");
            assert!(entry.term >= self.last_term(), "append goes back in term");
            self.entries.push_back(entry.clone());
        }
    }

    /// Removes the entries at `from` and after (a newer leader's entries replace them).
    pub(crate) fn truncate(&mut self, from: u64) {
        assert!(
            from > self.commit_index,
            "overwriting committed entry {from} (commit {})",
            self.commit_index
        );
        assert!(from > self.snapshot.index && from <= self.last_index());
        let keep = (from - self.first_index()) as usize;
        self.entries.truncate(keep);
        if self.handed_to_storage_index >= from {
            self.handed_to_storage_index = from - 1;
            self.overwritten_from = Some(self.overwritten_from.map_or(from, |old| old.min(from)));
        }
        self.persisted_index = self.persisted_index.min(from - 1);
    }

    /// Up to `max_entries` entries from `from`, stopping before `max_bytes` is exceeded
    /// (but at least one entry if there is one).
    pub(crate) fn entries_from(
        &self,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Vec<LogEntry> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut index = from;
        while let Some(entry) = self.entry(index) {
            if batch.len() == max_entries
                || (!batch.is_empty() && bytes + entry.size_bytes() > max_bytes)
            {
                break;
            }
            bytes += entry.size_bytes();
            batch.push(entry.clone());
            index += 1;
        }
        batch
    }

    /// Entries not yet handed to storage, and from which index earlier writes are void.
    pub(crate) fn take_unstable(&mut self) -> (Option<u64>, Vec<LogEntry>) {
        let entries = self.entries_from(self.handed_to_storage_index + 1, usize::MAX, usize::MAX);
        let overwritten_from = self.overwritten_from.take().map(|_| {
            let first = entries.first().map(|entry| entry.index);
            first.expect("an overwrite always comes with the entries that replace it")
        });
        self.handed_to_storage_index = self.last_index();
        (overwritten_from, entries)
    }

    pub(crate) fn has_unstable(&self) -> bool {
        self.handed_to_storage_index < self.last_index()
    }

    /// Storage made the entries up to (`index`, `term`) durable. Ignored when that entry
    /// was overwritten since. Returns whether the durable index moved.
    pub(crate) fn persisted(&mut self, index: u64, term: u64) -> bool {
        let handed = index <= self.handed_to_storage_index;
        if !handed || self.term(index) != Some(term) || index <= self.persisted_index {
            return false;
        }
        self.persisted_index = index;
        true
    }

    /// Raises the commit index (never lowers it).
    pub(crate) fn commit_to(&mut self, index: u64) {
        assert!(index <= self.last_index(), "commit {index} beyond the log");
        if index > self.commit_index {
            self.commit_index = index;
        }
    }

    /// Committed entries that are also durable here and not yet handed out for applying.
    pub(crate) fn take_committed(&mut self, max_entries: usize) -> Vec<LogEntry> {
        let end = self.commit_index.min(self.persisted_index);
        if end <= self.committed_handed_index {
            return Vec::new();
        }
        let count = ((end - self.committed_handed_index) as usize).min(max_entries);
        let batch = self.entries_from(self.committed_handed_index + 1, count, usize::MAX);
        assert_eq!(batch.len(), count, "committed entries missing from memory");
        self.committed_handed_index += count as u64;
        batch
    }

    pub(crate) fn has_committed_to_hand_out(&self) -> bool {
        self.commit_index.min(self.persisted_index) > self.committed_handed_index
    }

    /// The shell applied the entries up to `index`.
    pub(crate) fn applied_to(&mut self, index: u64) {
        assert!(
            index <= self.committed_handed_index,
            "applied {index} beyond what was handed out ({})",
            self.committed_handed_index
        );
        self.applied_index = self.applied_index.max(index);
    }

    /// Drops the entries a persisted snapshot covers. Returns false if it covers nothing new.
    pub(crate) fn compact(&mut self, snapshot: SnapshotMeta) -> bool {
        if snapshot.index <= self.snapshot.index {
            return false;
        }
        assert!(
            snapshot.index <= self.applied_index,
            "snapshot at {} beyond applied {}",
            snapshot.index,
            self.applied_index
        );
        assert_eq!(
            self.term(snapshot.index),
            Some(snapshot.term),
            "snapshot term differs from the log"
        );
        let drop = (snapshot.index - self.snapshot.index) as usize;
        self.entries.drain(..drop);
        self.snapshot = snapshot;
        true
    }

    /// Replaces the whole log by an installed snapshot (a follower too far behind).
    pub(crate) fn install(&mut self, snapshot: SnapshotMeta) {
        assert!(
            snapshot.index > self.commit_index,
            "installing snapshot {} at or below commit {}",
            snapshot.index,
            self.commit_index
        );
        assert!(
            !self.has_unstable(),
            "entries left unhanded across a snapshot install"
        );
        self.entries.clear();
        self.snapshot = snapshot;
        self.handed_to_storage_index = snapshot.index;
        self.overwritten_from = None;
        self.persisted_index = snapshot.index;
        self.commit_index = snapshot.index;
        self.committed_handed_index = snapshot.index;
        self.applied_index = snapshot.index;
    }

    /// The largest index at or below `index` whose term is at most `term` (the fast
    /// back-off after a rejected append); at least the snapshot index when its term
    /// qualifies, and below it (so a snapshot is needed) otherwise.
    pub(crate) fn find_conflict_by_term(&self, index: u64, term: u64) -> u64 {
        let mut candidate = index.min(self.last_index());
        while candidate > self.snapshot.index {
            match self.term(candidate) {
                Some(found) if found <= term => return candidate,
                _ => candidate -= 1,
            }
        }
        if self.snapshot.term <= term {
            candidate
        } else {
            candidate.saturating_sub(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(term: u64, index: u64) -> LogEntry {
        LogEntry {
            term,
            index,
            kind: 1,
            timestamp_ms: 0,
            payload: Rc::new(AlignedVec::new()),
        }
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(at, term)| entry(*term, at as u64 + 1))
            .collect();
        RaftLog::restored(SnapshotMeta::default(), entries, 0)
    }

    #[test]
    fn truncation_pulls_back_durability_and_reports_the_overwrite() {
        let mut log = log_of(&[1, 1, 2, 2]);
        log.append(&[entry(2, 5)]);
        assert_eq!(log.take_unstable().1.len(), 1);
        log.truncate(4);
        assert_eq!(log.persisted_index(), 3);
        log.append(&[entry(3, 4)]);
        let (overwritten_from, entries) = log.take_unstable();
        assert_eq!(overwritten_from, Some(4));
        assert_eq!(entries, vec![entry(3, 4)]);
        assert!(
            !log.persisted(5, 2),
            "a write of an overwritten entry counts for nothing"
        );
        assert!(log.persisted(4, 3));
    }

    #[test]
    #[should_panic(expected = "overwriting committed entry")]
    fn committed_entries_are_never_overwritten() {
        let mut log = log_of(&[1, 1, 2]);
        log.commit_to(3);
        log.truncate(3);
    }

    #[test]
    fn committed_entries_come_out_only_when_durable_here() {
        let mut log = log_of(&[1, 1]);
        log.append(&[entry(1, 3)]);
        log.commit_to(3);
        assert_eq!(log.take_committed(10).len(), 2);
        assert!(
            log.take_committed(10).is_empty(),
            "entry 3 is not durable yet"
        );
        let _ = log.take_unstable();
        assert!(log.persisted(3, 1));
        assert_eq!(log.take_committed(10), vec![entry(1, 3)]);
    }

    #[test]
    fn compaction_keeps_the_term_of_the_last_covered_entry() {
        let mut log = log_of(&[1, 2, 2, 3]);
        log.commit_to(4);
        let _ = log.take_committed(10);
        log.applied_to(3);
        assert!(log.compact(SnapshotMeta { index: 3, term: 2 }));
        assert_eq!(
            (log.first_index(), log.term(3), log.term(2)),
            (4, Some(2), None)
        );
        assert_eq!(log.entries_from(1, 10, 10), Vec::new());
    }

    #[test]
    fn conflict_search_finds_the_last_index_with_a_term_not_above() {
        let log = log_of(&[1, 1, 2, 2, 4, 4]);
        assert_eq!(log.find_conflict_by_term(6, 3), 4);
        assert_eq!(log.find_conflict_by_term(9, 4), 6);
        assert_eq!(log.find_conflict_by_term(6, 0), 0);
    }

    #[test]
    fn batches_respect_entry_and_byte_bounds_but_carry_at_least_one() {
        let log = log_of(&[1, 1, 1, 1]);
        assert_eq!(log.entries_from(1, 3, usize::MAX).len(), 3);
        assert_eq!(log.entries_from(1, 10, 1).len(), 1);
        assert_eq!(
            log.entries_from(2, 10, 2 * RAFT_ENTRY_OVERHEAD_BYTES).len(),
            2
        );
    }
}
