//! One core of a node: its shards, its WAL, its end of the channel mesh.
//!
//! Everything here runs on the core's own glommio executor and is owned by it (`Rc`,
//! `RefCell`, no locks). A request for a shard of another core crosses the bounded mesh
//! and its answer comes back the same way. The write path of every shard on this core is
//! propose (WAL append, in memory) → group commit (one write + one fdatasync for every
//! record appended since the last one) → commit → apply → answer.

use super::message::{CoreMessage, ReplySink};
use crate::crashpoint::{self, CrashPoint};
use crate::entry::{encode_command, EntryKind};
use crate::limits::{SHARD_UNAPPLIED_ENTRIES_MAX, WAL_BUFFER_BYTES_MAX};
use crate::shard::{Output, Shard};
use crate::snapshot;
use crate::txn::message::{
    ParticipantAction, ParticipantReply, ParticipantRequest, ParticipantState,
};
use crate::wal::{RecordHeader, Wal, RECORD_HEADER_BYTES};
use glommio::channels::channel_mesh::Senders;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use quorder_proto::codec::access_operation;
use quorder_proto::shard::{core_of_shard, shard_of_order, shard_of_sku};
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
}

/// State of one core. Lives in an `Rc` shared by the core's tasks.
pub struct Core {
    /// This core's number.
    pub id: u32,
    /// Cores of the node.
    pub cores: u32,
    /// Shards of the cluster.
    pub shard_count: u32,
    data_dir: PathBuf,
    shards: RefCell<BTreeMap<u32, Shard<ReplySink>>>,
    wal: Wal,
    mesh: Rc<Senders<CoreMessage>>,
    waiting: RefCell<HashMap<u64, futures_channel::oneshot::Sender<Reply>>>,
    next_token: Cell<u64>,
    unsynced: Cell<bool>,
    flush_bell: LocalSender<()>,
    snapshot_index: RefCell<BTreeMap<u32, u64>>,
    snapshot_running: Cell<bool>,
    /// Counters.
    pub probe: CoreProbe,
}

impl Core {
    /// A core over recovered shards. Returns the receiving end of the flush bell for
    /// the flusher task.
    pub fn new(
        id: u32,
        cores: u32,
        shard_count: u32,
        data_dir: PathBuf,
        shards: BTreeMap<u32, Shard<ReplySink>>,
        wal: Wal,
        mesh: Senders<CoreMessage>,
    ) -> (Rc<Core>, LocalReceiver<()>) {
        let (flush_bell, bell_receiver) = local_channel::new_bounded(1);
        let snapshot_index = shards
            .iter()
            .map(|(shard, state)| (*shard, state.store().applied_index()))
            .collect();
        let core = Core {
            id,
            cores,
            shard_count,
            data_dir,
            shards: RefCell::new(shards),
            wal,
            mesh: Rc::new(mesh),
            waiting: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            unsynced: Cell::new(false),
            flush_bell,
            snapshot_index: RefCell::new(snapshot_index),
            snapshot_running: Cell::new(false),
            probe: CoreProbe::default(),
        };
        (Rc::new(core), bell_receiver)
    }

    /// Runs a validated client operation wherever its shard lives and returns the answer.
    pub async fn execute(self: &Rc<Self>, payload: AlignedVec) -> Reply {
        let shard = match access_operation(&payload) {
            Ok(operation) => match shard_of_operation(operation, self.shard_count) {
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
        let owner = core_of_shard(shard, self.cores);
        if owner == self.id {
            self.submit(shard, payload, ReplySink::Local(sender));
        } else {
            let token = self.next_token.get();
            self.next_token.set(token + 1);
            self.waiting.borrow_mut().insert(token, sender);
            let message = CoreMessage::Request {
                origin_core: self.id,
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
                shard_count: self.shard_count,
            },
            _ => Reply::Error(ErrorReply::Internal {
                message: "operation has no shard".into(),
            }),
        }
    }

    /// A client operation reached the core owning `shard`.
    fn submit(&self, shard: u32, payload: AlignedVec, sink: ReplySink) {
        let read_reply = {
            let shards = self.shards.borrow();
            let Some(state) = shards.get(&shard) else {
                drop(shards);
                let message = format!("shard {shard} is not on core {}", self.id);
                return self.deliver(sink, Reply::Error(ErrorReply::Internal { message }));
            };
            match access_operation(&payload) {
                Ok(operation) if is_read(operation) => Some(state.read(operation)),
                Ok(_) => None,
                Err(error) => Some(Reply::Error(ErrorReply::BadFrame {
                    reason: error.to_string(),
                })),
            }
        };
        match read_reply {
            Some(reply) => self.deliver(sink, reply),
            None => self.propose(shard, EntryKind::Operation, payload, Some(sink)),
        }
    }

    /// Gives an entry its log position and appends it to the WAL buffer; it is applied
    /// (and its client answered) after the next group commit.
    fn propose(&self, shard: u32, kind: EntryKind, payload: AlignedVec, sink: Option<ReplySink>) {
        let refusal = {
            let mut shards = self.shards.borrow_mut();
            let state = shards
                .get_mut(&shard)
                .expect("proposals only reach the owning core");
            let record_bytes = RECORD_HEADER_BYTES + payload.len();
            if state.unapplied_count() >= SHARD_UNAPPLIED_ENTRIES_MAX
                || self.wal.buffered_bytes() + record_bytes > WAL_BUFFER_BYTES_MAX
            {
                Some(Reply::Error(ErrorReply::Overloaded))
            } else {
                match state.next_entry() {
                    Err(_) => Some(Reply::Error(ErrorReply::NotPrimary { hint: None })),
                    Ok(id) => {
                        let timestamp_ms = now_ms();
                        let header = RecordHeader {
                            shard,
                            kind: kind as u8,
                            term: id.term,
                            index: id.index,
                            timestamp_ms,
                        };
                        // Room was checked above; a failure here leaves the log with a hole,
                        // which recovery must never see, so stop the node instead.
                        if let Err(error) = self.wal.append(&header, &payload) {
                            panic!("WAL append failed after its room was checked: {error}");
                        }
                        state.push(id, timestamp_ms, kind, payload, sink);
                        self.unsynced.set(true);
                        let _ = self.flush_bell.try_send(());
                        return;
                    }
                }
            }
        };
        if let Some(reply) = refusal {
            self.probe.overloaded.set(self.probe.overloaded.get() + 1);
            if let Some(sink) = sink {
                self.deliver(sink, reply);
            }
        }
    }

    /// The flusher: group-commits the WAL whenever something was appended, then commits
    /// and applies what became durable. One per core.
    pub async fn run_flusher(self: Rc<Self>, bell: LocalReceiver<()>) {
        while bell.recv().await.is_some() {
            while self.unsynced.replace(false) {
                let marks: Vec<(u32, u64)> = self
                    .shards
                    .borrow()
                    .iter()
                    .map(|(shard, state)| (*shard, state.group().last().index))
                    .collect();
                match self.wal.sync().await {
                    Ok(report) => {
                        self.probe.wal_syncs.set(self.probe.wal_syncs.get() + 1);
                        self.probe
                            .wal_records
                            .set(self.probe.wal_records.get() + report.records as u64);
                    }
                    Err(error) => {
                        // Nothing is acknowledged until a sync succeeds; keep retrying.
                        tracing::error!(core = self.id, %error, "WAL sync failed; retrying");
                        self.unsynced.set(true);
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                }
                for (shard, index) in marks {
                    let outputs = match self.shards.borrow_mut().get_mut(&shard) {
                        Some(state) => state.persisted(index, now_ms()),
                        None => Vec::new(),
                    };
                    self.handle_outputs(shard, outputs);
                }
            }
        }
    }

    /// True while records wait for a sync.
    pub fn has_unsynced(&self) -> bool {
        self.unsynced.get()
    }

    fn handle_outputs(&self, shard: u32, outputs: Vec<Output<ReplySink>>) {
        for output in outputs {
            match output {
                Output::Reply(sink, reply) => self.deliver(sink, reply),
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
                Output::Propose(command) => {
                    self.propose(shard, EntryKind::Command, encode_command(&command), None)
                }
            }
        }
    }

    fn deliver(&self, sink: ReplySink, reply: Reply) {
        match sink {
            // The client may have gone; its answer is then dropped.
            ReplySink::Local(sender) => drop(sender.send(reply)),
            ReplySink::Remote { core, token } => {
                self.send_to_core(core, CoreMessage::Response { token, reply })
            }
        }
    }

    /// Sends a message to whichever core owns `shard` (this one included).
    fn route(&self, shard: u32, message: CoreMessage) {
        let owner = core_of_shard(shard, self.cores);
        if owner == self.id {
            self.on_message(message);
        } else {
            self.send_to_core(owner, message);
        }
    }

    fn send_to_core(&self, core: u32, message: CoreMessage) {
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
            CoreMessage::ToParticipant(request) => self.on_participant_request(request),
            CoreMessage::ToCoordinator { coordinator, reply } => {
                self.on_participant_reply(coordinator, reply)
            }
        }
    }

    fn on_participant_request(&self, request: ParticipantRequest) {
        let shard = request.participant;
        let output = match self.shards.borrow_mut().get_mut(&shard) {
            Some(state) => state.on_participant_request(request),
            None => return tracing::error!(shard, core = self.id, "participant request misrouted"),
        };
        self.handle_outputs(shard, vec![output]);
    }

    fn on_participant_reply(&self, coordinator: u32, reply: ParticipantReply) {
        let output = match self.shards.borrow_mut().get_mut(&coordinator) {
            Some(state) => state.on_participant_reply(reply, now_ms()),
            None => {
                return tracing::error!(coordinator, core = self.id, "participant reply misrouted")
            }
        };
        self.handle_outputs(coordinator, output.into_iter().collect());
    }

    /// Periodic work of every shard on this core.
    pub fn tick(&self) {
        let now = now_ms();
        let shards: Vec<u32> = self.shards.borrow().keys().copied().collect();
        for shard in shards {
            let outputs = match self.shards.borrow_mut().get_mut(&shard) {
                Some(state) => state.tick(now),
                None => Vec::new(),
            };
            self.handle_outputs(shard, outputs);
        }
    }

    /// Snapshots every shard that applied `interval_entries` entries since its last
    /// snapshot, then releases the WAL segments no shard needs any more.
    pub async fn snapshot_if_due(self: &Rc<Self>, interval_entries: u64) {
        if self.snapshot_running.replace(true) {
            return;
        }
        let due: Vec<u32> = {
            let shards = self.shards.borrow();
            let taken = self.snapshot_index.borrow();
            shards
                .iter()
                .filter(|(shard, state)| {
                    let last = taken.get(shard).copied().unwrap_or(0);
                    state.store().applied_index() >= last + interval_entries
                })
                .map(|(shard, _)| *shard)
                .collect()
        };
        for shard in &due {
            if let Err(error) = self.snapshot_shard(*shard).await {
                tracing::error!(shard, %error, "snapshot failed; the WAL keeps every entry");
            }
        }
        if !due.is_empty() {
            let keep: BTreeMap<u32, u64> = self
                .snapshot_index
                .borrow()
                .iter()
                .map(|(shard, index)| (*shard, index + 1))
                .collect();
            match self
                .wal
                .release(|shard| keep.get(&shard).copied().unwrap_or(1))
                .await
            {
                Ok(released) => tracing::info!(core = self.id, released, "WAL segments released"),
                Err(error) => tracing::error!(core = self.id, %error, "WAL release failed"),
            }
        }
        self.snapshot_running.set(false);
    }

    async fn snapshot_shard(&self, shard: u32) -> Result<(), snapshot::SnapshotError> {
        let (body, index, term) = {
            let shards = self.shards.borrow();
            let Some(state) = shards.get(&shard) else {
                return Ok(());
            };
            let store = state.store();
            (
                store.to_snapshot(),
                store.applied_index(),
                store.applied_term(),
            )
        };
        snapshot::write_snapshot(&self.data_dir, shard, index, term, &body).await?;
        self.snapshot_index.borrow_mut().insert(shard, index);
        tracing::info!(shard, index, bytes = body.len(), "snapshot written");
        Ok(())
    }

    /// Number of entries proposed and not yet applied, over all shards of this core.
    pub fn unapplied(&self) -> usize {
        self.shards
            .borrow()
            .values()
            .map(|state| state.unapplied_count())
            .sum()
    }

    /// Client answers this core still waits for from other cores.
    pub fn waiting_count(&self) -> usize {
        self.waiting.borrow().len()
    }
}
