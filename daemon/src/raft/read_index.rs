//! Linearizable reads without a log entry (read index, Raft thesis §6.4).
//!
//! The leader notes its commit index when a read arrives, then proves it still leads by a
//! round of heartbeats that a majority answers; the read may then be served from any state
//! applied up to that index. A leader that has not yet committed an entry of its own term
//! does not know the latest commit index, so its reads wait for that first. Rounds are
//! numbered: an answer to round `r` confirms every read registered at or before `r`, so
//! one heartbeat round serves any number of reads.

use std::collections::VecDeque;

/// A confirmed read: serve it once the store has applied `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadState {
    /// The shell's token for the read.
    pub context: u64,
    /// Commit index the read must observe.
    pub index: u64,
}

#[derive(Debug)]
struct PendingRead {
    context: u64,
    index: u64,
    round: u64,
}

/// Reads a leader holds until they are confirmed. Cleared when it stops leading (the
/// shell then fails or redirects the reads it was waiting for).
#[derive(Debug, Default)]
pub(crate) struct ReadIndex {
    waiting_for_term_commit: VecDeque<u64>,
    pending: VecDeque<PendingRead>,
    round: u64,
}

impl ReadIndex {
    /// Reads held, in both stages.
    pub(crate) fn len(&self) -> usize {
        self.waiting_for_term_commit.len() + self.pending.len()
    }

    /// The latest round number (0 before any read).
    pub(crate) fn round(&self) -> u64 {
        self.round
    }

    /// Registers a read. With `commit` (the leader has committed in its term) the read
    /// joins a new round, whose number is returned for the heartbeats to carry.
    pub(crate) fn request(&mut self, context: u64, commit: Option<u64>) -> Option<u64> {
        match commit {
            None => {
                self.waiting_for_term_commit.push_back(context);
                None
            }
            Some(index) => {
                self.round += 1;
                self.pending.push_back(PendingRead {
                    context,
                    index,
                    round: self.round,
                });
                Some(self.round)
            }
        }
    }

    /// The leader committed in its term at `commit`: the waiting reads start a round.
    pub(crate) fn term_committed(&mut self, commit: u64) -> Option<u64> {
        if self.waiting_for_term_commit.is_empty() {
            return None;
        }
        self.round += 1;
        for context in self.waiting_for_term_commit.drain(..) {
            self.pending.push_back(PendingRead {
                context,
                index: commit,
                round: self.round,
            });
        }
        Some(self.round)
    }

    /// Releases, in order, the reads whose round a majority has answered.
    pub(crate) fn confirmed(&mut self, quorum_acked: impl Fn(u64) -> bool) -> Vec<ReadState> {
        let mut ready = Vec::new();
        while let Some(front) = self.pending.front() {
            if !quorum_acked(front.round) {
                break;
            }
            ready.push(ReadState {
                context: front.context,
                index: front.index,
            });
            self.pending.pop_front();
        }
        ready
    }

    /// Forgets every read (leadership lost).
    pub(crate) fn clear(&mut self) {
        self.waiting_for_term_commit.clear();
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wait_for_the_term_commit_then_for_their_round() {
        let mut reads = ReadIndex::default();
        assert_eq!(reads.request(1, None), None);
        assert_eq!(reads.term_committed(7), Some(1));
        assert_eq!(reads.request(2, Some(9)), Some(2));
        assert!(reads.confirmed(|round| round < 1).is_empty());
        let first = reads.confirmed(|round| round <= 1);
        assert_eq!(
            first,
            vec![ReadState {
                context: 1,
                index: 7
            }]
        );
        let second = reads.confirmed(|round| round <= 2);
        assert_eq!(
            second,
            vec![ReadState {
                context: 2,
                index: 9
            }]
        );
        assert_eq!(reads.len(), 0);
    }
}
