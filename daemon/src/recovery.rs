//! Rebuilding a shard's mirror from disk (sans-IO): the snapshot, then the core's WAL
//! records of that shard in order.
//!
//! The WAL is append-only, so Raft's log surgery is written as records that supersede
//! earlier ones: an entry record whose index is at or below the last one seen replaces
//! that suffix (a new leader overwrote uncommitted entries); a `LogReset` record empties
//! the log after an index (a snapshot was installed); a `HardState` record carries the
//! term, the vote and the highest index known committed, the last one wins. Entries up to
//! the recovered commit index are applied at once; the rest wait for the group.

use crate::entry::EntryKind;
use crate::raft::log::{LogEntry, SnapshotMeta};
use crate::raft::state::{HardState, Restored};
use crate::store::Store;
use crate::wal::RecordHeader;
use rkyv::util::AlignedVec;

/// WAL record kind of a hard-state record (after the entry kinds 1..=3).
pub const RECORD_KIND_HARD_STATE: u8 = 4;
/// WAL record kind of a log reset (snapshot installed).
pub const RECORD_KIND_LOG_RESET: u8 = 5;
/// Payload bytes of a hard-state record: term, vote (0 = none), commit index.
pub const HARD_STATE_PAYLOAD_BYTES: usize = 24;

/// Term, vote and commit index of one mirror, as last made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableHardState {
    /// Current term.
    pub term: u64,
    /// Node voted for in `term` (0: none).
    pub vote: u64,
    /// Highest index known committed.
    pub commit: u64,
}

impl DurableHardState {
    /// The record payload.
    pub fn encode(&self) -> [u8; HARD_STATE_PAYLOAD_BYTES] {
        let mut bytes = [0u8; HARD_STATE_PAYLOAD_BYTES];
        bytes[0..8].copy_from_slice(&self.term.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.vote.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.commit.to_le_bytes());
        bytes
    }

    /// Parses a record payload.
    pub fn decode(payload: &[u8]) -> Option<DurableHardState> {
        if payload.len() != HARD_STATE_PAYLOAD_BYTES {
            return None;
        }
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&payload[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        Some(DurableHardState {
            term: word(0),
            vote: word(8),
            commit: word(16),
        })
    }
}

/// An entry read back from the WAL.
#[derive(Debug, Clone)]
pub struct RecoveredEntry {
    /// Term.
    pub term: u64,
    /// Index.
    pub index: u64,
    /// Kind.
    pub kind: EntryKind,
    /// Leader-assigned time.
    pub timestamp_ms: u64,
    /// Payload, aligned for zero-copy access.
    pub payload: AlignedVec,
}

/// A mirror being rebuilt.
#[derive(Debug)]
pub struct RecoveredShard {
    /// Store as of the snapshot (then as of the applied entries, after `finish`).
    pub store: Store,
    /// Index and term of the snapshot (0, 0 without one).
    pub snapshot_index: u64,
    /// Term of the snapshot's last entry.
    pub snapshot_term: u64,
    /// Last durable hard state.
    pub hard_state: DurableHardState,
    /// Log entries after the snapshot, in index order.
    pub entries: Vec<RecoveredEntry>,
}

impl RecoveredShard {
    /// A mirror at its snapshot (or empty).
    pub fn new(store: Store, snapshot_index: u64, snapshot_term: u64) -> RecoveredShard {
        assert_eq!(store.applied_index(), snapshot_index);
        RecoveredShard {
            store,
            snapshot_index,
            snapshot_term,
            hard_state: DurableHardState::default(),
            entries: Vec::new(),
        }
    }

    /// Index of the last entry in the log.
    pub fn last_index(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot_index, |entry| entry.index)
    }

    /// Drops the entries after `index` (entries are contiguous from the snapshot on, so
    /// this is a truncation by position, not a scan).
    fn truncate_after(&mut self, index: u64) {
        let keep = index.saturating_sub(self.snapshot_index) as usize;
        if keep < self.entries.len() {
            self.entries.truncate(keep);
        }
    }

    /// Takes one WAL record of this shard.
    pub fn replay(&mut self, header: &RecordHeader, payload: &[u8]) -> Result<(), String> {
        let shard = header.shard;
        match header.kind {
            RECORD_KIND_HARD_STATE => {
                let state = DurableHardState::decode(payload).ok_or_else(|| {
                    format!(
                        "hard-state record of shard {shard} has {} bytes",
                        payload.len()
                    )
                })?;
                if state.term < self.hard_state.term {
                    return Err(format!(
                        "hard state of shard {shard} goes back from term {} to {}",
                        self.hard_state.term, state.term
                    ));
                }
                self.hard_state = state;
                Ok(())
            }
            RECORD_KIND_LOG_RESET => {
                // Entries after header.index were overwritten or superseded by a snapshot.
                self.truncate_after(header.index);
                Ok(())
            }
            kind => {
                let kind = EntryKind::from_byte(kind).ok_or_else(|| {
                    format!(
                        "record {} of shard {shard} has unknown kind {kind}",
                        header.index
                    )
                })?;
                self.replay_entry(header, kind, payload)
            }
        }
    }

    fn replay_entry(
        &mut self,
        header: &RecordHeader,
        kind: EntryKind,
        payload: &[u8],
    ) -> Result<(), String> {
        if header.index <= self.snapshot_index {
            return Ok(()); // covered by the snapshot
        }
        if header.index > self.last_index() + 1 {
            return Err(format!(
                "log of shard {} jumps from entry {} to entry {}",
                header.shard,
                self.last_index(),
                header.index
            ));
        }
        // An entry at or below the end supersedes the suffix from its index on.
        self.truncate_after(header.index - 1);
        if let Some(previous) = self.entries.last() {
            if previous.term > header.term {
                return Err(format!(
                    "terms of shard {} go back at entry {}",
                    header.shard, header.index
                ));
            }
        }
        let mut aligned = AlignedVec::with_capacity(payload.len());
        aligned.extend_from_slice(payload);
        self.entries.push(RecoveredEntry {
            term: header.term,
            index: header.index,
            kind,
            timestamp_ms: header.timestamp_ms,
            payload: aligned,
        });
        Ok(())
    }

    /// Applies what is known committed and splits the mirror into its store and what its
    /// Raft member resumes from.
    pub fn into_parts(mut self) -> (Store, Restored) {
        self.apply_committed();
        let last_term = self
            .entries
            .last()
            .map_or(self.snapshot_term, |entry| entry.term);
        let vote = self.hard_state.vote;
        let restored = Restored {
            // Logs written before hard-state records existed carry terms only in entries.
            hard_state: HardState {
                term: self.hard_state.term.max(last_term),
                vote: (vote != 0).then_some(vote),
            },
            snapshot: SnapshotMeta {
                index: self.snapshot_index,
                term: self.snapshot_term,
            },
            entries: self
                .entries
                .into_iter()
                .map(|entry| LogEntry {
                    term: entry.term,
                    index: entry.index,
                    kind: entry.kind as u8,
                    timestamp_ms: entry.timestamp_ms,
                    payload: std::rc::Rc::new(entry.payload),
                })
                .collect(),
            applied: self.store.applied_index(),
        };
        (self.store, restored)
    }

    /// Applies the entries known committed (up to the durable commit index) to the store.
    pub fn apply_committed(&mut self) {
        let commit = self.hard_state.commit.min(self.last_index());
        for entry in &self.entries {
            if entry.index <= self.store.applied_index() {
                continue;
            }
            if entry.index > commit {
                break;
            }
            self.store.apply(
                entry.term,
                entry.index,
                entry.timestamp_ms,
                entry.kind,
                &entry.payload,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(kind: u8, term: u64, index: u64) -> RecordHeader {
        RecordHeader {
            shard: 0,
            kind,
            term,
            index,
            timestamp_ms: 5,
        }
    }

    fn noop(shard: &mut RecoveredShard, term: u64, index: u64) -> Result<(), String> {
        shard.replay(&header(EntryKind::Noop as u8, term, index), &[])
    }

    fn terms(shard: &RecoveredShard) -> Vec<(u64, u64)> {
        shard
            .entries
            .iter()
            .map(|entry| (entry.index, entry.term))
            .collect()
    }

    #[test]
    fn later_entries_supersede_a_suffix() {
        let mut shard = RecoveredShard::new(Store::new(0, 1), 0, 0);
        for index in 1..=4 {
            noop(&mut shard, 1, index).expect("append");
        }
        noop(&mut shard, 2, 3).expect("overwrite from 3");
        assert_eq!(terms(&shard), vec![(1, 1), (2, 1), (3, 2)]);
        assert!(noop(&mut shard, 2, 5).is_err(), "a gap is corruption");
        assert!(noop(&mut shard, 1, 4).is_err(), "terms never go back");
    }

    #[test]
    fn hard_state_last_wins_and_commit_applies() {
        let mut shard = RecoveredShard::new(Store::new(0, 1), 0, 0);
        for index in 1..=3 {
            noop(&mut shard, 1, index).expect("append");
        }
        let state = DurableHardState {
            term: 1,
            vote: 2,
            commit: 2,
        };
        shard
            .replay(&header(RECORD_KIND_HARD_STATE, 0, 0), &state.encode())
            .expect("state");
        assert_eq!(shard.hard_state, state);
        shard.apply_committed();
        assert_eq!(
            shard.store.applied_index(),
            2,
            "only what is known committed is applied"
        );
        let older = DurableHardState { term: 0, ..state };
        assert!(shard
            .replay(&header(RECORD_KIND_HARD_STATE, 0, 0), &older.encode())
            .is_err());
    }

    #[test]
    fn log_reset_empties_the_log_after_a_snapshot() {
        let mut shard = RecoveredShard::new(Store::new(0, 1), 0, 0);
        for index in 1..=3 {
            noop(&mut shard, 1, index).expect("append");
        }
        shard
            .replay(&header(RECORD_KIND_LOG_RESET, 2, 1), &[])
            .expect("reset");
        assert_eq!(terms(&shard), vec![(1, 1)]);
    }
}
