//! One mirror of a shard on its owning core, sans-IO: the shard's Raft member, the store
//! (applied state), the coordinator driver and the clients waiting for answers.
//!
//! The core's shell drives it: client operations and two-phase-commit messages come in
//! through `propose_operation`, `read`, `on_participant_request` and
//! `on_participant_reply`; Raft messages through `step`; time through `tick`. After each
//! input the shell calls `advance`, which runs the Raft `Ready` cycle and returns what to
//! do ([`Output`]): answer clients, send messages, persist (then call `persisted`), route
//! two-phase-commit messages to other shards' primaries. Every mirror applies every
//! committed entry; only the primary answers clients and drives transactions.
//!
//! `S` is how the shell answers a client (a channel end); the mirror only moves it.

use crate::entry::{encode_command, Command, EntryKind};
use crate::raft::config::{NodeId, RaftConfig};
use crate::raft::log::{LogEntry, SnapshotMeta};
use crate::raft::message::Message;
use crate::raft::node::RaftNode;
use crate::raft::ready::Ready;
use crate::raft::state::{HardState, Restored, Role, SoftState};
use crate::raft::ProposeError;
use crate::store::{Effect, Store};
use crate::txn::message::{ParticipantReply, ParticipantRequest};
use crate::txn::Coordinator;
use quorder_proto::codec::access_operation;
use quorder_proto::{ArchivedOperation, ErrorReply, Reply};
use rkyv::util::AlignedVec;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

/// What the shell must make durable for a mirror, in the order given, before calling
/// [`Shard::persisted`] with its sequence number.
#[derive(Debug)]
pub struct PersistRequest {
    /// Acknowledge with `persisted(sequence)`; sequences are acknowledged in order.
    pub sequence: u64,
    /// Term and vote changed: write a hard-state record (with `commit`).
    pub hard_state: Option<HardState>,
    /// Highest index known committed when the request was made.
    pub commit: u64,
    /// Entries at this index or above written earlier are void (write a log reset at
    /// `truncate_from - 1` before the entries).
    pub truncate_from: Option<u64>,
    /// Entries to append.
    pub entries: Vec<LogEntry>,
    /// A snapshot received from the leader and already loaded into the store: write its
    /// file, then a log reset at its index.
    pub snapshot: Option<(SnapshotMeta, Rc<AlignedVec>)>,
}

/// Something the shell must do for the mirror.
#[derive(Debug)]
pub enum Output<S> {
    /// Answer a client.
    Reply(S, Reply),
    /// Send a Raft message to another member.
    Send(NodeId, Message),
    /// Make this durable, then call `persisted`.
    Persist(PersistRequest),
    /// Deliver to the primary of the participant shard.
    ToParticipant(ParticipantRequest),
    /// Deliver to the primary of the coordinator shard.
    ToCoordinator {
        /// The coordinator.
        coordinator: u32,
        /// The answer.
        reply: ParticipantReply,
    },
}

/// A persist request handed out and not yet acknowledged.
#[derive(Debug)]
struct Unacknowledged {
    sequence: u64,
    last_entry: Option<(u64, u64)>,
    snapshot: Option<SnapshotMeta>,
    messages: Vec<(NodeId, Message)>,
}

/// A linearizable read waiting for leadership confirmation or for the store to catch up.
#[derive(Debug)]
struct PendingRead<S> {
    sink: S,
    payload: AlignedVec,
    index: Option<u64>,
}

/// One mirror of a shard, owned by one core.
#[derive(Debug)]
pub struct Shard<S> {
    id: u32,
    raft: RaftNode,
    store: Store,
    coordinator: Coordinator,
    proposals: BTreeMap<u64, (u64, S)>,
    order_waiters: BTreeMap<u128, Vec<S>>,
    reads: BTreeMap<u64, PendingRead<S>>,
    next_read_context: u64,
    next_persist_sequence: u64,
    unacknowledged: VecDeque<Unacknowledged>,
    soft_state: SoftState,
}

impl<S> Shard<S> {
    /// A mirror over a store recovered to `restored.applied` (or its snapshot).
    pub fn new(
        store: Store,
        config: RaftConfig,
        restored: Restored,
        resend_interval_ms: u64,
    ) -> Shard<S> {
        assert_eq!(
            store.applied_index(),
            restored.applied.max(restored.snapshot.index)
        );
        let raft = RaftNode::new(config, restored);
        let soft_state = raft.soft_state();
        Shard {
            id: store.shard(),
            raft,
            store,
            coordinator: Coordinator::new(resend_interval_ms),
            proposals: BTreeMap::new(),
            order_waiters: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_read_context: 1,
            next_persist_sequence: 1,
            unacknowledged: VecDeque::new(),
            soft_state,
        }
    }

    /// The shard.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The applied state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Raft member.
    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// True if this mirror is the primary.
    pub fn is_leader(&self) -> bool {
        self.raft.role() == Role::Leader
    }

    /// Proposals and reads waiting for an answer.
    pub fn waiting_count(&self) -> usize {
        self.proposals.len()
            + self.reads.len()
            + self.order_waiters.values().map(Vec::len).sum::<usize>()
    }

    /// Persist requests handed out and not yet acknowledged.
    pub fn unacknowledged_count(&self) -> usize {
        self.unacknowledged.len()
    }

    /// A client write: proposed to the group if this mirror leads, refused otherwise.
    pub fn propose_operation(
        &mut self,
        payload: AlignedVec,
        timestamp_ms: u64,
        sink: S,
    ) -> Result<(), (S, ErrorReply)> {
        match self
            .raft
            .propose(EntryKind::Operation as u8, timestamp_ms, Rc::new(payload))
        {
            Ok(id) => {
                self.proposals.insert(id.index, (id.term, sink));
                Ok(())
            }
            Err(error) => Err((sink, self.refusal(error))),
        }
    }

    /// A client read (`GetItem`, `GetOrder`): served at the primary once a read index
    /// confirms it still leads and the store has applied that index.
    pub fn read(&mut self, payload: AlignedVec, sink: S) -> Result<(), (S, ErrorReply)> {
        let context = self.next_read_context;
        match self.raft.read_index(context) {
            Ok(()) => {
                self.next_read_context += 1;
                self.reads.insert(
                    context,
                    PendingRead {
                        sink,
                        payload,
                        index: None,
                    },
                );
                Ok(())
            }
            Err(error) => Err((sink, self.refusal(error))),
        }
    }

    fn refusal(&self, error: ProposeError) -> ErrorReply {
        match error {
            ProposeError::NotLeader { .. } | ProposeError::Transferring { .. } => {
                ErrorReply::NotPrimary { hint: None }
            }
            ProposeError::Overloaded => ErrorReply::Overloaded,
            other => ErrorReply::Invalid {
                field: "payload".to_string(),
                reason: other.to_string(),
            },
        }
    }

    /// The member the shell should redirect clients to, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.leader()
    }

    /// A Raft message from another member.
    pub fn step(&mut self, from: NodeId, message: Message) {
        self.raft.step(from, message);
    }

    /// One tick of the group's clock, and the coordinator's re-sends.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Output<S>> {
        self.raft.tick();
        if !self.is_leader() {
            return Vec::new();
        }
        let (requests, commands) = self.coordinator.tick(&self.store, now_ms);
        for command in commands {
            self.propose_command(&command, now_ms);
        }
        requests.into_iter().map(Output::ToParticipant).collect()
    }

    fn propose_command(&mut self, command: &Command, now_ms: u64) {
        let payload = Rc::new(encode_command(command));
        // Refused when not leading (or overloaded): the coordinator's timer proposes again.
        let _ = self.raft.propose(EntryKind::Command as u8, now_ms, payload);
    }

    /// A participant request reached this mirror (the shell routes to primaries; one that
    /// lost leadership meanwhile drops it and the coordinator re-sends).
    pub fn on_participant_request(
        &mut self,
        request: ParticipantRequest,
        now_ms: u64,
    ) -> Vec<Output<S>> {
        if !self.is_leader() {
            return Vec::new();
        }
        match self.store.answer_from_state(&request) {
            Some(reply) => vec![Output::ToCoordinator {
                coordinator: request.coordinator,
                reply,
            }],
            None => {
                self.propose_command(&Command::Participant(request), now_ms);
                Vec::new()
            }
        }
    }

    /// A participant answered this shard as coordinator.
    pub fn on_participant_reply(&mut self, reply: ParticipantReply, now_ms: u64) {
        if !self.is_leader() {
            return;
        }
        if let Some(command) = self.coordinator.on_reply(&self.store, reply, now_ms) {
            self.propose_command(&command, now_ms);
        }
    }

    /// Leader: a follower needs a snapshot; hands the group the store as applied now.
    fn provide_snapshot(&mut self) {
        let index = self.store.applied_index();
        let Some(term) = self.raft.term_of(index) else {
            return;
        };
        let body = Rc::new(self.store.to_snapshot());
        self.raft.snapshot_body(SnapshotMeta { index, term }, body);
    }

    /// The shell persisted a snapshot of the store at `meta` (its own, taken locally):
    /// the log before it may go.
    pub fn compacted(&mut self, meta: SnapshotMeta) {
        self.raft.compact(meta);
    }

    /// The snapshot the shell should write now for compaction: the store and its position.
    pub fn snapshot_now(&self) -> Option<(SnapshotMeta, AlignedVec)> {
        let index = self.store.applied_index();
        // A snapshot received from the leader is in the store but not yet durable: the
        // group does not count it as applied until then, so wait.
        if index != self.raft.applied_index() {
            return None;
        }
        let term = self.raft.term_of(index)?;
        Some((SnapshotMeta { index, term }, self.store.to_snapshot()))
    }

    /// The shell made persist request `sequence` (and every earlier one) durable.
    pub fn persisted(&mut self, sequence: u64) -> Vec<Output<S>> {
        let mut outputs = Vec::new();
        while self
            .unacknowledged
            .front()
            .is_some_and(|request| request.sequence <= sequence)
        {
            let Some(request) = self.unacknowledged.pop_front() else {
                break;
            };
            if let Some((index, term)) = request.last_entry {
                self.raft.persisted(index, term);
            }
            if let Some(meta) = request.snapshot {
                self.raft.snapshot_installed(meta);
            }
            outputs.extend(
                request
                    .messages
                    .into_iter()
                    .map(|(to, message)| Output::Send(to, message)),
            );
        }
        outputs
    }

    /// Runs the Ready cycle until the group has nothing more to hand out.
    pub fn advance(&mut self, now_ms: u64) -> Vec<Output<S>> {
        let mut outputs = Vec::new();
        // Bounded: each Ready drains what the group accumulated; applying may propose
        // commands, which produce at most a few more rounds.
        for _ in 0..16 {
            if !self.raft.has_ready() {
                break;
            }
            let ready = self.raft.ready();
            self.handle_ready(ready, now_ms, &mut outputs);
        }
        outputs
    }

    fn handle_ready(&mut self, ready: Ready, now_ms: u64, outputs: &mut Vec<Output<S>>) {
        if let Some(soft_state) = ready.soft_state {
            self.on_soft_state(soft_state, outputs);
        }
        outputs.extend(
            ready
                .messages
                .into_iter()
                .map(|(to, message)| Output::Send(to, message)),
        );
        let snapshot = ready
            .snapshot_to_install
            .map(|(meta, body)| (meta, Rc::new(body)));
        if let Some((meta, body)) = &snapshot {
            self.install(*meta, body);
        }
        let persist = ready.hard_state.is_some() || !ready.entries.is_empty() || snapshot.is_some();
        if persist {
            let sequence = self.next_persist_sequence;
            self.next_persist_sequence += 1;
            self.unacknowledged.push_back(Unacknowledged {
                sequence,
                last_entry: ready.entries.last().map(|entry| (entry.index, entry.term)),
                snapshot: snapshot.as_ref().map(|(meta, _)| *meta),
                messages: ready.messages_after_persist,
            });
            outputs.push(Output::Persist(PersistRequest {
                sequence,
                hard_state: ready.hard_state,
                commit: self.raft.commit_index(),
                truncate_from: ready.truncate_from,
                entries: ready.entries,
                snapshot,
            }));
        } else if self.unacknowledged.is_empty() {
            outputs.extend(
                ready
                    .messages_after_persist
                    .into_iter()
                    .map(|(to, message)| Output::Send(to, message)),
            );
        } else if let Some(last) = self.unacknowledged.back_mut() {
            // Keep their order behind the writes still in flight.
            last.messages.extend(ready.messages_after_persist);
        }
        let last_committed = ready.committed.last().map(|entry| entry.index);
        for entry in ready.committed {
            self.apply(entry, now_ms, outputs);
        }
        // Only what the group handed out counts as applied; an installed snapshot is
        // reported through `snapshot_installed` once it is durable.
        if let Some(index) = last_committed {
            self.raft.applied(index);
        }
        for read in ready.read_states {
            if let Some(pending) = self.reads.get_mut(&read.context) {
                pending.index = Some(read.index);
            }
        }
        self.serve_reads(outputs);
        if !ready.snapshot_needed_for.is_empty() {
            self.provide_snapshot();
        }
    }

    fn install(&mut self, meta: SnapshotMeta, body: &AlignedVec) {
        match Store::from_snapshot(self.id, body) {
            Ok(store) => {
                assert_eq!(
                    store.applied_index(),
                    meta.index,
                    "snapshot body and meta disagree"
                );
                self.store = store;
                self.coordinator.clear();
            }
            // The body passed the transfer's checks and came from the leader's own store:
            // failing to load it is a bug, and continuing would diverge.
            Err(error) => panic!(
                "shard {}: received snapshot does not load: {error}",
                self.id
            ),
        }
    }

    fn on_soft_state(&mut self, soft_state: SoftState, outputs: &mut Vec<Output<S>>) {
        let was_leader = self.soft_state.role == Role::Leader;
        self.soft_state = soft_state;
        if was_leader && soft_state.role != Role::Leader {
            // Whatever was waiting here may or may not commit under the next primary;
            // clients retry (idempotently) wherever the primary now is.
            let hint = || Reply::Error(ErrorReply::NotPrimary { hint: None });
            for (_, (_, sink)) in std::mem::take(&mut self.proposals) {
                outputs.push(Output::Reply(sink, hint()));
            }
            for (_, sinks) in std::mem::take(&mut self.order_waiters) {
                outputs.extend(sinks.into_iter().map(|sink| Output::Reply(sink, hint())));
            }
            for (_, read) in std::mem::take(&mut self.reads) {
                outputs.push(Output::Reply(read.sink, hint()));
            }
            self.coordinator.clear();
        }
    }

    fn apply(&mut self, entry: LogEntry, now_ms: u64, outputs: &mut Vec<Output<S>>) {
        let kind = EntryKind::from_byte(entry.kind).unwrap_or(EntryKind::Noop);
        let applied = self.store.apply(
            entry.term,
            entry.index,
            entry.timestamp_ms,
            kind,
            &entry.payload,
        );
        let sink = match self.proposals.remove(&entry.index) {
            Some((term, sink)) if term == entry.term => Some(sink),
            // Our proposal at this index was overwritten by another leader's entry.
            Some((_, sink)) => {
                outputs.push(Output::Reply(
                    sink,
                    Reply::Error(ErrorReply::NotPrimary { hint: None }),
                ));
                None
            }
            None => None,
        };
        // Only a cross-shard PlaceOrder applies without an answer; its id is read from the
        // payload only then, so the common path validates the archive once (in the store).
        let placed = || placed_order_id(kind, &entry.payload);
        match (applied.reply, sink) {
            (Some(reply), Some(sink)) => outputs.push(Output::Reply(sink, reply)),
            (None, Some(sink)) => match placed() {
                Some(order_id) => self.order_waiters.entry(order_id).or_default().push(sink),
                None => panic!("shard {}: an operation applied without an answer", self.id),
            },
            (_, None) => {}
        }
        if !self.is_leader() {
            return;
        }
        for effect in applied.effects {
            match effect {
                Effect::ToParticipant(request) => {
                    self.coordinator.sent(&self.store, request.order_id, now_ms);
                    outputs.push(Output::ToParticipant(request));
                }
                Effect::ToCoordinator { coordinator, reply } => {
                    outputs.push(Output::ToCoordinator { coordinator, reply })
                }
                Effect::OrderSettled { order_id } => {
                    let waiters = self.order_waiters.remove(&order_id).unwrap_or_default();
                    if let Some(order) = self.store.order(order_id) {
                        for sink in waiters {
                            outputs.push(Output::Reply(sink, Reply::Order(order.clone())));
                        }
                    }
                }
            }
        }
    }

    fn serve_reads(&mut self, outputs: &mut Vec<Output<S>>) {
        let applied = self.store.applied_index();
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, read)| read.index.is_some_and(|index| index <= applied))
            .map(|(context, _)| *context)
            .collect();
        for context in ready {
            let Some(read) = self.reads.remove(&context) else {
                continue;
            };
            let reply = match access_operation(&read.payload) {
                Ok(operation) => self.store.read(operation),
                Err(error) => Reply::Error(ErrorReply::BadFrame {
                    reason: error.to_string(),
                }),
            };
            outputs.push(Output::Reply(read.sink, reply));
        }
    }
}

/// Order id of a `PlaceOrder` entry.
fn placed_order_id(kind: EntryKind, payload: &[u8]) -> Option<u128> {
    if kind != EntryKind::Operation {
        return None;
    }
    match access_operation(payload) {
        Ok(ArchivedOperation::PlaceOrder(place)) => Some(place.order_id.to_native()),
        _ => None,
    }
}
