//! One shard's engine on its owning core, sans-IO: the group (log positions), the store
//! (applied state), the coordinator driver and the clients waiting for answers.
//!
//! The core's shell drives it: `next_entry` gives a new entry its position, the shell
//! appends the record to the WAL and hands the payload back with `push`, and after the
//! WAL sync `persisted` commits and applies and returns what to do next ([`Output`]).
//! `S` is how the shell answers a client (a channel end); the engine only moves it.

use crate::entry::{encode_command, Command, EntryKind};
use crate::raft::{EntryId, Group, ProposeError};
use crate::store::{Applied, Effect, Store};
use crate::txn::message::{ParticipantReply, ParticipantRequest};
use crate::txn::Coordinator;
use quorder_proto::{ArchivedOperation, Reply};
use rkyv::util::AlignedVec;
use std::collections::{BTreeMap, VecDeque};

/// Something the shell must do for the shard.
#[derive(Debug)]
pub enum Output<S> {
    /// Answer a client.
    Reply(S, Reply),
    /// Send a request to a participant shard.
    ToParticipant(ParticipantRequest),
    /// Answer a coordinator shard.
    ToCoordinator {
        /// The coordinator.
        coordinator: u32,
        /// The answer.
        reply: ParticipantReply,
    },
    /// Propose this command on this shard.
    Propose(Command),
}

/// An entry proposed but not yet applied.
#[derive(Debug)]
struct Unapplied<S> {
    id: EntryId,
    timestamp_ms: u64,
    kind: EntryKind,
    payload: AlignedVec,
    sink: Option<S>,
}

/// A shard owned by one core.
#[derive(Debug)]
pub struct Shard<S> {
    store: Store,
    group: Group,
    coordinator: Coordinator,
    unapplied: VecDeque<Unapplied<S>>,
    order_waiters: BTreeMap<u128, Vec<S>>,
}

impl<S> Shard<S> {
    /// A shard over a recovered store whose log ends at `last`.
    pub fn new(store: Store, last: EntryId, resend_interval_ms: u64) -> Shard<S> {
        assert!(last.index >= store.applied_index());
        let group = Group::single_member(store.shard(), last);
        Shard {
            store,
            group,
            coordinator: Coordinator::new(resend_interval_ms),
            unapplied: VecDeque::new(),
            order_waiters: BTreeMap::new(),
        }
    }

    /// The applied state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The group.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Entries proposed and not yet applied.
    pub fn unapplied_count(&self) -> usize {
        self.unapplied.len()
    }

    /// Position for a new entry. The caller must `push` it (after appending it to the
    /// WAL) before asking for the next one.
    pub fn next_entry(&mut self) -> Result<EntryId, ProposeError> {
        self.group.propose()
    }

    /// Hands over a proposed entry whose record is in the WAL buffer.
    pub fn push(
        &mut self,
        id: EntryId,
        timestamp_ms: u64,
        kind: EntryKind,
        payload: AlignedVec,
        sink: Option<S>,
    ) {
        let expected = self
            .unapplied
            .back()
            .map_or(self.store.applied_index(), |last| last.id.index)
            + 1;
        assert_eq!(
            id.index,
            expected,
            "shard {}: entries pushed out of order",
            self.store.shard()
        );
        self.unapplied.push_back(Unapplied {
            id,
            timestamp_ms,
            kind,
            payload,
            sink,
        });
    }

    /// Entries up to `index` are durable: commit and apply them.
    pub fn persisted(&mut self, index: u64, now_ms: u64) -> Vec<Output<S>> {
        let commit_index = self.group.persisted(index);
        let mut outputs = Vec::new();
        while self
            .unapplied
            .front()
            .is_some_and(|entry| entry.id.index <= commit_index)
        {
            let Some(entry) = self.unapplied.pop_front() else {
                break;
            };
            let order_id = placed_order_id(entry.kind, &entry.payload);
            let applied = self.store.apply(
                entry.id.term,
                entry.id.index,
                entry.timestamp_ms,
                entry.kind,
                &entry.payload,
            );
            self.absorb(applied, entry.sink, order_id, now_ms, &mut outputs);
        }
        outputs
    }

    /// Applies an entry read back from the WAL at start-up (no client is waiting).
    pub fn replay(&mut self, id: EntryId, timestamp_ms: u64, kind: EntryKind, payload: &[u8]) {
        self.store
            .apply(id.term, id.index, timestamp_ms, kind, payload);
    }

    fn absorb(
        &mut self,
        applied: Applied,
        sink: Option<S>,
        placed_order: Option<u128>,
        now_ms: u64,
        outputs: &mut Vec<Output<S>>,
    ) {
        match (applied.reply, sink, placed_order) {
            (Some(reply), Some(sink), _) => outputs.push(Output::Reply(sink, reply)),
            // A cross-shard order: its client is answered when the decision applies.
            (None, Some(sink), Some(order_id)) => {
                self.order_waiters.entry(order_id).or_default().push(sink)
            }
            (None, Some(_), None) => {
                panic!(
                    "shard {}: an operation applied without an answer",
                    self.store.shard()
                )
            }
            (_, None, _) => {}
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

    /// Answers a read from applied state. Reads never enter the log: everything applied
    /// is committed, and every acknowledged write is applied before its answer leaves.
    pub fn read(&self, operation: &ArchivedOperation) -> Reply {
        self.store.read(operation)
    }

    /// A participant request arrived: either answered from state at once, or the command
    /// to log (returned as an output).
    pub fn on_participant_request(&mut self, request: ParticipantRequest) -> Output<S> {
        match self.store.answer_from_state(&request) {
            Some(reply) => Output::ToCoordinator {
                coordinator: request.coordinator,
                reply,
            },
            None => Output::Propose(Command::Participant(request)),
        }
    }

    /// A participant answered this shard as coordinator.
    pub fn on_participant_reply(
        &mut self,
        reply: ParticipantReply,
        now_ms: u64,
    ) -> Option<Output<S>> {
        self.coordinator
            .on_reply(&self.store, reply, now_ms)
            .map(Output::Propose)
    }

    /// Periodic work: re-send overdue requests, re-propose lost commands.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Output<S>> {
        let (requests, commands) = self.coordinator.tick(&self.store, now_ms);
        let mut outputs: Vec<Output<S>> = requests.into_iter().map(Output::ToParticipant).collect();
        outputs.extend(commands.into_iter().map(Output::Propose));
        outputs
    }
}

/// Order id of a `PlaceOrder` entry.
fn placed_order_id(kind: EntryKind, payload: &[u8]) -> Option<u128> {
    if kind != EntryKind::Operation {
        return None;
    }
    match quorder_proto::codec::access_operation(payload) {
        Ok(ArchivedOperation::PlaceOrder(place)) => Some(place.order_id.to_native()),
        _ => None,
    }
}

/// Payload of a command entry.
pub fn command_payload(command: &Command) -> AlignedVec {
    encode_command(command)
}
