//! What a leader knows about one follower's log, and the flow control of what it sends.
//!
//! A follower is probed (one append at a time) until an append is accepted, then
//! replicated to with pipelined appends bounded by in-flight bytes and messages; a follower
//! whose needed entries were compacted is sent a snapshot instead. Lost appends are found
//! by a rejected later append, or by a stall timeout that falls back to probing.

use super::snapshot_transfer::SnapshotSend;
use crate::limits::RAFT_INFLIGHT_APPENDS_MAX;
use std::collections::VecDeque;

/// How a leader currently sends to a follower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// Where the logs match is unknown: one append at a time.
    Probe,
    /// The logs match up to `match_index`: appends are pipelined.
    Replicate,
    /// The follower needs entries that were compacted: a snapshot is on its way.
    Snapshot,
}

/// A leader's view of one follower. Lives on the shard's core, in the leader's `RaftNode`.
#[derive(Debug)]
pub struct Progress {
    match_index: u64,
    next_index: u64,
    state: ProgressState,
    probe_sent: bool,
    /// Last index and bytes of each append in flight (replicate state), oldest first.
    inflight: VecDeque<(u64, usize)>,
    inflight_bytes: usize,
    stalled_ticks: u64,
    recent_active: bool,
    read_round_acked: u64,
    pub(crate) snapshot_send: Option<SnapshotSend>,
    pub(crate) snapshot_wait_ticks: u64,
}

impl Progress {
    /// A follower nothing is known about yet: probe from just after the leader's log.
    pub(crate) fn new(next_index: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            stalled_ticks: 0,
            recent_active: false,
            read_round_acked: 0,
            snapshot_send: None,
            snapshot_wait_ticks: 0,
        }
    }

    /// Highest index known to be durable on the follower and equal to the leader's.
    pub fn match_index(&self) -> u64 {
        self.match_index
    }

    /// Next index to send.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// How the leader sends to it.
    pub fn state(&self) -> ProgressState {
        self.state
    }

    /// Bytes sent and not yet acknowledged.
    pub fn inflight_bytes(&self) -> usize {
        self.inflight_bytes
    }

    pub(crate) fn read_round_acked(&self) -> u64 {
        self.read_round_acked
    }

    /// Whether the leader must hold further appends back.
    pub(crate) fn is_paused(&self, max_inflight_bytes: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => {
                self.inflight.len() >= RAFT_INFLIGHT_APPENDS_MAX
                    || self.inflight_bytes >= max_inflight_bytes
            }
            ProgressState::Snapshot => true,
        }
    }

    /// An append ending at `last_index` (None if empty) and of `bytes` was sent.
    pub(crate) fn sent_append(&mut self, last_index: Option<u64>, bytes: usize) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate => {
                if let Some(last_index) = last_index {
                    assert!(last_index >= self.next_index, "append does not advance");
                    self.next_index = last_index + 1;
                    self.inflight.push_back((last_index, bytes));
                    self.inflight_bytes += bytes;
                }
            }
            ProgressState::Snapshot => panic!("append sent to a follower receiving a snapshot"),
        }
    }

    /// The follower's log matches up to `match_index`. Returns whether that is news.
    pub(crate) fn accepted(&mut self, match_index: u64) -> bool {
        self.recent_active = true;
        let news = match_index > self.match_index;
        if news {
            self.match_index = match_index;
            self.next_index = self.next_index.max(match_index + 1);
            self.stalled_ticks = 0;
            while self
                .inflight
                .front()
                .is_some_and(|(last, _)| *last <= match_index)
            {
                if let Some((_, bytes)) = self.inflight.pop_front() {
                    self.inflight_bytes -= bytes;
                }
            }
        }
        // An answered probe (even one that taught nothing new, the follower being up to
        // date) shows where the logs match: pipeline from there.
        if self.state == ProgressState::Probe && match_index + 1 >= self.next_index {
            self.become_replicate();
        }
        news
    }

    /// The follower has no entry at `rejected_index` with the leader's term; `next_guess` is
    /// where the leader's and the follower's hint agree to try next. Returns false when the
    /// rejection answers an append already superseded.
    pub(crate) fn rejected(&mut self, rejected_index: u64, next_guess: u64) -> bool {
        self.recent_active = true;
        let current = match self.state {
            ProgressState::Replicate => rejected_index > self.match_index,
            ProgressState::Probe => rejected_index + 1 == self.next_index,
            ProgressState::Snapshot => false,
        };
        if !current {
            return false;
        }
        self.become_probe();
        self.next_index = next_guess.min(rejected_index).max(self.match_index + 1);
        true
    }

    /// Probe again from just after the match index.
    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.clear_inflight();
        self.snapshot_send = None;
    }

    fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.clear_inflight();
    }

    /// Stop sending appends until a snapshot is installed.
    pub(crate) fn become_snapshot(&mut self) {
        self.state = ProgressState::Snapshot;
        self.clear_inflight();
        self.snapshot_send = None;
        self.snapshot_wait_ticks = 0;
    }

    /// A snapshot up to `snapshot_index` is durable on the follower.
    pub(crate) fn snapshot_installed(&mut self, snapshot_index: u64) {
        self.recent_active = true;
        self.match_index = self.match_index.max(snapshot_index);
        self.become_probe();
    }

    fn clear_inflight(&mut self) {
        self.inflight.clear();
        self.inflight_bytes = 0;
        self.stalled_ticks = 0;
    }

    /// The follower answered a heartbeat of `read_round`.
    pub(crate) fn heartbeat_acked(&mut self, read_round: u64) {
        self.recent_active = true;
        self.read_round_acked = self.read_round_acked.max(read_round);
        // A lost probe is sent again once the follower is heard from.
        self.probe_sent = false;
    }

    /// Counts a tick; after `stall_ticks` ticks without an acknowledgement of appends in
    /// flight they are taken as lost and the follower is probed again. Returns true then.
    pub(crate) fn tick_stall(&mut self, stall_ticks: u64) -> bool {
        if self.state != ProgressState::Replicate || self.inflight.is_empty() {
            return false;
        }
        self.stalled_ticks += 1;
        if self.stalled_ticks < stall_ticks {
            return false;
        }
        self.become_probe();
        true
    }

    /// Whether the follower was heard from since the last check, clearing the mark.
    pub(crate) fn take_recent_active(&mut self) -> bool {
        std::mem::replace(&mut self.recent_active, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_is_paused_by_the_inflight_byte_bound_and_resumed_by_acks() {
        let mut progress = Progress::new(2);
        progress.sent_append(Some(2), 10);
        assert!(progress.is_paused(100), "one probe at a time");
        assert!(progress.accepted(2));
        assert_eq!(progress.state(), ProgressState::Replicate);
        progress.sent_append(Some(5), 60);
        progress.sent_append(Some(9), 60);
        assert!(progress.is_paused(100));
        assert_eq!(
            (progress.next_index(), progress.inflight_bytes()),
            (10, 120)
        );
        assert!(progress.accepted(5));
        assert!(!progress.is_paused(100));
        assert_eq!(progress.inflight_bytes(), 60);
    }

    #[test]
    fn stale_rejections_are_ignored_and_fresh_ones_fall_back_to_probing() {
        let mut progress = Progress::new(1);
        progress.accepted(4);
        progress.sent_append(Some(8), 10);
        assert!(
            !progress.rejected(3, 1),
            "rejection of an index below the match is stale"
        );
        assert!(progress.rejected(6, 6));
        assert_eq!(
            (progress.state(), progress.next_index()),
            (ProgressState::Probe, 6)
        );
        assert!(
            !progress.rejected(7, 5),
            "answers an append sent before the probe"
        );
    }

    #[test]
    fn an_answered_probe_starts_replication_even_without_news() {
        let mut progress = Progress::new(1);
        progress.accepted(3);
        progress.become_probe();
        progress.sent_append(None, 0);
        assert!(progress.is_paused(100));
        assert!(!progress.accepted(1), "a late answer to an older append");
        assert_eq!(progress.state(), ProgressState::Probe);
        assert!(
            !progress.accepted(3),
            "the probe at 3 answered: nothing new"
        );
        assert_eq!(
            (progress.state(), progress.next_index()),
            (ProgressState::Replicate, 4)
        );
        assert!(!progress.is_paused(100));
    }

    #[test]
    fn stalled_appends_are_taken_as_lost() {
        let mut progress = Progress::new(1);
        progress.accepted(2);
        progress.sent_append(Some(4), 10);
        assert!(!progress.tick_stall(2));
        assert!(progress.tick_stall(2));
        assert_eq!(
            (progress.state(), progress.next_index()),
            (ProgressState::Probe, 3)
        );
    }
}
