//! The simulator playing each member's shell: taking Readys, queueing writes on the disk,
//! sending messages (the after-persist ones only once their write completed), applying
//! committed entries to the store, and reporting completions back to the member.

use super::disk::Write;
use super::machine::Machine;
use super::RaftSim;
use quorder_daemon::raft::log::LogEntry;

impl RaftSim {
    pub(super) fn sync_disks(&mut self, faults: bool) {
        for node in 0..self.nodes.len() {
            for group in 0..self.options.groups {
                if self.nodes[node].members[group].raft.is_none() {
                    continue;
                }
                if faults && !self.rng.chance(self.options.sync_percent) {
                    continue;
                }
                let writes = if faults {
                    1 + self.rng.below(3)
                } else {
                    u64::MAX
                };
                self.sync(node, group, writes);
            }
        }
    }

    /// The disk of a member completes up to `writes` queued writes; what waited on them follows.
    pub(super) fn sync(&mut self, node: usize, group: usize, writes: u64) {
        for _ in 0..writes {
            let member = &mut self.nodes[node].members[group];
            let Some(write) = member.disk.complete_one() else {
                return;
            };
            let id = self.nodes[node].id;
            for (to, message) in write.messages_after_persist {
                self.send(id, to, group, message);
            }
            let member = &mut self.nodes[node].members[group];
            let Some(raft) = member.raft.as_mut() else {
                return;
            };
            if let Some(last) = write.entries.last() {
                raft.persisted(last.index, last.term);
            }
            if let Some((meta, _)) = write.snapshot {
                member.machine = Machine::from_snapshot_body(&member.disk.snapshot_body);
                assert_eq!(member.machine.applied_index, meta.index);
                raft.snapshot_installed(meta);
                self.history
                    .check_machine(group, id, &member.machine, "installs");
                self.report.snapshots_installed += 1;
            }
            self.drain(node, group);
        }
    }

    /// Plays the shell for one member: takes every Ready and acts on it.
    pub(super) fn drain(&mut self, node: usize, group: usize) {
        let id = self.nodes[node].id;
        loop {
            let Some(raft) = self.nodes[node].members[group].raft.as_mut() else {
                return;
            };
            self.history
                .observe_role(group, id, raft.role(), raft.term());
            self.history
                .observe_commit_index(group, raft.commit_index());
            if !raft.has_ready() {
                return;
            }
            let mut ready = raft.ready();
            if let Some(first) = ready.entries.first() {
                let prev_term = raft.term_of(first.index - 1);
                let prev_term = prev_term
                    .unwrap_or_else(|| panic!("seed {}: entry before a write unknown", self.seed));
                self.history
                    .observe_written(group, id, &ready.entries, prev_term);
            }
            if !ready.snapshot_needed_for.is_empty() {
                let disk = &self.nodes[node].members[group].disk;
                let (meta, body) = (disk.snapshot, disk.snapshot_body.clone());
                if let Some(raft) = self.nodes[node].members[group].raft.as_mut() {
                    raft.snapshot_body(meta, body);
                }
            }
            for (to, message) in std::mem::take(&mut ready.messages) {
                self.send(id, to, group, message);
            }
            for read in std::mem::take(&mut ready.read_states) {
                self.history.observe_read_state(group, id, read);
            }
            for entry in std::mem::take(&mut ready.committed) {
                self.apply(node, group, &entry);
            }
            if ready.needs_persist() || !ready.messages_after_persist.is_empty() {
                let write = Write {
                    hard_state: ready.hard_state,
                    truncate_from: ready.truncate_from,
                    entries: ready.entries,
                    snapshot: ready.snapshot_to_install,
                    messages_after_persist: ready.messages_after_persist,
                };
                self.nodes[node].members[group].disk.queue.push_back(write);
            }
        }
    }

    pub(super) fn apply(&mut self, node: usize, group: usize, entry: &LogEntry) {
        let id = self.nodes[node].id;
        let quorum = (self.options.nodes / 2 + 1) as usize;
        let nodes = &self.nodes;
        let member = &self.nodes[node].members[group];
        self.history
            .observe_applied(group, id, &member.machine, entry, || {
                let holders = nodes
                    .iter()
                    .filter(|node| node.members[group].disk.holds(entry.index, entry.term))
                    .count();
                (holders, quorum)
            });
        let member = &mut self.nodes[node].members[group];
        member.machine.apply(entry);
        if let Some(raft) = member.raft.as_mut() {
            raft.applied(entry.index);
        }
    }
}
