//! Faults beyond the network's own: crashes (with torn writes) and restarts, partitions,
//! and healing at the end of the faulty phase.

use super::machine::Machine;
use super::RaftSim;
use quorder_daemon::raft::config::NodeId;
use quorder_daemon::raft::state::Role;
use std::collections::BTreeSet;

impl RaftSim {
    pub(super) fn faults(&mut self) {
        if self.can_crash() && self.rng.below(1000) < self.options.crash_per_mille {
            let node = self.random_node_often_a_leader();
            if self.nodes[node].down_until_tick.is_none() {
                self.crash(node);
            }
        }
        for node in 0..self.nodes.len() {
            if self.nodes[node]
                .down_until_tick
                .is_some_and(|tick| tick <= self.now_tick)
            {
                self.start(node);
            }
        }
        match self.partition_heals_at_tick {
            Some(tick) if tick <= self.now_tick => {
                self.network.heal();
                self.partition_heals_at_tick = None;
            }
            None if self.rng.below(1000) < self.options.partition_per_mille => self.partition(),
            _ => {}
        }
    }

    /// Whether one more node may go down (a majority stays up, so groups make progress).
    pub(super) fn can_crash(&self) -> bool {
        let down = self
            .nodes
            .iter()
            .filter(|node| node.down_until_tick.is_some())
            .count();
        (down as u64) < (self.options.nodes - 1) / 2
    }

    pub(super) fn crash(&mut self, node: usize) {
        self.report.crashes += 1;
        for group in 0..self.options.groups {
            let queued = self.nodes[node].members[group].disk.queue.len() as u64;
            let kept = self.rng.below(queued + 1) as usize;
            let torn = self.rng.chance(50).then(|| self.rng.below(4) as usize);
            let member = &mut self.nodes[node].members[group];
            member.disk.crash(kept, torn);
            member.raft = None;
            member.machine = Machine::default();
        }
        let restart_tick = self.now_tick + 1 + self.rng.below(40);
        self.network
            .node_crashed(&mut self.rng, self.nodes[node].id, restart_tick);
        self.nodes[node].down_until_tick = Some(restart_tick);
    }

    pub(super) fn partition(&mut self) {
        self.report.partitions += 1;
        let nodes: Vec<NodeId> = self.nodes.iter().map(|node| node.id).collect();
        let shape = self.rng.below(3);
        if shape == 0 {
            let side: BTreeSet<NodeId> = nodes
                .iter()
                .copied()
                .filter(|_| self.rng.chance(50))
                .collect();
            self.network.partition_symmetric(&side, &nodes);
        } else if shape == 1 {
            // A leader alone (or with a minority): the rest must elect another.
            let leader = self.random_node_often_a_leader();
            let leader = self.nodes[leader].id;
            let side: BTreeSet<NodeId> = nodes
                .iter()
                .copied()
                .filter(|node| *node == leader || self.rng.chance(20))
                .collect();
            self.network.partition_symmetric(&side, &nodes);
        } else {
            for _ in 0..1 + self.rng.below(3) {
                let from = 1 + self.rng.below(self.options.nodes);
                let to = 1 + self.rng.below(self.options.nodes);
                self.network.cut_one_way(from, to);
            }
        }
        self.partition_heals_at_tick = Some(self.now_tick + 5 + self.rng.below(60));
    }

    /// A node that leads some group half of the time (faults there cause elections),
    /// any node otherwise.
    pub(super) fn random_node_often_a_leader(&mut self) -> usize {
        let group = self.rng.below(self.options.groups as u64) as usize;
        let leader = self.nodes.iter().position(|node| {
            node.members[group]
                .raft
                .as_ref()
                .is_some_and(|raft| raft.role() == Role::Leader)
        });
        match leader {
            Some(node) if self.rng.chance(50) => node,
            _ => self.rng.below(self.options.nodes) as usize,
        }
    }

    /// No more faults: partitions heal, crashed nodes restart.
    pub(super) fn heal(&mut self) {
        self.network.set_faults(false);
        self.network.heal();
        self.partition_heals_at_tick = None;
        for node in 0..self.nodes.len() {
            if self.nodes[node].down_until_tick.is_some() {
                self.start(node);
            }
        }
        debug_assert!(!self.network.is_partitioned());
    }
}
