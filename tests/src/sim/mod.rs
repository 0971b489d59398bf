//! Deterministic simulation of a quorder cluster: K nodes × S shards of the real `shard`,
//! `raft`, `store`, `txn` and `recovery` code, on a simulated network (loss, duplication,
//! reordering, delay, symmetric and asymmetric partitions), simulated disks (a crash loses
//! what was not synced) and a simulated clock, all from one seed.
//!
//! The simulator plays each node's shell the way `runtime` does: it writes persist
//! requests to the node's disk and acknowledges them after a sync, routes two-phase-commit
//! messages to the primary of the addressed shard, and rebuilds a crashed node from its
//! disk through `recovery`. After every step it checks the invariants of DESIGN.md §9
//! (`check.rs`); after the faults heal every group must elect a primary and every mirror
//! converge (liveness). A failing seed prints itself and replays bit-identically.

mod check;
mod node;

use crate::rng::Rng;
use node::SimNode;
use quorder_daemon::raft::config::{NodeId, RaftConfig};
use quorder_daemon::raft::message::Message;
use quorder_daemon::shard::{Output, Shard};
use quorder_daemon::txn::message::{ParticipantReply, ParticipantRequest};
use quorder_proto::codec::encode_operation;
use quorder_proto::shard::{shard_of_order, shard_of_sku};
use quorder_proto::{Operation, OrderLine, OrderStatus, Payment, PlaceOrder, PutItem, Reply};
use std::collections::{BTreeMap, BTreeSet};

/// Sizes and fault rates of a run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Nodes (each holds a mirror of every shard).
    pub nodes: u64,
    /// Shards.
    pub shards: u32,
    /// Items created at the start.
    pub skus: u64,
    /// Units of each item.
    pub stock_per_sku: u64,
    /// Steps of the faulty phase.
    pub steps: u32,
    /// Chance per thousand steps that a node crashes.
    pub crash_per_mille: u64,
    /// Percent chance that a message is lost.
    pub drop_percent: u64,
    /// Percent chance that a message is delivered twice.
    pub duplicate_percent: u64,
    /// Percent chance per step that the partition changes.
    pub partition_percent: u64,
    /// Percent chance per step that a node snapshots and compacts a shard.
    pub snapshot_percent: u64,
}

impl SimOptions {
    /// Options drawn from the seed: 1, 3 or 5 nodes, and varied fault rates.
    pub fn for_seed(rng: &mut Rng) -> SimOptions {
        let nodes = [1, 3, 3, 3, 5][rng.below(5) as usize];
        SimOptions {
            nodes,
            shards: 1 + rng.below(4) as u32,
            skus: 12,
            stock_per_sku: 40,
            steps: 4000,
            crash_per_mille: rng.below(15),
            drop_percent: rng.below(10),
            duplicate_percent: rng.below(5),
            partition_percent: if nodes > 1 { rng.below(4) } else { 0 },
            snapshot_percent: rng.below(4),
        }
    }
}

/// What crosses the simulated network.
#[derive(Debug, Clone)]
enum Envelope {
    Raft {
        shard: u32,
        message: Message,
    },
    ToParticipant(ParticipantRequest),
    ToCoordinator {
        coordinator: u32,
        reply: ParticipantReply,
    },
}

#[derive(Debug, Clone)]
struct InFlight {
    from: NodeId,
    to: NodeId,
    envelope: Envelope,
}

/// What a client was told about an order, and how far the answering mirror had applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acknowledged {
    status: OrderStatus,
    total_cents: u64,
    shard: u32,
    applied_index: u64,
}

/// Summary of a finished run.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    /// Orders acknowledged to clients.
    pub acknowledged: usize,
    /// Of which committed.
    pub committed: usize,
    /// Node crashes.
    pub crashes: u32,
    /// Messages delivered.
    pub delivered: u64,
    /// Leader elections seen (distinct (shard, term) leaders).
    pub leaders: usize,
}

/// The simulated cluster.
pub struct Sim {
    seed: u64,
    options: SimOptions,
    rng: Rng,
    now_ms: u64,
    nodes: Vec<SimNode>,
    network: Vec<InFlight>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    next_token: u64,
    requests: BTreeMap<u64, u128>,
    acknowledged: BTreeMap<u128, Acknowledged>,
    placed: Vec<u128>,
    leaders: BTreeMap<(u32, u64), NodeId>,
    digests: BTreeMap<(u32, u64), u64>,
    report: SimReport,
}

impl Sim {
    /// A cluster for `seed` with options drawn from it.
    pub fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let options = SimOptions::for_seed(&mut rng);
        Sim::with_options(seed, options)
    }

    /// A cluster with the given options, started, with its items created.
    pub fn with_options(seed: u64, options: SimOptions) -> Sim {
        let mut sim = Sim {
            seed,
            rng: Rng::new(seed ^ 0x5eed),
            now_ms: 1_000,
            nodes: (1..=options.nodes).map(SimNode::new).collect(),
            network: Vec::new(),
            blocked: BTreeSet::new(),
            next_token: 1,
            requests: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            placed: Vec::new(),
            leaders: BTreeMap::new(),
            digests: BTreeMap::new(),
            report: SimReport::default(),
            options,
        };
        for position in 0..sim.nodes.len() {
            sim.start(position);
        }
        sim.create_items();
        sim
    }

    fn raft_config(&mut self, node: NodeId) -> impl Fn(u32) -> RaftConfig {
        let voters: Vec<NodeId> = (1..=self.options.nodes).collect();
        let seed = self.rng.next_u64();
        move |shard| {
            let mut config =
                RaftConfig::with_defaults(node, voters.clone(), seed ^ u64::from(shard));
            config.heartbeat_ticks = 1;
            config.election_ticks_min = 8;
            config.election_ticks_max = 16;
            config
        }
    }

    fn start(&mut self, position: usize) {
        let id = self.nodes[position].id;
        let config = self.raft_config(id);
        self.nodes[position].recover(self.options.shards, config);
        for shard in 0..self.options.shards {
            self.drive(position, shard);
        }
    }

    /// Creates the items through the primaries, healing nothing: runs until all exist.
    fn create_items(&mut self) {
        for _ in 0..2_000 {
            let missing: Vec<u64> = (0..self.options.skus)
                .filter(|sku| !self.item_everywhere(*sku))
                .collect();
            if missing.is_empty() {
                return;
            }
            for sku in missing {
                let put = PutItem {
                    sku,
                    available: self.options.stock_per_sku,
                    price_cents: 100 + sku,
                    expected_version: Some(0),
                };
                let shard = shard_of_sku(sku, self.options.shards);
                self.submit(shard, &Operation::PutItem(put), None);
            }
            self.heal_round();
        }
        panic!("seed {}: items could not be created", self.seed);
    }

    fn item_everywhere(&self, sku: u64) -> bool {
        let shard = shard_of_sku(sku, self.options.shards);
        self.nodes.iter().all(|node| {
            node.mirrors
                .get(&shard)
                .is_some_and(|mirror| mirror.store().item(sku).is_some())
        })
    }

    /// Runs the faulty phase, then heals and runs to quiescence. Panics with the seed on
    /// the first broken invariant.
    pub fn run(mut self) -> SimReport {
        for step in 0..self.options.steps {
            self.step();
            self.check(&format!("step {step}"));
        }
        self.heal();
        self.check("after healing");
        self.check_quiescent();
        self.report.acknowledged = self.acknowledged.len();
        self.report.committed = self
            .acknowledged
            .values()
            .filter(|ack| ack.status == OrderStatus::Committed)
            .count();
        self.report.leaders = self.leaders.len();
        self.report
    }

    fn step(&mut self) {
        self.now_ms += 1 + self.rng.below(10);
        match self.rng.below(100) {
            0..=19 => self.place_new_order(),
            20..=23 => self.resend_old_order(),
            24..=26 => self.cancel_old_order(),
            27..=46 => {
                let position = self.rng.below(self.nodes.len() as u64) as usize;
                self.sync(position);
            }
            47..=79 => {
                for _ in 0..1 + self.rng.below(4) {
                    self.deliver_one();
                }
            }
            _ => self.tick_all(),
        }
        self.maybe_fault();
    }

    fn maybe_fault(&mut self) {
        if self.rng.below(1000) < self.options.crash_per_mille {
            let position = self.rng.below(self.nodes.len() as u64) as usize;
            if self.nodes[position].up {
                self.report.crashes += 1;
                self.nodes[position].crash();
                let id = self.nodes[position].id;
                self.network
                    .retain(|message| message.to != id && message.from != id);
            }
        }
        if let Some(position) = self.nodes.iter().position(|node| !node.up) {
            if self.rng.chance(20) {
                self.start(position);
            }
        }
        if self.rng.chance(self.options.partition_percent) {
            self.repartition();
        }
        if self.rng.chance(self.options.snapshot_percent) {
            let position = self.rng.below(self.nodes.len() as u64) as usize;
            let shard = self.rng.below(u64::from(self.options.shards)) as u32;
            if self.nodes[position].up {
                self.nodes[position].snapshot_and_compact(shard);
            }
        }
    }

    fn repartition(&mut self) {
        self.blocked.clear();
        match self.rng.below(3) {
            0 => {} // healed
            1 => {
                // Isolate one node both ways.
                let lonely = 1 + self.rng.below(self.options.nodes);
                for other in 1..=self.options.nodes {
                    if other != lonely {
                        self.blocked.insert((lonely, other));
                        self.blocked.insert((other, lonely));
                    }
                }
            }
            _ => {
                // One-way cut.
                let from = 1 + self.rng.below(self.options.nodes);
                let to = 1 + self.rng.below(self.options.nodes);
                if from != to {
                    self.blocked.insert((from, to));
                }
            }
        }
    }

    fn place_new_order(&mut self) {
        let line_count = 1 + self.rng.below(3);
        let mut lines: Vec<OrderLine> = Vec::new();
        while lines.len() < line_count as usize {
            let sku = self.rng.below(self.options.skus);
            if lines.iter().all(|line| line.sku != sku) {
                lines.push(OrderLine {
                    sku,
                    quantity: 1 + self.rng.below(3),
                });
            }
        }
        let order_id =
            (u128::from(self.rng.next_u64()) << 64 | u128::from(self.rng.next_u64())) | 1;
        self.placed.push(order_id);
        let place = PlaceOrder {
            order_id,
            customer: 1,
            lines,
            payment: Payment::None,
        };
        let shard = shard_of_order(order_id, self.options.shards);
        self.submit(shard, &Operation::PlaceOrder(place), Some(order_id));
    }

    fn resend_old_order(&mut self) {
        if self.placed.is_empty() {
            return;
        }
        let order_id = self.placed[self.rng.below(self.placed.len() as u64) as usize];
        let lines = vec![OrderLine {
            sku: 0,
            quantity: 1,
        }];
        let place = PlaceOrder {
            order_id,
            customer: 1,
            lines,
            payment: Payment::None,
        };
        let shard = shard_of_order(order_id, self.options.shards);
        self.submit(shard, &Operation::PlaceOrder(place), Some(order_id));
    }

    fn cancel_old_order(&mut self) {
        let committed: Vec<u128> = self
            .acknowledged
            .iter()
            .filter(|(_, ack)| ack.status == OrderStatus::Committed)
            .map(|(order_id, _)| *order_id)
            .collect();
        if committed.is_empty() {
            return;
        }
        let order_id = committed[self.rng.below(committed.len() as u64) as usize];
        let shard = shard_of_order(order_id, self.options.shards);
        self.submit(
            shard,
            &Operation::CancelOrder {
                order_id,
                expected_version: None,
            },
            Some(order_id),
        );
    }

    /// A client sends to the node it believes leads `shard` (or any node); a refusal is
    /// dropped (the client would retry with the same id later).
    fn submit(&mut self, shard: u32, operation: &Operation, order_id: Option<u128>) {
        let position = match self.leader_position(shard) {
            Some(position) if !self.rng.chance(10) => position,
            _ => self.rng.below(self.nodes.len() as u64) as usize,
        };
        let Some(mirror) = self.nodes[position].mirrors.get_mut(&shard) else {
            return;
        };
        let token = self.next_token;
        self.next_token += 1;
        let payload = encode_operation(operation).expect("operations encode");
        if mirror
            .propose_operation(payload, self.now_ms, token)
            .is_ok()
        {
            if let Some(order_id) = order_id {
                self.requests.insert(token, order_id);
            }
        }
        self.drive(position, shard);
    }

    fn leader_position(&self, shard: u32) -> Option<usize> {
        self.nodes
            .iter()
            .position(|node| node.mirrors.get(&shard).is_some_and(Shard::is_leader))
    }

    fn drive(&mut self, position: usize, shard: u32) {
        let Some(mirror) = self.nodes[position].mirrors.get_mut(&shard) else {
            return;
        };
        let outputs = mirror.advance(self.now_ms);
        self.handle(position, shard, outputs);
    }

    fn handle(&mut self, position: usize, shard: u32, outputs: Vec<Output<u64>>) {
        let from = self.nodes[position].id;
        for output in outputs {
            match output {
                Output::Reply(token, reply) => self.acknowledge(position, shard, token, reply),
                Output::Send(to, message) => self.network.push(InFlight {
                    from,
                    to,
                    envelope: Envelope::Raft { shard, message },
                }),
                Output::Persist(request) => self.nodes[position].persist(shard, request),
                Output::ToParticipant(request) => self.route(
                    position,
                    request.participant,
                    Envelope::ToParticipant(request),
                ),
                Output::ToCoordinator { coordinator, reply } => self.route(
                    position,
                    coordinator,
                    Envelope::ToCoordinator { coordinator, reply },
                ),
            }
        }
    }

    /// Two-phase-commit traffic goes to the primary of `shard` as this node sees it.
    fn route(&mut self, position: usize, shard: u32, envelope: Envelope) {
        let from = self.nodes[position].id;
        let leader = self.nodes[position]
            .mirrors
            .get(&shard)
            .and_then(|mirror| mirror.leader());
        match leader {
            Some(leader) if leader == from => self.receive(position, from, envelope),
            Some(leader) => self.network.push(InFlight {
                from,
                to: leader,
                envelope,
            }),
            None => {}
        }
    }

    fn receive(&mut self, position: usize, from: NodeId, envelope: Envelope) {
        let now = self.now_ms;
        match envelope {
            Envelope::Raft { shard, message } => {
                let Some(mirror) = self.nodes[position].mirrors.get_mut(&shard) else {
                    return;
                };
                mirror.step(from, message);
                self.drive(position, shard);
            }
            Envelope::ToParticipant(request) => {
                let shard = request.participant;
                let Some(mirror) = self.nodes[position].mirrors.get_mut(&shard) else {
                    return;
                };
                let outputs = mirror.on_participant_request(request, now);
                self.handle(position, shard, outputs);
                self.drive(position, shard);
            }
            Envelope::ToCoordinator { coordinator, reply } => {
                let Some(mirror) = self.nodes[position].mirrors.get_mut(&coordinator) else {
                    return;
                };
                mirror.on_participant_reply(reply, now);
                self.drive(position, coordinator);
            }
        }
    }

    fn acknowledge(&mut self, position: usize, shard: u32, token: u64, reply: Reply) {
        let Some(order_id) = self.requests.remove(&token) else {
            return;
        };
        let order = match reply {
            Reply::Order(order) => order,
            // Refused after proposing (leadership lost): the outcome is unknown to the client.
            Reply::Error(_) => return,
            other => panic!("seed {}: order request answered with {other:?}", self.seed),
        };
        assert_eq!(
            order.order_id, order_id,
            "seed {}: answer for another order",
            self.seed
        );
        let applied_index = self.nodes[position]
            .mirrors
            .get(&shard)
            .map_or(0, |mirror| mirror.store().applied_index());
        let ack = Acknowledged {
            status: order.status,
            total_cents: order.total_cents,
            shard,
            applied_index,
        };
        if let Some(first) = self.acknowledged.get(&order_id) {
            // Idempotency: a resend gets the first outcome; only a cancel changes it.
            let same = (first.status, first.total_cents) == (ack.status, ack.total_cents)
                || (ack.status == OrderStatus::Cancelled && first.status == OrderStatus::Committed);
            assert!(
                same,
                "seed {}: order {order_id:#x} was {first:?}, now {ack:?}",
                self.seed
            );
        }
        self.acknowledged.insert(order_id, ack);
    }

    fn sync(&mut self, position: usize) {
        if !self.nodes[position].up {
            return;
        }
        for (shard, sequence) in self.nodes[position].sync() {
            let Some(mirror) = self.nodes[position].mirrors.get_mut(&shard) else {
                continue;
            };
            let outputs = mirror.persisted(sequence);
            self.handle(position, shard, outputs);
            self.drive(position, shard);
        }
    }

    fn deliver_one(&mut self) {
        if self.network.is_empty() {
            return;
        }
        let at = self.rng.below(self.network.len() as u64) as usize;
        let message = self.network.swap_remove(at);
        if self.rng.chance(self.options.drop_percent)
            || self.blocked.contains(&(message.from, message.to))
        {
            return;
        }
        if self.rng.chance(self.options.duplicate_percent) {
            self.network.push(message.clone());
        }
        self.deliver(message);
    }

    fn deliver(&mut self, message: InFlight) {
        let Some(position) = self
            .nodes
            .iter()
            .position(|node| node.id == message.to && node.up)
        else {
            return;
        };
        self.report.delivered += 1;
        self.receive(position, message.from, message.envelope);
    }

    fn tick_all(&mut self) {
        self.now_ms += 100;
        for position in 0..self.nodes.len() {
            if !self.nodes[position].up {
                continue;
            }
            for shard in 0..self.options.shards {
                let Some(mirror) = self.nodes[position].mirrors.get_mut(&shard) else {
                    continue;
                };
                let outputs = mirror.tick(self.now_ms);
                self.handle(position, shard, outputs);
                self.drive(position, shard);
            }
        }
    }

    /// One round with no faults: every node syncs, every message is delivered, time moves.
    fn heal_round(&mut self) {
        for position in 0..self.nodes.len() {
            self.sync(position);
        }
        let mut budget = 100_000;
        while let Some(message) = self.network.pop() {
            self.deliver(message);
            budget -= 1;
            assert!(budget > 0, "seed {}: message storm", self.seed);
        }
        self.tick_all();
    }

    /// Ends every fault, restarts every node, and runs until every group has a primary,
    /// every mirror agrees and no transaction is open.
    fn heal(&mut self) {
        self.blocked.clear();
        for position in 0..self.nodes.len() {
            if !self.nodes[position].up {
                self.start(position);
            }
        }
        for _ in 0..3_000 {
            self.heal_round();
            if self.converged() {
                return;
            }
        }
        panic!(
            "seed {}: the cluster did not converge after healing (liveness): {}",
            self.seed,
            self.describe()
        );
    }

    fn converged(&self) -> bool {
        (0..self.options.shards).all(|shard| {
            let Some(leader) = self.leader_position(shard) else {
                return false;
            };
            let leader_store = self.nodes[leader].mirrors[&shard].store();
            let open = leader_store.open_transactions().count();
            open == 0
                && self.nodes.iter().all(|node| {
                    let mirror = &node.mirrors[&shard];
                    mirror.store().applied_index() == leader_store.applied_index()
                        && mirror.raft().commit_index()
                            == self.nodes[leader].mirrors[&shard].raft().commit_index()
                        && mirror.store().digest() == leader_store.digest()
                        && mirror.waiting_count() == 0
                })
        })
    }

    fn describe(&self) -> String {
        let mut text = String::new();
        for shard in 0..self.options.shards {
            for node in &self.nodes {
                if let Some(mirror) = node.mirrors.get(&shard) {
                    text.push_str(&format!(
                        "[shard {shard} node {} {:?} term {} commit {} applied {} open {}] ",
                        node.id,
                        mirror.raft().role(),
                        mirror.raft().term(),
                        mirror.raft().commit_index(),
                        mirror.store().applied_index(),
                        mirror.store().open_transactions().count()
                    ));
                }
            }
        }
        text
    }
}
