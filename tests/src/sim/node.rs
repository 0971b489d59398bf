//! A simulated node: its mirrors, its disk (durable records, unsynced records, snapshot
//! files) and recovery from that disk exactly as the daemon recovers.

use quorder_daemon::raft::config::{NodeId, RaftConfig};
use quorder_daemon::raft::log::SnapshotMeta;
use quorder_daemon::recovery::{
    DurableHardState, RecoveredShard, RECORD_KIND_HARD_STATE, RECORD_KIND_LOG_RESET,
};
use quorder_daemon::shard::{PersistRequest, Shard};
use quorder_daemon::store::Store;
use quorder_daemon::wal::RecordHeader;
use rkyv::util::AlignedVec;
use std::collections::{BTreeMap, VecDeque};

/// One WAL record on the simulated disk.
#[derive(Debug, Clone)]
pub struct DiskRecord {
    /// Header as the daemon writes it.
    pub header: RecordHeader,
    /// Payload.
    pub payload: AlignedVec,
}

/// The simulated disk of a node.
#[derive(Debug, Default)]
pub struct Disk {
    /// Records made durable, in order.
    pub durable: Vec<DiskRecord>,
    unsynced: Vec<DiskRecord>,
    /// Snapshot files by shard.
    pub snapshots: BTreeMap<u32, (SnapshotMeta, AlignedVec)>,
    pending_snapshots: Vec<(u32, SnapshotMeta, AlignedVec)>,
    recorded_commit: BTreeMap<u32, u64>,
}

/// A node of the simulated cluster.
pub struct SimNode {
    /// Its id.
    pub id: NodeId,
    /// Whether it runs.
    pub up: bool,
    /// Its mirrors, while up.
    pub mirrors: BTreeMap<u32, Shard<u64>>,
    /// Its disk (survives crashes, less what was not synced).
    pub disk: Disk,
    unacknowledged: BTreeMap<u32, VecDeque<u64>>,
}

fn record(shard: u32, kind: u8, term: u64, index: u64, payload: &[u8]) -> DiskRecord {
    let mut aligned = AlignedVec::with_capacity(payload.len());
    aligned.extend_from_slice(payload);
    DiskRecord {
        header: RecordHeader {
            shard,
            kind,
            term,
            index,
            timestamp_ms: 0,
        },
        payload: aligned,
    }
}

impl SimNode {
    /// A node with an empty disk, not yet started.
    pub fn new(id: NodeId) -> SimNode {
        SimNode {
            id,
            up: false,
            mirrors: BTreeMap::new(),
            disk: Disk::default(),
            unacknowledged: BTreeMap::new(),
        }
    }

    /// Writes a mirror's persist request as the daemon does (unsynced until `sync`).
    pub fn persist(&mut self, shard: u32, request: PersistRequest) {
        let recorded = self.disk.recorded_commit.get(&shard).copied().unwrap_or(0);
        if request.hard_state.is_some() || request.commit > recorded {
            let hard = request
                .hard_state
                .unwrap_or_else(|| self.mirrors[&shard].raft().hard_state());
            let state = DurableHardState {
                term: hard.term,
                vote: hard.vote.unwrap_or(0),
                commit: request.commit,
            };
            self.disk.unsynced.push(record(
                shard,
                RECORD_KIND_HARD_STATE,
                hard.term,
                0,
                &state.encode(),
            ));
            self.disk.recorded_commit.insert(shard, request.commit);
        }
        if let Some(from) = request.truncate_from {
            self.disk.unsynced.push(record(
                shard,
                RECORD_KIND_LOG_RESET,
                0,
                from.saturating_sub(1),
                &[],
            ));
        }
        for entry in &request.entries {
            let mut disk_record =
                record(shard, entry.kind, entry.term, entry.index, &entry.payload);
            disk_record.header.timestamp_ms = entry.timestamp_ms;
            self.disk.unsynced.push(disk_record);
        }
        if let Some((meta, body)) = request.snapshot {
            self.disk
                .pending_snapshots
                .push((shard, meta, body.as_ref().clone()));
        }
        self.unacknowledged
            .entry(shard)
            .or_default()
            .push_back(request.sequence);
    }

    /// Group commit: everything written so far becomes durable. Returns, per shard, the
    /// highest persist sequence to acknowledge.
    pub fn sync(&mut self) -> Vec<(u32, u64)> {
        self.disk.durable.append(&mut self.disk.unsynced);
        for (shard, meta, body) in std::mem::take(&mut self.disk.pending_snapshots) {
            self.disk.snapshots.insert(shard, (meta, body));
            self.disk
                .durable
                .push(record(shard, RECORD_KIND_LOG_RESET, 0, meta.index, &[]));
        }
        let acknowledged = std::mem::take(&mut self.unacknowledged);
        acknowledged
            .into_iter()
            .filter_map(|(shard, sequences)| sequences.back().map(|last| (shard, *last)))
            .collect()
    }

    /// The process dies: mirrors and unsynced writes are gone.
    pub fn crash(&mut self) {
        self.up = false;
        self.mirrors.clear();
        self.disk.unsynced.clear();
        self.disk.pending_snapshots.clear();
        self.disk.recorded_commit.clear();
        self.unacknowledged.clear();
    }

    /// Starts the node from its disk: snapshots, then the records, as the daemon does.
    pub fn recover(&mut self, shard_count: u32, config: impl Fn(u32) -> RaftConfig) {
        let mut recovered: BTreeMap<u32, RecoveredShard> = (0..shard_count)
            .map(|shard| {
                let mirror = match self.disk.snapshots.get(&shard) {
                    Some((meta, body)) => {
                        let store =
                            Store::from_snapshot(shard, body).expect("simulated snapshot loads");
                        RecoveredShard::new(store, meta.index, meta.term)
                    }
                    None => RecoveredShard::new(Store::new(shard, shard_count), 0, 0),
                };
                (shard, mirror)
            })
            .collect();
        for disk_record in &self.disk.durable {
            let mirror = recovered
                .get_mut(&disk_record.header.shard)
                .expect("record of a known shard");
            if let Err(error) = mirror.replay(&disk_record.header, &disk_record.payload) {
                panic!("node {}: recovery refused its own disk: {error}", self.id);
            }
        }
        self.mirrors = recovered
            .into_iter()
            .map(|(shard, mirror)| {
                let (store, restored) = mirror.into_parts();
                (shard, Shard::new(store, config(shard), restored, 500))
            })
            .collect();
        self.up = true;
    }

    /// A local snapshot of `shard` for compaction: written at once (the daemon fsyncs the
    /// file before compacting), then the log before it is dropped, as WAL release does.
    pub fn snapshot_and_compact(&mut self, shard: u32) {
        let Some(mirror) = self.mirrors.get_mut(&shard) else {
            return;
        };
        let Some((meta, body)) = mirror.snapshot_now() else {
            return;
        };
        mirror.compacted(meta);
        let hard = mirror.raft().hard_state();
        let commit = mirror.raft().commit_index();
        self.disk.snapshots.insert(shard, (meta, body));
        // The daemon re-appends every hard state after what is buffered and syncs before
        // releasing segments (the acknowledgements still come from the next group commit).
        let state = DurableHardState {
            term: hard.term,
            vote: hard.vote.unwrap_or(0),
            commit,
        };
        self.disk.unsynced.push(record(
            shard,
            RECORD_KIND_HARD_STATE,
            hard.term,
            0,
            &state.encode(),
        ));
        self.disk.durable.append(&mut self.disk.unsynced);
        let first_kept = self.disk.durable.iter().position(|record| {
            record.header.shard == shard
                && record.header.kind <= 3
                && record.header.index > meta.index
        });
        // Release drops whole segments from the front: model it as dropping this shard's
        // entry records that the snapshot covers and that precede every entry it still needs.
        let cut = first_kept.unwrap_or(self.disk.durable.len());
        let mut position = 0;
        self.disk.durable.retain(|record| {
            position += 1;
            !(position <= cut
                && record.header.shard == shard
                && record.header.kind <= 3
                && record.header.index <= meta.index)
        });
    }
}
