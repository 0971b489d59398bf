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
mod faults;
mod liveness;
mod machine;
mod network;
mod shell;
mod workload;

pub use network::NetworkFaults;

use crate::rng::Rng;
use check::History;
use disk::Disk;
use machine::Machine;
use network::Network;
use quorder_daemon::raft::config::{NodeId, RaftConfig};
use quorder_daemon::raft::message::Message;
use quorder_daemon::raft::node::RaftNode;
use quorder_daemon::raft::wire;

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
}
