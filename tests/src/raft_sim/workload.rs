//! What clients and operators do during the faulty phase: proposals, linearizable reads,
//! leadership transfers, and snapshots that compact the log.

use super::RaftSim;
use quorder_daemon::raft::log::SnapshotMeta;
use rkyv::util::AlignedVec;
use std::rc::Rc;

impl RaftSim {
    pub(super) fn client_actions(&mut self) {
        for _ in 0..self.rng.below(3) {
            let (node, group) = self.random_member();
            let mut payload = AlignedVec::new();
            payload.extend_from_slice(&self.next_payload.to_le_bytes());
            payload.extend_from_slice(&vec![7; self.rng.below(64) as usize]);
            self.next_payload += 1;
            if let Some(raft) = self.nodes[node].members[group].raft.as_mut() {
                let _ = raft.propose(1, self.now_tick, Rc::new(payload));
                self.drain(node, group);
            }
        }
        if self.rng.chance(20) {
            let member = self.random_member();
            self.read(member);
        }
        if self.rng.chance(2) {
            let (node, group) = self.random_member();
            let to = 1 + self.rng.below(self.options.nodes);
            if let Some(raft) = self.nodes[node].members[group].raft.as_mut() {
                if raft.transfer_leadership(to).is_ok() {
                    self.report.transfers += 1;
                }
                self.drain(node, group);
            }
        }
        if self.rng.chance(10) {
            let (node, group) = self.random_member();
            self.compact(node, group);
        }
    }

    pub(super) fn random_member(&mut self) -> (usize, usize) {
        let node = self.rng.below(self.options.nodes) as usize;
        let group = self.rng.below(self.options.groups as u64) as usize;
        (node, group)
    }

    pub(super) fn read(&mut self, (node, group): (usize, usize)) {
        let context = self.next_read;
        let Some(raft) = self.nodes[node].members[group].raft.as_mut() else {
            return;
        };
        // Registered first: the read may be confirmed within the call (a single voter).
        self.history.observe_read_request(group, context);
        if raft.read_index(context).is_ok() {
            self.next_read += 1;
        }
        self.drain(node, group);
    }

    /// The member writes a snapshot of its store and compacts its log.
    pub(super) fn compact(&mut self, node: usize, group: usize) {
        let member = &mut self.nodes[node].members[group];
        let Some(raft) = member.raft.as_mut() else {
            return;
        };
        let applied = member.machine.applied_index;
        if applied < member.disk.snapshot.index + 4 {
            return;
        }
        let term = raft
            .term_of(applied)
            .unwrap_or_else(|| panic!("seed {}: applied entry unknown", self.seed));
        let meta = SnapshotMeta {
            index: applied,
            term,
        };
        member.disk.compact(meta, member.machine.snapshot_body());
        raft.compact(meta);
        self.drain(node, group);
    }
}
