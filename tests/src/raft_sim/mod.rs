//! Deterministic simulation of per-shard Raft groups (the real `raft::node::RaftNode`) on
//! K nodes, from one seed.
//!
//! The simulator plays every member's shell: it ticks, delivers messages through a faulty
//! network (loss, duplication, delay, reordering, symmetric and asymmetric partitions),
//! writes each Ready to a simulated disk that completes writes late and in order, applies
//! committed entries to a digest "store", compacts logs into snapshots, proposes, reads and
//! transfers leadership at random, and crashes nodes (losing unwritten state, sometimes
//! tearing a write) and restarts them from their disks. After every step `check` holds its
//! invariants; after the faults heal, every group must elect a leader and every log and
//! store must converge within a bound (liveness).

mod check;
mod disk;
mod liveness;
mod machine;
mod network;

pub use network::NetworkFaults;

use crate::rng::Rng;
use check::History;
use disk::{Disk, Write};
use machine::Machine;
use network::Network;
use quorder_daemon::raft::config::{NodeId, RaftConfig};
use quorder_daemon::raft::log::SnapshotMeta;
use quorder_daemon::raft::message::Message;
use quorder_daemon::raft::node::RaftNode;
use quorder_daemon::raft::state::Role;
use quorder_daemon::raft::wire;
use rkyv::util::AlignedVec;
use std::collections::BTreeSet;
use std::rc::Rc;

/// Sizes, rates and switches of one run, all drawn from its seed.
#[derive(Debug, Clone)]
pub struct RaftSimOptions {
    /// Nodes (every node holds a member of every group).
    pub nodes: u64,
    /// Groups (shards).
    pub groups: usize,
    /// Ticks with faults.
    pub fault_ticks: u64,
    /// Ticks allowed after healing for every group to converge.
    pub heal_ticks_max: u64,
    /// Network faults while faults are on.
    pub network: NetworkFaults,
    /// Chance per tick, per thousand, that a node crashes.
    pub crash_per_mille: u64,
    /// Chance per tick, per thousand, that a partition starts.
    pub partition_per_mille: u64,
    /// Percent chance per tick and member that its disk completes writes.
    pub sync_percent: u64,
    /// Percent of messages passed through the wire encoding.
    pub wire_percent: u64,
    /// Pre-vote on every member.
    pub pre_vote: bool,
    /// Check-quorum (and leader stickiness) on every member.
    pub check_quorum: bool,
    /// Upper bound (exclusive) of election timeouts, from a minimum of 10 ticks: a narrow
    /// range makes candidates collide.
    pub election_ticks_max: u64,
    /// Most entries per append: small batches leave followers behind the commit index.
    pub max_entries_per_append: usize,
    /// Most bytes in flight to one follower.
    pub max_inflight_bytes: usize,
}

impl RaftSimOptions {
    /// The options of a seed's run.
    pub fn for_seed(rng: &mut Rng) -> RaftSimOptions {
        RaftSimOptions {
            nodes: if rng.chance(50) { 3 } else { 5 },
            groups: 1 + rng.below(3) as usize,
            fault_ticks: 150 + rng.below(150),
            heal_ticks_max: 1000,
            network: NetworkFaults {
                loss_percent: rng.below(15),
                duplicate_percent: rng.below(10),
                delay_ticks_max: rng.below(4),
                long_delay_percent: rng.below(3),
            },
            // Some runs crash often on slow disks: the window between a step and its write
            // completing is where durability bugs show.
            crash_per_mille: if rng.chance(25) {
                30 + rng.below(120)
            } else {
                rng.below(25)
            },
            partition_per_mille: rng.below(30),
            sync_percent: if rng.chance(25) {
                5 + rng.below(25)
            } else {
                30 + rng.below(70)
            },
            wire_percent: 25,
            pre_vote: !rng.chance(25),
            check_quorum: !rng.chance(15),
            election_ticks_max: if rng.chance(30) {
                12 + rng.below(3)
            } else {
                20
            },
            max_entries_per_append: 1 + rng.below(4) as usize,
            max_inflight_bytes: 256 + rng.below(1024) as usize,
        }
    }
}

/// What a run did (summed over seeds by the test).
#[derive(Debug, Default, Clone)]
pub struct RaftSimReport {
    /// Entries committed, over all groups.
    pub committed: u64,
    /// Terms that had a leader, over all groups.
    pub leader_terms: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Snapshots installed from a leader.
    pub snapshots_installed: u64,
    /// Reads confirmed.
    pub reads_served: u64,
    /// Leadership transfers asked for.
    pub transfers: u64,
    /// Partitions started.
    pub partitions: u64,
    /// Messages delivered.
    pub messages_delivered: u64,
    /// Ticks the groups took to converge after healing (summed).
    pub heal_ticks: u64,
}

/// One member of one group on one node.
struct Member {
    raft: Option<RaftNode>,
    disk: Disk,
    machine: Machine,
}

/// One node: a member of every group.
struct Node {
    id: NodeId,
    members: Vec<Member>,
    down_until_tick: Option<u64>,
}

/// The simulated cluster.
pub struct RaftSim {
    seed: u64,
    options: RaftSimOptions,
    rng: Rng,
    now_tick: u64,
    nodes: Vec<Node>,
    network: Network,
    history: History,
    partition_heals_at_tick: Option<u64>,
    next_payload: u64,
    next_read: u64,
    report: RaftSimReport,
}

impl RaftSim {
    /// A cluster for `seed`, every member fresh.
    pub fn new(seed: u64) -> RaftSim {
        let mut rng = Rng::new(seed);
        let options = RaftSimOptions::for_seed(&mut rng);
        let mut sim = RaftSim {
            seed,
            history: History::new(seed, options.groups),
            rng,
            now_tick: 0,
            nodes: Vec::new(),
            network: Network::default(),
            partition_heals_at_tick: None,
            next_payload: 1,
            next_read: 1,
            report: RaftSimReport::default(),
            options,
        };
        for id in 1..=sim.options.nodes {
            let members = (0..sim.options.groups)
                .map(|_| Member {
                    raft: None,
                    disk: Disk::default(),
                    machine: Machine::default(),
                })
                .collect();
            sim.nodes.push(Node {
                id,
                members,
                down_until_tick: None,
            });
        }
        for node in 0..sim.nodes.len() {
            sim.start(node);
        }
        sim
    }

    /// The options drawn for this seed.
    pub fn options(&self) -> &RaftSimOptions {
        &self.options
    }

    /// Runs the faulty phase, heals, and waits for convergence. Panics, naming the seed, on
    /// the first broken invariant.
    pub fn run(mut self) -> RaftSimReport {
        self.network.set_faults(true);
        for _ in 0..self.options.fault_ticks {
            self.tick(true);
        }
        self.heal();
        let mut converged_after = None;
        for heal_tick in 0..self.options.heal_ticks_max {
            self.tick(false);
            if (0..self.options.groups).all(|group| self.converged(group)) {
                converged_after = Some(heal_tick);
                break;
            }
        }
        let Some(heal_ticks) = converged_after else {
            panic!(
                "seed {}: groups did not converge after healing (liveness): {}",
                self.seed,
                self.describe()
            );
        };
        self.check_converged();
        self.report.heal_ticks = heal_ticks;
        self.report.committed = (0..self.options.groups)
            .map(|group| self.history.committed_len(group))
            .sum();
        self.report.leader_terms = self.history.terms() as u64;
        self.report.reads_served = self.history.reads_served;
        self.report.messages_delivered = self.network.delivered;
        self.report
    }

    fn config(&mut self, id: NodeId) -> RaftConfig {
        RaftConfig {
            heartbeat_ticks: 2,
            election_ticks_min: 10,
            election_ticks_max: self.options.election_ticks_max,
            max_inflight_bytes: self.options.max_inflight_bytes,
            max_entries_per_append: self.options.max_entries_per_append,
            max_bytes_per_append: 256,
            max_snapshot_chunk_bytes: 48,
            pre_vote: self.options.pre_vote,
            check_quorum: self.options.check_quorum,
            ..RaftConfig::with_defaults(id, (1..=self.options.nodes).collect(), self.rng.next_u64())
        }
    }

    /// (Re)starts every member of `node` from its disk.
    fn start(&mut self, node: usize) {
        let id = self.nodes[node].id;
        self.nodes[node].down_until_tick = None;
        for group in 0..self.options.groups {
            let config = self.config(id);
            let member = &mut self.nodes[node].members[group];
            member.machine = Machine::from_snapshot_body(&member.disk.snapshot_body);
            assert_eq!(member.machine.applied_index, member.disk.snapshot.index);
            self.history
                .check_machine(group, id, &member.machine, "restarts with");
            member.raft = Some(RaftNode::new(config, member.disk.restored()));
            self.drain(node, group);
        }
    }

    fn tick(&mut self, faults: bool) {
        self.now_tick += 1;
        for node in 0..self.nodes.len() {
            for group in 0..self.options.groups {
                if let Some(raft) = self.nodes[node].members[group].raft.as_mut() {
                    raft.tick();
                    self.drain(node, group);
                }
            }
        }
        self.deliver_due(faults);
        self.sync_disks(faults);
        if faults {
            self.client_actions();
            self.faults();
        }
    }

    fn deliver_due(&mut self, faults: bool) {
        for envelope in self.network.take_due(self.now_tick) {
            let node = (envelope.to - 1) as usize;
            let message = if self.rng.chance(self.options.wire_percent) {
                let bytes = wire::encode(&envelope.message);
                wire::decode(&bytes).unwrap_or_else(|error| {
                    panic!(
                        "seed {}: {:?} does not survive the wire: {error}",
                        self.seed, envelope.message
                    )
                })
            } else {
                envelope.message
            };
            let Some(raft) = self.nodes[node].members[envelope.group].raft.as_mut() else {
                continue;
            };
            raft.step(envelope.from, message);
            self.drain(node, envelope.group);
            // Crashing right after a step, before its writes complete, is where a message
            // sent ahead of the state it depends on would show.
            if faults && self.can_crash() && self.rng.below(20_000) < self.options.crash_per_mille {
                self.crash(node);
            }
        }
    }

    /// Whether one more node may go down (a majority stays up, so groups make progress).
    fn can_crash(&self) -> bool {
        let down = self
            .nodes
            .iter()
            .filter(|node| node.down_until_tick.is_some())
            .count();
        (down as u64) < (self.options.nodes - 1) / 2
    }

    fn sync_disks(&mut self, faults: bool) {
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
    fn sync(&mut self, node: usize, group: usize, writes: u64) {
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

    fn send(&mut self, from: NodeId, to: NodeId, group: usize, message: Message) {
        let faults = self.options.network.clone();
        self.network.send(
            &mut self.rng,
            &faults,
            self.now_tick,
            (from, to, group),
            message,
        );
    }

    /// Plays the shell for one member: takes every Ready and acts on it.
    fn drain(&mut self, node: usize, group: usize) {
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

    fn apply(&mut self, node: usize, group: usize, entry: &quorder_daemon::raft::log::LogEntry) {
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

    fn client_actions(&mut self) {
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

    fn random_member(&mut self) -> (usize, usize) {
        let node = self.rng.below(self.options.nodes) as usize;
        let group = self.rng.below(self.options.groups as u64) as usize;
        (node, group)
    }

    fn read(&mut self, (node, group): (usize, usize)) {
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
    fn compact(&mut self, node: usize, group: usize) {
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

    fn faults(&mut self) {
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

    fn crash(&mut self, node: usize) {
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

    fn partition(&mut self) {
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
    fn random_node_often_a_leader(&mut self) -> usize {
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
    fn heal(&mut self) {
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
