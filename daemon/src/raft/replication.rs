//! The leader's side of replication: appends with flow control, heartbeats, commit by
//! majority, check-quorum, read-index confirmation, snapshot sending, leadership transfer.
//!
//! A leader counts its own log only as far as the shell reported it durable, and commits
//! an index only when it is durable on a majority and of the current term (earlier terms
//! commit through it, Raft §5.4.2). Both are asserted.

use super::config::NodeId;
use super::message::{AppendResult, Message, SnapshotOutcome};
use super::node::RaftNode;
use super::progress::ProgressState;
use super::snapshot_transfer::SnapshotSend;
use super::state::Role;

impl RaftNode {
    pub(crate) fn tick_leader(&mut self) {
        self.heartbeat_elapsed_ticks += 1;
        self.election_elapsed_ticks += 1;
        if self.election_elapsed_ticks >= self.config.election_ticks_min {
            self.election_elapsed_ticks = 0;
            if self.config.check_quorum && !self.quorum_recently_active() {
                self.become_follower(self.term, None);
                return;
            }
        }
        if let Some(transfer) = self.transfer.as_mut() {
            transfer.elapsed_ticks += 1;
            if transfer.elapsed_ticks >= self.config.election_ticks_min {
                self.transfer = None;
            }
        }
        let stall_ticks = self.config.election_ticks_min;
        let stalled: Vec<NodeId> = self
            .progress
            .iter_mut()
            .filter_map(|(peer, progress)| progress.tick_stall(stall_ticks).then_some(*peer))
            .collect();
        for peer in stalled {
            self.send_append(peer, true);
        }
        self.tick_snapshot_transfers();
        if self.heartbeat_elapsed_ticks >= self.config.heartbeat_ticks {
            self.heartbeat_elapsed_ticks = 0;
            self.broadcast_heartbeat();
        }
    }

    /// Whether a majority (this leader included) was heard from since the last check.
    fn quorum_recently_active(&mut self) -> bool {
        let active = self
            .progress
            .values_mut()
            .map(|progress| progress.take_recent_active())
            .filter(|active| *active)
            .count();
        1 + active >= self.config.quorum()
    }

    pub(crate) fn broadcast_heartbeat(&mut self) {
        let (term, commit, read_round) = (self.term, self.log.commit_index(), self.reads.round());
        let heartbeats: Vec<(NodeId, Message)> = self
            .progress
            .iter()
            .map(|(peer, progress)| {
                // A follower may lack entries up to our commit; it learns only what matches.
                let commit = commit.min(progress.match_index());
                (
                    *peer,
                    Message::Heartbeat {
                        term,
                        commit,
                        read_round,
                    },
                )
            })
            .collect();
        for (peer, heartbeat) in heartbeats {
            self.outbox.send(peer, heartbeat);
        }
    }

    /// Sends every follower what it lacks, as far as flow control allows.
    pub(crate) fn broadcast_append(&mut self) {
        for peer in self.peers() {
            self.send_appends(peer);
        }
    }

    fn send_appends(&mut self, peer: NodeId) {
        while self.send_append(peer, false) {}
    }

    /// Sends one append to `peer` from its next index, unless paused (or empty and not
    /// `allow_empty`, which probes where the logs match). Returns whether one was sent.
    pub(crate) fn send_append(&mut self, peer: NodeId, allow_empty: bool) -> bool {
        let max_inflight_bytes = self.config.max_inflight_bytes;
        let Some(progress) = self.progress.get(&peer) else {
            return false;
        };
        if progress.is_paused(max_inflight_bytes) {
            return false;
        }
        let prev_index = progress.next_index() - 1;
        let Some(prev_term) = self.log.term(prev_index) else {
            self.start_snapshot(peer);
            return false;
        };
        let entries = self.log.entries_from(
            progress.next_index(),
            self.config.max_entries_per_append,
            self.config.max_bytes_per_append,
        );
        if entries.is_empty() && !allow_empty {
            return false;
        }
        let bytes = entries.iter().map(|entry| entry.size_bytes()).sum();
        let last_index = entries.last().map(|entry| entry.index);
        if let Some(progress) = self.progress.get_mut(&peer) {
            progress.sent_append(last_index, bytes);
        }
        let message = Message::Append {
            term: self.term,
            prev_index,
            prev_term,
            entries,
            commit: self.log.commit_index(),
        };
        self.outbox.send(peer, message);
        true
    }

    pub(crate) fn handle_append_response(&mut self, from: NodeId, result: AppendResult) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let snapshot_index = self.log.snapshot().index;
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        match result {
            AppendResult::Accepted { match_index } => {
                assert!(
                    match_index <= last_index,
                    "{from} acknowledged {match_index} beyond our log"
                );
                if progress.accepted(match_index) {
                    if progress.state() == ProgressState::Snapshot && match_index >= snapshot_index
                    {
                        progress.become_probe();
                    }
                    self.maybe_commit();
                    self.advance_transfer(from);
                }
                self.send_appends(from);
            }
            AppendResult::Rejected {
                rejected_index,
                hint_index,
                hint_term,
            } => {
                let next_guess = self.log.find_conflict_by_term(hint_index, hint_term) + 1;
                let Some(progress) = self.progress.get_mut(&from) else {
                    return;
                };
                if progress.rejected(rejected_index, next_guess) {
                    self.send_append(from, true);
                }
            }
        }
    }

    pub(crate) fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        progress.heartbeat_acked(read_round);
        let (state, match_index) = (progress.state(), progress.match_index());
        self.release_reads();
        self.advance_transfer(from);
        match state {
            ProgressState::Probe if match_index < last_index => {
                self.send_append(from, true);
            }
            ProgressState::Replicate => self.send_appends(from),
            ProgressState::Probe | ProgressState::Snapshot => {}
        }
    }

    /// Commits the highest index durable on a majority, if it is of the current term.
    pub(crate) fn maybe_commit(&mut self) {
        let mut matches: Vec<u64> = self
            .progress
            .values()
            .map(|progress| progress.match_index())
            .collect();
        matches.push(self.log.persisted_index());
        matches.sort_unstable_by(|left, right| right.cmp(left));
        let quorum = self.config.quorum();
        let candidate = matches[quorum - 1];
        if candidate <= self.log.commit_index() || self.log.term(candidate) != Some(self.term) {
            return;
        }
        let durable_on = matches.iter().filter(|index| **index >= candidate).count();
        assert!(
            durable_on >= quorum,
            "committing {candidate} durable on {durable_on} members only"
        );
        let first_of_term = !self.committed_in_term();
        self.log.commit_to(candidate);
        if first_of_term && self.reads.term_committed(candidate).is_some() {
            self.broadcast_heartbeat();
            self.release_reads();
        }
    }

    /// Hands out the reads a majority confirmed.
    pub(crate) fn release_reads(&mut self) {
        let quorum = self.config.quorum();
        let progress = &self.progress;
        let confirmed = self.reads.confirmed(|round| {
            let acked = progress
                .values()
                .filter(|progress| progress.read_round_acked() >= round)
                .count();
            1 + acked >= quorum
        });
        self.read_states.extend(confirmed);
    }

    /// Moves a leadership transfer to `peer` along: once `peer` holds the whole log it is
    /// told to campaign (again on later answers, in case that message was lost).
    pub(crate) fn advance_transfer(&mut self, peer: NodeId) {
        if self.transfer.map(|transfer| transfer.to) != Some(peer) {
            return;
        }
        let caught_up = self
            .progress
            .get(&peer)
            .is_some_and(|progress| progress.match_index() == self.log.last_index());
        if caught_up {
            self.outbox
                .send(peer, Message::TimeoutNow { term: self.term });
        } else {
            self.send_appends(peer);
        }
    }

    fn start_snapshot(&mut self, peer: NodeId) {
        let Some(progress) = self.progress.get_mut(&peer) else {
            return;
        };
        progress.become_snapshot();
        let usable = self
            .snapshot_body
            .as_ref()
            .filter(|(meta, _)| meta.index >= self.log.snapshot().index);
        match usable {
            Some((meta, body)) => {
                progress.snapshot_send = Some(SnapshotSend::new(*meta, body.clone()));
                self.send_snapshot_chunk(peer);
            }
            None => self.ask_for_snapshot(peer),
        }
    }

    fn ask_for_snapshot(&mut self, peer: NodeId) {
        if !self.snapshot_needed_for.contains(&peer) {
            self.snapshot_needed_for.push(peer);
        }
    }

    /// The shell handed over a snapshot body: every follower waiting for one gets it.
    pub(crate) fn start_waiting_snapshot_transfers(&mut self) {
        let waiting: Vec<NodeId> = self
            .progress
            .iter()
            .filter(|(_, progress)| {
                progress.state() == ProgressState::Snapshot && progress.snapshot_send.is_none()
            })
            .map(|(peer, _)| *peer)
            .collect();
        for peer in waiting {
            self.start_snapshot(peer);
        }
    }

    fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let chunk_bytes = self.config.max_snapshot_chunk_bytes;
        let Some(send) = self
            .progress
            .get_mut(&peer)
            .and_then(|progress| progress.snapshot_send.as_mut())
        else {
            return;
        };
        let chunk = send.chunk(chunk_bytes);
        let message = Message::InstallSnapshotChunk {
            term: self.term,
            meta: chunk.meta,
            total_bytes: chunk.total_bytes,
            offset: chunk.offset,
            data: chunk.data,
            last: chunk.last,
        };
        self.outbox.send(peer, message);
    }

    /// Resends unanswered chunks, asks again for a body that never came, and lets go of
    /// the body once no follower needs it.
    fn tick_snapshot_transfers(&mut self) {
        let resend_ticks = self.config.election_ticks_min;
        let mut resend = Vec::new();
        let mut ask = Vec::new();
        for (peer, progress) in self.progress.iter_mut() {
            if progress.state() != ProgressState::Snapshot {
                continue;
            }
            match progress.snapshot_send.as_mut() {
                Some(send) => {
                    if send.tick(resend_ticks) {
                        resend.push(*peer);
                    }
                }
                None => {
                    progress.snapshot_wait_ticks += 1;
                    if progress.snapshot_wait_ticks >= resend_ticks {
                        progress.snapshot_wait_ticks = 0;
                        ask.push(*peer);
                    }
                }
            }
        }
        for peer in resend {
            self.send_snapshot_chunk(peer);
        }
        for peer in ask {
            self.ask_for_snapshot(peer);
        }
        let any_transfer = self
            .progress
            .values()
            .any(|progress| progress.state() == ProgressState::Snapshot);
        if !any_transfer {
            self.snapshot_body = None;
        }
    }

    pub(crate) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: u64,
        outcome: SnapshotOutcome,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let Some(progress) = self.progress.get_mut(&from) else {
            return;
        };
        let sending = progress
            .snapshot_send
            .as_ref()
            .is_some_and(|send| send.meta().index == snapshot_index);
        match outcome {
            SnapshotOutcome::Received { next_offset } => {
                let moved = sending
                    && progress
                        .snapshot_send
                        .as_mut()
                        .is_some_and(|send| send.received(next_offset));
                if moved {
                    self.send_snapshot_chunk(from);
                }
            }
            SnapshotOutcome::Installed => {
                // A snapshot covers entries committed under some leader, so they are in
                // this leader's log, though maybe not yet known committed here (the
                // follower may report to a leader elected while it was installing).
                assert!(
                    snapshot_index <= self.log.last_index(),
                    "{from} installed a snapshot beyond the leader's log"
                );
                if progress.state() == ProgressState::Snapshot {
                    progress.snapshot_installed(snapshot_index);
                } else {
                    progress.accepted(snapshot_index);
                }
                self.maybe_commit();
                self.send_append(from, true);
            }
            SnapshotOutcome::Refused => {
                if sending {
                    progress.become_probe();
                }
            }
        }
    }
}
