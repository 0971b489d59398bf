//! One core of a node: its mirrors, its WAL, its end of the channel mesh and its peer
//! links.
//!
//! Everything here runs on the core's own glommio executor and is owned by it (`Rc`,
//! `RefCell`, no locks). A request for a shard of another core crosses the bounded mesh
//! and its answer comes back the same way; a Raft or two-phase-commit message for a shard
//! travels between the same-numbered cores of two nodes. Each mirror's Ready cycle runs
//! here: its outputs are answered, sent, or written to the WAL (`persist`), and once the
//! group commit makes them durable the mirror is told (`persisted`).

use super::message::{CoreMessage, ReplySink};
use super::persist::PersistState;
use crate::config::cluster::{NodeId, NodeInfo};
use crate::crashpoint::{self, CrashPoint};
use crate::limits::{FORWARD_TIMEOUT_MS, RAFT_MESSAGES_PER_PEER_FRAME_MAX};
use crate::peer::message::{encode as encode_peer, PeerMessage, RaftEnvelope, Received};
use crate::peer::PeerTransport;
use crate::raft::message::Message;
use crate::raft::wire::to_wire;
use crate::shard::{Output, Shard};
use crate::txn::message::{
    ParticipantAction, ParticipantReply, ParticipantRequest, ParticipantState,
};
use crate::wal::Wal;
use glommio::channels::channel_mesh::Senders;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use quorder_proto::codec::access_operation;
use quorder_proto::shard::{core_of_shard, shard_of_order, shard_of_sku};
use quorder_proto::status::{MirrorRole, MirrorStatus, ShardStatus};
use quorder_proto::{ArchivedOperation, ErrorReply, Reply};
use rkyv::util::AlignedVec;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (the leader's clock; entries carry it to followers).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Shard an operation addresses; `None` for operations any core answers (`Ping`).
pub fn shard_of_operation(operation: &ArchivedOperation, shard_count: u32) -> Option<u32> {
    match operation {
        ArchivedOperation::Ping { .. } => None,
        ArchivedOperation::PutItem(put) => Some(shard_of_sku(put.sku.to_native(), shard_count)),
        ArchivedOperation::GetItem { sku } | ArchivedOperation::Restock { sku, .. } => {
            Some(shard_of_sku(sku.to_native(), shard_count))
        }
        ArchivedOperation::PlaceOrder(place) => {
            Some(shard_of_order(place.order_id.to_native(), shard_count))
        }
        ArchivedOperation::GetOrder { order_id }
        | ArchivedOperation::CancelOrder { order_id, .. } => {
            Some(shard_of_order(order_id.to_native(), shard_count))
        }
    }
}

fn is_read(operation: &ArchivedOperation) -> bool {
    matches!(
        operation,
        ArchivedOperation::Ping { .. }
            | ArchivedOperation::GetItem { .. }
            | ArchivedOperation::GetOrder { .. }
    )
}

/// Per-core counters, summed over cores at export.
#[derive(Debug, Default)]
pub struct CoreProbe {
    /// WAL syncs done.
    pub wal_syncs: Cell<u64>,
    /// Records made durable.
    pub wal_records: Cell<u64>,
    /// Requests refused with `Overloaded`.
    pub overloaded: Cell<u64>,
    /// Peer messages that did not decode.
    pub peer_messages_invalid: Cell<u64>,
}

/// A core's answer to a status request: its mirrors and the peers that answered.
pub type CoreStatus = (Vec<ShardStatus>, std::collections::BTreeSet<u64>);

/// A client request forwarded to the primary of its shard on another node.
struct Forwarded {
    shard: u32,
    target: NodeId,
    deadline: std::time::Instant,
    sink: ReplySink,
}

/// Who this core is and what cluster it is part of.
#[derive(Debug, Clone)]
pub struct CoreIdentity {
    /// This core's number.
    pub id: u32,
    /// Cores of the node.
    pub cores: u32,
    /// Shards of the cluster.
    pub shard_count: u32,
    /// This node.
    pub node_id: NodeId,
    /// Every node of the cluster.
    pub nodes: Vec<NodeInfo>,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Entries a mirror applies between two snapshots.
    pub snapshot_interval_entries: u64,
}

/// State of one core. Lives in an `Rc` shared by the core's tasks.
pub struct Core {
    /// Identity.
    pub identity: CoreIdentity,
    pub(super) shards: RefCell<BTreeMap<u32, Shard<ReplySink>>>,
    pub(super) wal: Wal,
    pub(super) persist: PersistState,
    mesh: Rc<Senders<CoreMessage>>,
    peers: Option<Rc<PeerTransport>>,
    waiting: RefCell<HashMap<u64, futures_channel::oneshot::Sender<Reply>>>,
    status_waiting: RefCell<HashMap<u64, LocalSender<Vec<ShardStatus>>>>,
    forwarded: RefCell<HashMap<u64, Forwarded>>,
    raft_outbox: RefCell<BTreeMap<NodeId, Vec<RaftEnvelope>>>,
    raft_flush_scheduled: Cell<bool>,
    pub(super) core_status_waiting: RefCell<HashMap<u64, LocalSender<CoreStatus>>>,
    next_token: Cell<u64>,
    pub(super) flush_bell: LocalSender<()>,
    me: std::rc::Weak<Core>,
    /// Counters.
    pub probe: CoreProbe,
}

impl Core {
    /// A core over recovered mirrors. Returns the receiving end of the flush bell for
    /// the flusher task.
    pub fn new(
        identity: CoreIdentity,
        shards: BTreeMap<u32, Shard<ReplySink>>,
        wal: Wal,
        mesh: Senders<CoreMessage>,
        peers: Option<Rc<PeerTransport>>,
    ) -> (Rc<Core>, LocalReceiver<()>) {
        let (flush_bell, bell_receiver) = local_channel::new_bounded(1);
        let persist = PersistState::new(
            shards
                .iter()
                .map(|(shard, state)| (*shard, state.store().applied_index())),
        );
        let core = Rc::new_cyclic(|me| Core {
            identity,
            shards: RefCell::new(shards),
            wal,
            persist,
            mesh: Rc::new(mesh),
            peers,
            waiting: RefCell::new(HashMap::new()),
            status_waiting: RefCell::new(HashMap::new()),
            core_status_waiting: RefCell::new(HashMap::new()),
            forwarded: RefCell::new(HashMap::new()),
            raft_outbox: RefCell::new(BTreeMap::new()),
            raft_flush_scheduled: Cell::new(false),
            next_token: Cell::new(1),
            flush_bell,
            me: me.clone(),
            probe: CoreProbe::default(),
        });
        (core, bell_receiver)
    }

    /// This core as an `Rc`, for tasks it spawns.
    pub(super) fn self_rc(&self) -> Option<Rc<Core>> {
        self.me.upgrade()
    }

    /// This core's number.
    pub fn id(&self) -> u32 {
        self.identity.id
    }

    pub(super) fn status_token(&self) -> u64 {
        self.token()
    }

    fn token(&self) -> u64 {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        token
    }

    /// Runs a validated client operation wherever its shard lives and returns the answer.
    pub async fn execute(self: &Rc<Self>, payload: AlignedVec) -> Reply {
        let shard = match access_operation(&payload) {
            Ok(operation) => match shard_of_operation(operation, self.identity.shard_count) {
                Some(shard) => shard,
                None => return self.answer_anywhere(operation),
            },
            Err(error) => {
                return Reply::Error(ErrorReply::BadFrame {
                    reason: error.to_string(),
                })
            }
        };
        let (sender, receiver) = futures_channel::oneshot::channel();
        let owner = core_of_shard(shard, self.identity.cores);
        if owner == self.id() {
            self.submit(shard, payload, ReplySink::Local(sender));
        } else {
            let token = self.token();
            self.waiting.borrow_mut().insert(token, sender);
            let message = CoreMessage::Request {
                origin_core: self.id(),
                token,
                shard,
                payload,
            };
            if self.mesh.send_to(owner as usize, message).await.is_err() {
                self.waiting.borrow_mut().remove(&token);
                return Reply::Error(ErrorReply::Unavailable);
            }
        }
        // A dropped sender means the shard could not answer (shutting down).
        receiver
            .await
            .unwrap_or(Reply::Error(ErrorReply::Unavailable))
    }

    fn answer_anywhere(&self, operation: &ArchivedOperation) -> Reply {
        match operation {
            ArchivedOperation::Ping { nonce } => Reply::Pong {
                nonce: nonce.to_native(),
                shard_count: self.identity.shard_count,
            },
            _ => Reply::Error(ErrorReply::Internal {
                message: "operation has no shard".into(),
            }),
        }
    }

    /// A client operation reached the core owning `shard`.
    fn submit(&self, shard: u32, payload: AlignedVec, sink: ReplySink) {
        let read = match access_operation(&payload) {
            Ok(operation) => is_read(operation),
            Err(error) => {
                return self.deliver(
                    shard,
                    sink,
                    Reply::Error(ErrorReply::BadFrame {
                        reason: error.to_string(),
                    }),
                )
            }
        };
        if let Some(Err(leader)) = self.primary_of(shard) {
            // Forward once to the primary; a forwarded request is never forwarded again.
            if !matches!(sink, ReplySink::Peer { .. }) && self.peers.is_some() {
                return self.forward(shard, leader, payload, sink);
            }
        }
        let refused = {
            let mut shards = self.shards.borrow_mut();
            let Some(state) = shards.get_mut(&shard) else {
                drop(shards);
                let message = format!("shard {shard} is not on core {}", self.id());
                return self.deliver(shard, sink, Reply::Error(ErrorReply::Internal { message }));
            };
            let result = if read {
                state.read(payload, sink)
            } else {
                state.propose_operation(payload, now_ms(), sink)
            };
            result.err()
        };
        if let Some((sink, error)) = refused {
            if error == ErrorReply::Overloaded {
                self.probe.overloaded.set(self.probe.overloaded.get() + 1);
            }
            self.deliver(shard, sink, Reply::Error(error));
        }
        self.drive(shard);
    }

    /// Runs the Ready cycle of `shard` and acts on what it hands out.
    pub(super) fn drive(&self, shard: u32) {
        let outputs = match self.shards.borrow_mut().get_mut(&shard) {
            Some(state) => state.advance(now_ms()),
            None => return,
        };
        self.handle_outputs(shard, outputs);
    }

    pub(super) fn handle_outputs(&self, shard: u32, outputs: Vec<Output<ReplySink>>) {
        if outputs.is_empty() {
            return;
        }
        for output in outputs {
            match output {
                Output::Reply(sink, reply) => self.deliver(shard, sink, reply),
                Output::Send(to, message) => self.send_raft(shard, to, &message),
                Output::Persist(request) => self.persist(shard, request),
                Output::ToParticipant(request) => {
                    if matches!(
                        request.action,
                        ParticipantAction::Commit | ParticipantAction::Abort
                    ) {
                        crashpoint::reached(CrashPoint::Decided);
                    }
                    let target = request.participant;
                    self.route(target, CoreMessage::ToParticipant(request));
                }
                Output::ToCoordinator { coordinator, reply } => {
                    match reply.state {
                        ParticipantState::Prepared { .. } => {
                            crashpoint::reached(CrashPoint::Prepared)
                        }
                        ParticipantState::Committed => crashpoint::reached(CrashPoint::Committed),
                        _ => {}
                    }
                    self.route(
                        coordinator,
                        CoreMessage::ToCoordinator { coordinator, reply },
                    );
                }
            }
        }
    }

    /// Answers a client; a `NotPrimary` refusal gets the primary's client address.
    fn deliver(&self, shard: u32, sink: ReplySink, reply: Reply) {
        let reply = match reply {
            // With a primary known, the client is told where; with none (an election is on,
            // or no majority is reachable), the shard is unavailable for now.
            Reply::Error(ErrorReply::NotPrimary { hint: None }) => {
                match self.primary_client_addr(shard) {
                    Some(hint) => Reply::Error(ErrorReply::NotPrimary { hint: Some(hint) }),
                    None => Reply::Error(ErrorReply::Unavailable),
                }
            }
            other => other,
        };
        match sink {
            // The client may have gone; its answer is then dropped.
            ReplySink::Local(sender) => drop(sender.send(reply)),
            ReplySink::Remote { core, token } => {
                self.send_to_core(core, CoreMessage::Response { token, reply })
            }
            ReplySink::Peer { node, token } => {
                self.send_peer(node, &PeerMessage::ForwardReply { token, reply })
            }
        }
    }

    fn forward(&self, shard: u32, leader: NodeId, payload: AlignedVec, sink: ReplySink) {
        let token = self.token();
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(FORWARD_TIMEOUT_MS);
        let pending = Forwarded {
            shard,
            target: leader,
            deadline,
            sink,
        };
        self.forwarded.borrow_mut().insert(token, pending);
        self.send_peer(
            leader,
            &PeerMessage::Forward {
                token,
                shard,
                payload: payload.to_vec(),
            },
        );
    }

    /// Answers `Unavailable` (the client retries, idempotently, wherever the primary now
    /// is) to forwarded requests whose primary will not answer: its link is down, the shard
    /// has another or no known primary now, or it did not answer in `FORWARD_TIMEOUT_MS`.
    pub(super) fn expire_forwards(&self) {
        if self.forwarded.borrow().is_empty() {
            return;
        }
        let now = std::time::Instant::now();
        let expired: Vec<u64> = self
            .forwarded
            .borrow()
            .iter()
            .filter(|(_, pending)| {
                pending.deadline <= now
                    || self.primary_of(pending.shard) != Some(Err(pending.target))
                    || !self
                        .peers
                        .as_ref()
                        .is_some_and(|peers| peers.is_connected(pending.target))
            })
            .map(|(token, _)| *token)
            .collect();
        for token in expired {
            if let Some(pending) = self.forwarded.borrow_mut().remove(&token) {
                self.deliver(
                    pending.shard,
                    pending.sink,
                    Reply::Error(ErrorReply::Unavailable),
                );
            }
        }
    }

    fn primary_client_addr(&self, shard: u32) -> Option<String> {
        let leader = self
            .shards
            .borrow()
            .get(&shard)
            .and_then(|state| state.leader())?;
        let node = self.identity.nodes.iter().find(|node| node.id == leader)?;
        Some(node.client_addr.to_string())
    }

    /// Queues a Raft message; everything queued in this turn of the core leaves as one
    /// peer message per destination (heartbeats of all groups coalesced).
    fn send_raft(&self, shard: u32, to: NodeId, message: &Message) {
        if self.peers.is_none() {
            return;
        }
        let envelope = RaftEnvelope {
            shard,
            message: to_wire(message),
        };
        self.raft_outbox
            .borrow_mut()
            .entry(to)
            .or_default()
            .push(envelope);
        if !self.raft_flush_scheduled.replace(true) {
            if let Some(core) = self.self_rc() {
                glommio::spawn_local(async move { core.flush_raft_outbox() }).detach();
            }
        }
    }

    fn flush_raft_outbox(&self) {
        self.raft_flush_scheduled.set(false);
        let outbox = std::mem::take(&mut *self.raft_outbox.borrow_mut());
        for (to, messages) in outbox {
            for chunk in messages.chunks(RAFT_MESSAGES_PER_PEER_FRAME_MAX) {
                self.send_peer(
                    to,
                    &PeerMessage::Raft {
                        messages: chunk.to_vec(),
                    },
                );
            }
        }
    }

    /// Sends a two-phase-commit message towards the core owning `shard` (this one included).
    fn route(&self, shard: u32, message: CoreMessage) {
        let owner = core_of_shard(shard, self.identity.cores);
        if owner == self.id() {
            self.on_message(message);
        } else {
            self.send_to_core(owner, message);
        }
    }

    pub(super) fn send_to_core(&self, core: u32, message: CoreMessage) {
        let mesh = Rc::clone(&self.mesh);
        glommio::spawn_local(async move {
            if mesh.send_to(core as usize, message).await.is_err() {
                tracing::warn!(core, "cross-core channel closed; message dropped");
            }
        })
        .detach();
    }

    /// Handles a message from another core (or routed locally).
    pub fn on_message(&self, message: CoreMessage) {
        match message {
            CoreMessage::Request {
                origin_core,
                token,
                shard,
                payload,
            } => self.submit(
                shard,
                payload,
                ReplySink::Remote {
                    core: origin_core,
                    token,
                },
            ),
            CoreMessage::Response { token, reply } => {
                if let Some(sender) = self.waiting.borrow_mut().remove(&token) {
                    drop(sender.send(reply));
                }
            }
            CoreMessage::ToParticipant(request) => self.on_participant_request(request, true),
            CoreMessage::ToCoordinator { coordinator, reply } => {
                self.on_participant_reply(coordinator, reply, true)
            }
            CoreMessage::PeerConnection { fd, from } => super::peer_link::adopt(self, fd, from),
            CoreMessage::Status {
                origin_core,
                token,
                include_peers,
            } => self.answer_status(origin_core, token, include_peers),
            CoreMessage::StatusResponse {
                token,
                shards,
                reachable,
            } => self.take_status_response(token, shards, reachable),
        }
    }

    /// Where the primary of a local shard is: here, another node, or unknown.
    fn primary_of(&self, shard: u32) -> Option<Result<(), NodeId>> {
        let shards = self.shards.borrow();
        let state = shards.get(&shard)?;
        if state.is_leader() {
            Some(Ok(()))
        } else {
            state.leader().map(Err)
        }
    }

    fn on_participant_request(&self, request: ParticipantRequest, may_forward: bool) {
        let shard = request.participant;
        match self.primary_of(shard) {
            Some(Ok(())) => {
                let outputs = match self.shards.borrow_mut().get_mut(&shard) {
                    Some(state) => state.on_participant_request(request, now_ms()),
                    None => return,
                };
                self.handle_outputs(shard, outputs);
                self.drive(shard);
            }
            Some(Err(leader)) if may_forward => {
                self.send_peer(leader, &PeerMessage::ToParticipant(request))
            }
            // No known primary (or a forwarded message found none here): the coordinator
            // re-sends on its timer.
            _ => {}
        }
    }

    fn on_participant_reply(&self, coordinator: u32, reply: ParticipantReply, may_forward: bool) {
        match self.primary_of(coordinator) {
            Some(Ok(())) => {
                if let Some(state) = self.shards.borrow_mut().get_mut(&coordinator) {
                    state.on_participant_reply(reply, now_ms());
                }
                self.drive(coordinator);
            }
            Some(Err(leader)) if may_forward => {
                self.send_peer(leader, &PeerMessage::ToCoordinator { coordinator, reply })
            }
            _ => {}
        }
    }

    fn send_peer(&self, to: NodeId, message: &PeerMessage) {
        if let Some(peers) = &self.peers {
            peers.send(to, &encode_peer(message));
        }
    }

    /// A peer frame arrived on this core from node `from`.
    pub fn on_peer_frame(&self, from: NodeId, body: &[u8]) {
        let received = match crate::peer::message::decode(body) {
            Ok(received) => received,
            Err(error) => {
                self.probe
                    .peer_messages_invalid
                    .set(self.probe.peer_messages_invalid.get() + 1);
                return tracing::warn!(peer = from, error, "invalid peer message dropped");
            }
        };
        match received {
            Received::Raft(messages) => {
                let mut stepped = std::collections::BTreeSet::new();
                for (shard, message) in messages {
                    match self.shards.borrow_mut().get_mut(&shard) {
                        Some(state) => state.step(from, message),
                        None => {
                            tracing::warn!(
                                peer = from,
                                shard,
                                "raft message for a shard not on this core"
                            );
                            continue;
                        }
                    }
                    stepped.insert(shard);
                }
                for shard in stepped {
                    self.drive(shard);
                }
            }
            Received::Other(PeerMessage::ToParticipant(request)) => {
                self.on_participant_request(request, false)
            }
            Received::Other(PeerMessage::ToCoordinator { coordinator, reply }) => {
                self.on_participant_reply(coordinator, reply, false)
            }
            Received::Other(PeerMessage::Forward {
                token,
                shard,
                payload,
            }) => {
                let mut aligned = AlignedVec::with_capacity(payload.len());
                aligned.extend_from_slice(&payload);
                // Forwarded payloads were validated by the forwarding node; the shard checks
                // the archive again before reading it.
                if core_of_shard(shard, self.identity.cores) == self.id() {
                    self.submit(shard, aligned, ReplySink::Peer { node: from, token });
                }
            }
            Received::Other(PeerMessage::ForwardReply { token, reply }) => {
                if let Some(pending) = self.forwarded.borrow_mut().remove(&token) {
                    self.deliver(pending.shard, pending.sink, reply);
                }
            }
            Received::Other(PeerMessage::StatusRequest { token }) => {
                let shards = self.local_status();
                self.send_peer(from, &PeerMessage::StatusReply { token, shards });
            }
            Received::Other(PeerMessage::StatusReply { token, shards }) => {
                if let Some(sender) = self.status_waiting.borrow_mut().remove(&token) {
                    let _ = sender.try_send(shards);
                }
            }
            Received::Other(PeerMessage::Raft { .. }) => {}
        }
    }

    /// Periodic work of every mirror on this core: Raft ticks and coordinator re-sends.
    pub fn tick(&self) {
        self.expire_forwards();
        let now = now_ms();
        let shards: Vec<u32> = self.shards.borrow().keys().copied().collect();
        for shard in shards {
            let outputs = match self.shards.borrow_mut().get_mut(&shard) {
                Some(state) => state.tick(now),
                None => Vec::new(),
            };
            self.handle_outputs(shard, outputs);
            self.drive(shard);
        }
    }

    /// Status of this core's mirrors.
    pub fn local_status(&self) -> Vec<ShardStatus> {
        let node = self.identity.node_id;
        self.shards
            .borrow()
            .iter()
            .map(|(shard, state)| {
                let raft = state.raft();
                let role = match raft.role() {
                    crate::raft::state::Role::Leader => MirrorRole::Leader,
                    crate::raft::state::Role::Follower => MirrorRole::Follower,
                    crate::raft::state::Role::Candidate => MirrorRole::Candidate,
                    crate::raft::state::Role::PreCandidate => MirrorRole::PreCandidate,
                };
                let mirror = MirrorStatus {
                    node,
                    role,
                    term: raft.term(),
                    commit_index: raft.commit_index(),
                    applied_index: state.store().applied_index(),
                    digest: state.store().digest(),
                };
                ShardStatus {
                    shard: *shard,
                    primary: raft.leader(),
                    term: raft.term(),
                    mirrors: vec![mirror],
                }
            })
            .collect()
    }

    /// Asks `node` for the status of its mirrors on this core's number; `None` if it does
    /// not answer within `timeout`.
    pub async fn peer_status(
        &self,
        node: NodeId,
        timeout: std::time::Duration,
    ) -> Option<Vec<ShardStatus>> {
        self.peers.as_ref()?;
        let token = self.token();
        let (sender, receiver) = local_channel::new_bounded(1);
        self.status_waiting.borrow_mut().insert(token, sender);
        self.send_peer(node, &PeerMessage::StatusRequest { token });
        let answer = futures_lite::future::or(receiver.recv(), async {
            glommio::timer::sleep(timeout).await;
            None
        })
        .await;
        self.status_waiting.borrow_mut().remove(&token);
        answer
    }

    /// Proposals, reads and persists still in flight over all mirrors of this core.
    pub fn in_flight(&self) -> usize {
        self.shards
            .borrow()
            .values()
            .map(|state| state.waiting_count() + state.unacknowledged_count())
            .sum()
    }

    /// Client answers this core still waits for from other cores.
    pub fn waiting_count(&self) -> usize {
        self.waiting.borrow().len()
    }
}
