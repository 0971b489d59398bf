//! Durability for a core's mirrors: WAL records for what each mirror hands out, group
//! commit (one write + one fdatasync for everything appended since the last one), the
//! acknowledgements back to the mirrors once their writes are durable, and snapshots with
//! log compaction.
//!
//! Records appended between two syncs belong to one generation; a mirror's persist
//! request is acknowledged once a successful sync covered its generation and, for an
//! installed snapshot, once the snapshot file is durable too. Acknowledgements go out in
//! each mirror's order.

use super::core::{now_ms, Core};
use crate::raft::log::SnapshotMeta;
use crate::recovery::{DurableHardState, RECORD_KIND_HARD_STATE, RECORD_KIND_LOG_RESET};
use crate::shard::PersistRequest;
use crate::snapshot;
use crate::wal::RecordHeader;
use glommio::channels::local_channel::LocalReceiver;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

#[derive(Debug)]
struct PendingAck {
    sequence: u64,
    generation: u64,
    file_pending: bool,
}

/// Durability bookkeeping of one core.
#[derive(Debug, Default)]
pub struct PersistState {
    generation: Cell<u64>,
    unsynced: Cell<bool>,
    pending: RefCell<BTreeMap<u32, VecDeque<PendingAck>>>,
    recorded_commit: RefCell<BTreeMap<u32, u64>>,
    snapshot_index: RefCell<BTreeMap<u32, u64>>,
    snapshot_running: Cell<bool>,
}

impl PersistState {
    /// Bookkeeping for mirrors whose stores start at the given applied indexes.
    pub fn new(applied: impl Iterator<Item = (u32, u64)>) -> PersistState {
        let state = PersistState::default();
        state.snapshot_index.replace(applied.collect());
        state
    }
}

impl Core {
    fn append(&self, header: RecordHeader, payload: &[u8]) {
        // The WAL refuses only past its buffer bound, which admission control keeps
        // proposals far from; losing a record here would acknowledge what is not written,
        // so stop the node instead (recovery replays what was synced).
        if let Err(error) = self.wal.append(&header, payload) {
            panic!("WAL append failed: {error}");
        }
        self.persist.unsynced.set(true);
    }

    fn append_hard_state(&self, shard: u32, state: DurableHardState) {
        let header = RecordHeader {
            shard,
            kind: RECORD_KIND_HARD_STATE,
            term: state.term,
            index: 0,
            timestamp_ms: now_ms(),
        };
        self.append(header, &state.encode());
        self.persist
            .recorded_commit
            .borrow_mut()
            .insert(shard, state.commit);
    }

    fn append_log_reset(&self, shard: u32, after_index: u64) {
        let header = RecordHeader {
            shard,
            kind: RECORD_KIND_LOG_RESET,
            term: 0,
            index: after_index,
            timestamp_ms: now_ms(),
        };
        self.append(header, &[]);
    }

    fn current_hard_state(&self, shard: u32, commit: u64) -> DurableHardState {
        let shards = self.shards.borrow();
        let hard = shards
            .get(&shard)
            .map(|state| state.raft().hard_state())
            .unwrap_or_default();
        DurableHardState {
            term: hard.term,
            vote: hard.vote.unwrap_or(0),
            commit,
        }
    }

    /// Writes a mirror's persist request into the WAL buffer; acknowledged after a sync.
    pub(super) fn persist(&self, shard: u32, request: PersistRequest) {
        let recorded = self
            .persist
            .recorded_commit
            .borrow()
            .get(&shard)
            .copied()
            .unwrap_or(0);
        if request.hard_state.is_some() || request.commit > recorded {
            let state = match request.hard_state {
                Some(hard) => DurableHardState {
                    term: hard.term,
                    vote: hard.vote.unwrap_or(0),
                    commit: request.commit,
                },
                None => self.current_hard_state(shard, request.commit),
            };
            self.append_hard_state(shard, state);
        }
        if let Some(from) = request.truncate_from {
            self.append_log_reset(shard, from.saturating_sub(1));
        }
        for entry in &request.entries {
            let header = RecordHeader {
                shard,
                kind: entry.kind,
                term: entry.term,
                index: entry.index,
                timestamp_ms: entry.timestamp_ms,
            };
            self.append(header, &entry.payload);
        }
        let ack = PendingAck {
            sequence: request.sequence,
            generation: self.persist.generation.get(),
            file_pending: request.snapshot.is_some(),
        };
        self.persist
            .pending
            .borrow_mut()
            .entry(shard)
            .or_default()
            .push_back(ack);
        if let Some((meta, body)) = request.snapshot {
            self.spawn_snapshot_install(shard, meta, body, request.sequence);
        }
        let _ = self.flush_bell.try_send(());
    }

    fn spawn_snapshot_install(
        &self,
        shard: u32,
        meta: SnapshotMeta,
        body: Rc<rkyv::util::AlignedVec>,
        sequence: u64,
    ) {
        let Some(core) = self.self_rc() else { return };
        glommio::spawn_local(async move {
            // Without its snapshot file the mirror cannot go on: a restart would replay a
            // log that no longer starts where the store does.
            if let Err(error) = snapshot::write_snapshot(
                &core.identity.data_dir,
                shard,
                meta.index,
                meta.term,
                &body,
            )
            .await
            {
                panic!("shard {shard}: cannot persist a received snapshot: {error}");
            }
            core.append_log_reset(shard, meta.index);
            core.persist
                .snapshot_index
                .borrow_mut()
                .insert(shard, meta.index);
            if let Some(pending) = core.persist.pending.borrow_mut().get_mut(&shard) {
                for ack in pending.iter_mut().filter(|ack| ack.sequence == sequence) {
                    ack.file_pending = false;
                    ack.generation = core.persist.generation.get();
                }
            }
            let _ = core.flush_bell.try_send(());
        })
        .detach();
    }

    /// True while records wait for a sync.
    pub fn has_unsynced(&self) -> bool {
        self.persist.unsynced.get()
    }

    /// The flusher: group-commits the WAL whenever something was appended, then tells
    /// each mirror which of its writes are durable. One per core.
    pub async fn run_flusher(self: Rc<Self>, bell: LocalReceiver<()>) {
        while bell.recv().await.is_some() {
            loop {
                let work = self.persist.unsynced.replace(false) || self.has_acknowledgeable();
                if !work {
                    break;
                }
                let generation = self.persist.generation.get();
                self.persist.generation.set(generation + 1);
                match self.wal.sync().await {
                    Ok(report) => {
                        self.probe.wal_syncs.set(self.probe.wal_syncs.get() + 1);
                        self.probe
                            .wal_records
                            .set(self.probe.wal_records.get() + report.records as u64);
                    }
                    Err(error) => {
                        // Nothing is acknowledged until a sync succeeds; keep retrying.
                        tracing::error!(core = self.id(), %error, "WAL sync failed; retrying");
                        self.persist.unsynced.set(true);
                        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                }
                self.acknowledge(generation);
            }
        }
    }

    fn has_acknowledgeable(&self) -> bool {
        let generation = self.persist.generation.get();
        self.persist.pending.borrow().values().any(|pending| {
            pending
                .front()
                .is_some_and(|ack| !ack.file_pending && ack.generation < generation)
        })
    }

    fn acknowledge(&self, synced_generation: u64) {
        let shards: Vec<u32> = self.persist.pending.borrow().keys().copied().collect();
        for shard in shards {
            let mut highest = None;
            if let Some(pending) = self.persist.pending.borrow_mut().get_mut(&shard) {
                while pending
                    .front()
                    .is_some_and(|ack| !ack.file_pending && ack.generation <= synced_generation)
                {
                    highest = pending.pop_front().map(|ack| ack.sequence);
                }
            }
            let Some(sequence) = highest else { continue };
            let outputs = match self.shards.borrow_mut().get_mut(&shard) {
                Some(state) => state.persisted(sequence),
                None => continue,
            };
            self.handle_outputs(shard, outputs);
            self.drive(shard);
        }
    }

    /// Snapshots every mirror that applied `snapshot_interval_entries` entries since its
    /// last snapshot, compacts its log, and releases the WAL segments no mirror needs.
    pub async fn snapshot_if_due(self: &Rc<Self>) {
        if self.persist.snapshot_running.replace(true) {
            return;
        }
        let due: Vec<u32> = {
            let shards = self.shards.borrow();
            let taken = self.persist.snapshot_index.borrow();
            shards
                .iter()
                .filter(|(shard, state)| {
                    let last = taken.get(shard).copied().unwrap_or(0);
                    state.store().applied_index() >= last + self.identity.snapshot_interval_entries
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
            self.release_wal().await;
        }
        self.persist.snapshot_running.set(false);
    }

    async fn snapshot_shard(&self, shard: u32) -> Result<(), snapshot::SnapshotError> {
        let taken = self
            .shards
            .borrow()
            .get(&shard)
            .and_then(|state| state.snapshot_now());
        let Some((meta, body)) = taken else {
            return Ok(());
        };
        snapshot::write_snapshot(&self.identity.data_dir, shard, meta.index, meta.term, &body)
            .await?;
        self.persist
            .snapshot_index
            .borrow_mut()
            .insert(shard, meta.index);
        if let Some(state) = self.shards.borrow_mut().get_mut(&shard) {
            state.compacted(meta);
        }
        tracing::info!(
            shard,
            index = meta.index,
            bytes = body.len(),
            "snapshot written"
        );
        Ok(())
    }

    /// Re-appends every mirror's hard state (so the newest one is never in a released
    /// segment), syncs, then releases the segments every mirror's snapshot covers.
    async fn release_wal(&self) {
        let shards: Vec<(u32, u64)> = self
            .shards
            .borrow()
            .iter()
            .map(|(shard, state)| (*shard, state.raft().commit_index()))
            .collect();
        for (shard, commit) in shards {
            let state = self.current_hard_state(shard, commit);
            self.append_hard_state(shard, state);
        }
        if let Err(error) = self.wal.sync().await {
            return tracing::error!(core = self.id(), %error, "sync before WAL release failed");
        }
        let keep: BTreeMap<u32, u64> = self
            .persist
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
            Ok(released) => tracing::info!(core = self.id(), released, "WAL segments released"),
            Err(error) => tracing::error!(core = self.id(), %error, "WAL release failed"),
        }
    }
}
