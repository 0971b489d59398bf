//! One member of one shard's Raft group, sans-IO (DESIGN.md §5, §10).
//!
//! `RaftNode` is a plain state machine on the shard's core: the shell feeds it ticks,
//! messages from peers, proposals and I/O completions, and takes what to persist, send,
//! apply and serve from `ready()` (see `ready` for the contract). It reads no clock, does
//! no I/O, spawns nothing; its only randomness is the seeded election timeout. Election
//! rules live in `election`, the leader's side of replication in `replication`, the
//! follower's in `follower`.

use super::config::{NodeId, RaftConfig};
use super::error::ProposeError;
use super::log::{LogEntry, RaftLog, SnapshotMeta};
use super::message::Message;
use super::outbox::Outbox;
use super::progress::Progress;
use super::random::SeededRandom;
use super::read_index::{ReadIndex, ReadState};
use super::ready::Ready;
use super::snapshot_transfer::SnapshotAssembly;
use super::state::{HardState, Restored, Role, SoftState};
use super::EntryId;
use crate::entry::EntryKind;
use crate::limits::{
    RAFT_COMMITTED_ENTRIES_PER_READY_MAX, RAFT_ENTRY_PAYLOAD_BYTES_MAX,
    RAFT_READ_REQUESTS_PENDING_MAX, RAFT_UNCOMMITTED_ENTRIES_MAX,
};
use rkyv::util::AlignedVec;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A leadership transfer in progress at the leader.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    pub(crate) elapsed_ticks: u64,
}

/// A snapshot handed to the shell for installing, not yet reported durable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingInstall {
    pub(crate) meta: SnapshotMeta,
    pub(crate) leader: NodeId,
}

/// One member of one group. Owned by the shard's core; not shared across threads.
#[derive(Debug)]
pub struct RaftNode {
    pub(crate) config: RaftConfig,
    pub(crate) random: SeededRandom,
    pub(crate) term: u64,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) election_elapsed_ticks: u64,
    pub(crate) election_timeout_ticks: u64,
    pub(crate) heartbeat_elapsed_ticks: u64,
    /// Answers to this campaign (pre-vote or vote), first answer per member.
    pub(crate) votes: BTreeMap<NodeId, bool>,
    /// Leader only: every other voter's replication state.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) reads: ReadIndex,
    /// Leader only: the latest snapshot body the shell handed over, for new transfers.
    pub(crate) snapshot_body: Option<(SnapshotMeta, Rc<AlignedVec>)>,
    pub(crate) snapshot_needed_for: Vec<NodeId>,
    /// Leader only: new entries wait for `ready()` to go out, batched.
    pub(crate) broadcast_pending: bool,
    pub(crate) assembly: Option<SnapshotAssembly>,
    pub(crate) pending_install: Option<PendingInstall>,
    pub(crate) outbox: Outbox,
    pub(crate) read_states: Vec<ReadState>,
    pub(crate) snapshot_to_install: Option<(SnapshotMeta, AlignedVec)>,
    reported_hard_state: HardState,
    reported_soft_state: SoftState,
}

impl RaftNode {
    /// A member resuming from its durable state. `config` must be valid
    /// ([`RaftConfig::validate`]); a single-voter group elects itself at once.
    pub fn new(config: RaftConfig, restored: Restored) -> RaftNode {
        if let Err(error) = config.validate() {
            panic!("RaftNode::new with an invalid config: {error}");
        }
        let log = RaftLog::restored(restored.snapshot, restored.entries, restored.applied);
        assert!(
            restored.hard_state.term >= log.last_term(),
            "restored term {} below the log's last term {}",
            restored.hard_state.term,
            log.last_term()
        );
        let mut node = RaftNode {
            random: SeededRandom::new(config.seed),
            term: restored.hard_state.term,
            vote: restored.hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            election_elapsed_ticks: 0,
            election_timeout_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            transfer: None,
            reads: ReadIndex::default(),
            snapshot_body: None,
            snapshot_needed_for: Vec::new(),
            broadcast_pending: false,
            assembly: None,
            pending_install: None,
            outbox: Outbox::default(),
            read_states: Vec::new(),
            snapshot_to_install: None,
            reported_hard_state: restored.hard_state,
            reported_soft_state: SoftState {
                role: Role::Follower,
                leader: None,
                term: restored.hard_state.term,
            },
            config,
        };
        node.reset_election_timer();
        if node.config.voters.len() == 1 {
            node.campaign(false);
        }
        node
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// Its configuration.
    pub fn config(&self) -> &RaftConfig {
        &self.config
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// The leader it follows (itself when leading), if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Term and vote (durable once the Ready carrying them is written).
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
        }
    }

    /// Role, leader and term.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            role: self.role,
            leader: self.leader,
            term: self.term,
        }
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> u64 {
        self.log.commit_index()
    }

    /// Index of the last entry.
    pub fn last_index(&self) -> u64 {
        self.log.last_index()
    }

    /// Index of the first entry held (after the snapshot).
    pub fn first_index(&self) -> u64 {
        self.log.first_index()
    }

    /// Highest index the shell reported applied.
    pub fn applied_index(&self) -> u64 {
        self.log.applied_index()
    }

    /// Highest index the shell reported durable here.
    pub fn persisted_index(&self) -> u64 {
        self.log.persisted_index()
    }

    /// The last entry covered by the latest snapshot (installed or compacted to).
    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.log.snapshot()
    }

    /// Term of the entry at `index`, if still known.
    pub fn term_of(&self, index: u64) -> Option<u64> {
        self.log.term(index)
    }

    /// Entries in `from..to` still in memory (fewer if some were compacted or missing).
    pub fn entries(&self, from: u64, to: u64) -> Vec<LogEntry> {
        let count = usize::try_from(to.saturating_sub(from)).unwrap_or(usize::MAX);
        self.log.entries_from(from, count, usize::MAX)
    }

    /// Leader only: the replication state of each follower (match index for lag metrics).
    pub fn progress(&self) -> impl Iterator<Item = (NodeId, &Progress)> {
        self.progress.iter().map(|(id, progress)| (*id, progress))
    }

    /// The member leadership is being handed to, if a transfer is in progress.
    pub fn transferring_to(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.to)
    }

    /// Messages dropped because the shell did not take them in time (a counter).
    pub fn dropped_messages(&self) -> u64 {
        self.outbox.dropped
    }

    /// Advances timers by one tick: elections, heartbeats, check-quorum, resends.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed_ticks += 1;
                if self.election_elapsed_ticks >= self.election_timeout_ticks {
                    self.campaign(false);
                }
            }
        }
    }

    /// Handles a message from member `from`. Messages from non-members are ignored.
    pub fn step(&mut self, from: NodeId, message: Message) {
        if from == self.config.id || !self.config.voters.contains(&from) {
            return;
        }
        let term = message.term();
        if term > self.term {
            if !self.observe_higher_term(from, &message) {
                return;
            }
        } else if term < self.term {
            self.answer_stale(from, &message);
            return;
        }
        self.dispatch(from, message);
    }

    fn dispatch(&mut self, from: NodeId, message: Message) {
        match message {
            Message::PreVote {
                term,
                last_index,
                last_term,
            } => self.handle_pre_vote(from, term, last_index, last_term),
            Message::PreVoteResponse { term, granted } => {
                self.handle_pre_vote_response(from, term, granted)
            }
            Message::Vote {
                last_index,
                last_term,
                ..
            } => self.handle_vote(from, last_index, last_term),
            Message::VoteResponse { granted, .. } => {
                if self.role == Role::Candidate {
                    self.record_vote(from, granted);
                }
            }
            Message::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => self.handle_append(from, prev_index, prev_term, entries, commit),
            Message::AppendResponse { result, .. } => self.handle_append_response(from, result),
            Message::Heartbeat {
                commit, read_round, ..
            } => self.handle_heartbeat(from, commit, read_round),
            Message::HeartbeatResponse { read_round, .. } => {
                self.handle_heartbeat_response(from, read_round)
            }
            Message::InstallSnapshotChunk {
                meta,
                total_bytes,
                offset,
                data,
                last,
                ..
            } => self.handle_snapshot_chunk(from, meta, total_bytes, offset, &data, last),
            Message::InstallSnapshotResponse {
                snapshot_index,
                outcome,
                ..
            } => self.handle_snapshot_response(from, snapshot_index, outcome),
            Message::TimeoutNow { .. } => self.handle_timeout_now(from),
        }
    }

    /// Appends an entry as leader. It is committed once durable on a majority and comes
    /// out of `Ready::committed`; appends to followers go out with the next `ready()`.
    pub fn propose(
        &mut self,
        kind: u8,
        timestamp_ms: u64,
        payload: Rc<AlignedVec>,
    ) -> Result<EntryId, ProposeError> {
        self.check_can_propose()?;
        if payload.len() > RAFT_ENTRY_PAYLOAD_BYTES_MAX {
            return Err(ProposeError::PayloadTooLarge {
                bytes: payload.len(),
            });
        }
        let uncommitted = self.log.last_index() - self.log.commit_index();
        if uncommitted >= RAFT_UNCOMMITTED_ENTRIES_MAX as u64 {
            return Err(ProposeError::Overloaded);
        }
        let entry = LogEntry {
            term: self.term,
            index: self.log.last_index() + 1,
            kind,
            timestamp_ms,
            payload,
        };
        let id = entry.id();
        self.log.append(&[entry]);
        self.broadcast_pending = true;
        Ok(id)
    }

    fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        match self.transfer {
            Some(transfer) => Err(ProposeError::Transferring { to: transfer.to }),
            None => Ok(()),
        }
    }

    /// Starts a linearizable read identified by `context`. It comes back in
    /// `Ready::read_states` once leadership is confirmed; reads are dropped if this member
    /// stops leading first (the shell sees the role change in `Ready::soft_state`).
    pub fn read_index(&mut self, context: u64) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads.len() + self.read_states.len() >= RAFT_READ_REQUESTS_PENDING_MAX {
            return Err(ProposeError::Overloaded);
        }
        let commit = self.committed_in_term().then(|| self.log.commit_index());
        if self.reads.request(context, commit).is_some() {
            self.broadcast_heartbeat();
        }
        self.release_reads();
        Ok(())
    }

    /// Hands leadership to `to`: brings it up to date, then tells it to campaign. New
    /// proposals are refused until it takes over or `election_ticks_min` ticks pass.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.config.voters.contains(&to) {
            return Err(ProposeError::UnknownNode { node: to });
        }
        if to == self.config.id || self.transferring_to() == Some(to) {
            return Ok(());
        }
        self.transfer = Some(Transfer {
            to,
            elapsed_ticks: 0,
        });
        // Appends to it may be lost and only found so after a stall timeout, longer than
        // the transfer may take: probe it now instead.
        if let Some(progress) = self.progress.get_mut(&to) {
            if progress.state() == super::progress::ProgressState::Replicate {
                progress.become_probe();
            }
        }
        self.advance_transfer(to);
        Ok(())
    }

    /// Whether `ready()` has anything to hand out.
    pub fn has_ready(&self) -> bool {
        self.broadcast_pending
            || self.soft_state() != self.reported_soft_state
            || self.hard_state() != self.reported_hard_state
            || self.log.has_unstable()
            || self.log.has_committed_to_hand_out()
            || !self.outbox.is_empty()
            || !self.read_states.is_empty()
            || self.snapshot_to_install.is_some()
            || !self.snapshot_needed_for.is_empty()
    }

    /// Takes everything to persist, send, apply and serve (see `ready` for the contract).
    pub fn ready(&mut self) -> Ready {
        if std::mem::take(&mut self.broadcast_pending) && self.role == Role::Leader {
            self.broadcast_append();
        }
        let soft_state = self.soft_state();
        let hard_state = self.hard_state();
        let (truncate_from, entries) = self.log.take_unstable();
        let ready = Ready {
            soft_state: (soft_state != self.reported_soft_state).then_some(soft_state),
            hard_state: (hard_state != self.reported_hard_state).then_some(hard_state),
            truncate_from,
            entries,
            messages: std::mem::take(&mut self.outbox.now),
            messages_after_persist: std::mem::take(&mut self.outbox.after_persist),
            committed: self
                .log
                .take_committed(RAFT_COMMITTED_ENTRIES_PER_READY_MAX),
            read_states: std::mem::take(&mut self.read_states),
            snapshot_to_install: self.snapshot_to_install.take(),
            snapshot_needed_for: std::mem::take(&mut self.snapshot_needed_for),
        };
        self.reported_soft_state = soft_state;
        self.reported_hard_state = hard_state;
        ready
    }

    /// The shell made the entries up to (`index`, `term`) durable. Ignored if that entry
    /// was overwritten since.
    pub fn persisted(&mut self, index: u64, term: u64) {
        if self.log.persisted(index, term) && self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// The shell applied the committed entries up to `index`.
    pub fn applied(&mut self, index: u64) {
        self.log.applied_to(index);
    }

    /// The shell persisted a snapshot of the store at an applied index: entries it covers
    /// leave memory (followers that still need them will get the snapshot instead).
    pub fn compact(&mut self, snapshot: SnapshotMeta) {
        self.log.compact(snapshot);
        let stale = self
            .snapshot_body
            .as_ref()
            .is_some_and(|(meta, _)| meta.index < snapshot.index);
        if stale {
            self.snapshot_body = None;
        }
    }

    /// Leader: the latest persisted snapshot, asked for by `Ready::snapshot_needed_for`.
    /// Followers waiting for one start receiving it.
    pub fn snapshot_body(&mut self, meta: SnapshotMeta, body: Rc<AlignedVec>) {
        if self.role != Role::Leader || meta.index < self.log.snapshot().index {
            return;
        }
        assert!(
            meta.index <= self.log.commit_index(),
            "snapshot beyond the commit index"
        );
        assert_eq!(
            self.log.term(meta.index),
            Some(meta.term),
            "snapshot term differs from the log"
        );
        self.snapshot_body = Some((meta, body));
        self.start_waiting_snapshot_transfers();
    }

    /// Follower: the snapshot from `Ready::snapshot_to_install` is durable and in the store;
    /// the log now starts after it.
    pub fn snapshot_installed(&mut self, meta: SnapshotMeta) {
        let pending = self.pending_install.take();
        let pending = pending.expect("snapshot_installed without a snapshot to install");
        assert_eq!(
            pending.meta, meta,
            "installed another snapshot than the one handed out"
        );
        self.log.install(meta);
        let to = self.leader.unwrap_or(pending.leader);
        let outcome = super::message::SnapshotOutcome::Installed;
        let response = Message::InstallSnapshotResponse {
            term: self.term,
            snapshot_index: meta.index,
            outcome,
        };
        self.outbox.send_after_persist(to, response);
    }

    /// Whether the leader has committed an entry of its own term (so its commit index is
    /// the group's).
    pub(crate) fn committed_in_term(&self) -> bool {
        self.log.term(self.log.commit_index()) == Some(self.term)
    }

    /// A no-op entry for a new leader's term.
    pub(crate) fn noop_entry(&self) -> LogEntry {
        let last_index = self.log.last_index();
        let timestamp_ms = self
            .log
            .entry(last_index)
            .map_or(0, |entry| entry.timestamp_ms);
        LogEntry {
            term: self.term,
            index: last_index + 1,
            kind: EntryKind::Noop as u8,
            timestamp_ms,
            payload: Rc::new(AlignedVec::new()),
        }
    }
}
