//! Deterministic simulation of one node's shards (the real `shard`, `store`, `txn` and
//! `raft` code) under crashes, lost and reordered cross-shard messages, from one seed.
//!
//! The simulator plays the shell: it proposes, "persists" entries on a simulated disk in
//! random order across shards, delivers cross-shard messages in random order (dropping
//! some), ticks, and crashes the whole node at random points — losing every entry not yet
//! persisted, every message in flight and all volatile state — then recovers each shard by
//! replaying its durable log, exactly as the daemon does. After every step it checks the
//! invariants of DESIGN.md §9 that apply to one node; at the end it heals everything,
//! runs to quiescence and checks that every transaction finished atomically.

mod check;

use crate::rng::Rng;
use quorder_daemon::entry::{encode_command, EntryKind};
use quorder_daemon::raft::EntryId;
use quorder_daemon::shard::{Output, Shard};
use quorder_daemon::store::Store;
use quorder_daemon::txn::message::{ParticipantReply, ParticipantRequest};
use quorder_proto::codec::encode_operation;
use quorder_proto::shard::shard_of_order;
use quorder_proto::{Operation, OrderLine, OrderStatus, Payment, PlaceOrder, PutItem, Reply};
use rkyv::util::AlignedVec;
use std::collections::BTreeMap;

/// Sizes and fault rates of a run.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Shards of the node.
    pub shards: u32,
    /// Items created at the start.
    pub skus: u64,
    /// Units of each item.
    pub stock_per_sku: u64,
    /// Steps of the faulty phase.
    pub steps: u32,
    /// Percent chance per step that the node crashes.
    pub crash_percent: u64,
    /// Percent chance that a delivered cross-shard message is lost instead.
    pub drop_percent: u64,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            shards: 4,
            skus: 12,
            stock_per_sku: 6,
            steps: 400,
            crash_percent: 2,
            drop_percent: 5,
        }
    }
}

/// A durable (or about to be) log entry.
#[derive(Debug, Clone)]
struct Entry {
    id: EntryId,
    timestamp_ms: u64,
    kind: EntryKind,
    payload: AlignedVec,
}

/// A cross-shard message in flight.
#[derive(Debug, Clone)]
enum Message {
    ToParticipant(ParticipantRequest),
    ToCoordinator(u32, ParticipantReply),
}

/// What a client was told about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acknowledged {
    status: OrderStatus,
    total_cents: u64,
}

/// Summary of a finished run.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    /// Orders acknowledged to clients.
    pub acknowledged: usize,
    /// Of which committed.
    pub committed: usize,
    /// Crashes survived.
    pub crashes: u32,
    /// Cross-shard messages delivered.
    pub delivered: u64,
}

/// The simulated node.
pub struct Sim {
    seed: u64,
    options: SimOptions,
    rng: Rng,
    now_ms: u64,
    shards: Vec<Shard<u64>>,
    durable: Vec<Vec<Entry>>,
    appended: Vec<Vec<Entry>>,
    network: Vec<Message>,
    next_token: u64,
    /// Client request token → order id, for place and cancel requests in flight.
    requests: BTreeMap<u64, u128>,
    acknowledged: BTreeMap<u128, Acknowledged>,
    placed: Vec<u128>,
    report: SimReport,
}

impl Sim {
    /// A node with `options.skus` items, all created and durable.
    pub fn new(seed: u64, options: SimOptions) -> Sim {
        let shard_count = options.shards;
        let mut sim = Sim {
            seed,
            rng: Rng::new(seed),
            now_ms: 1_000,
            shards: Vec::new(),
            durable: vec![Vec::new(); shard_count as usize],
            appended: vec![Vec::new(); shard_count as usize],
            network: Vec::new(),
            next_token: 1,
            requests: BTreeMap::new(),
            acknowledged: BTreeMap::new(),
            placed: Vec::new(),
            report: SimReport::default(),
            options,
        };
        sim.recover();
        for sku in 0..sim.options.skus {
            let put = PutItem {
                sku,
                available: sim.options.stock_per_sku,
                price_cents: 100 + sku,
                expected_version: None,
            };
            let shard = quorder_proto::shard::shard_of_sku(sku, shard_count);
            sim.propose_operation(shard, &Operation::PutItem(put));
        }
        for shard in 0..shard_count {
            sim.persist(shard);
        }
        sim
    }

    /// Runs the faulty phase, then heals and runs to quiescence. Panics with the seed on
    /// the first broken invariant.
    pub fn run(mut self) -> SimReport {
        for step in 0..self.options.steps {
            self.step();
            self.check(&format!("step {step}"));
        }
        self.quiesce();
        self.check("quiescence");
        self.check_quiescent();
        self.report.acknowledged = self.acknowledged.len();
        self.report.committed = self
            .acknowledged
            .values()
            .filter(|ack| ack.status == OrderStatus::Committed)
            .count();
        self.report
    }

    fn step(&mut self) {
        self.now_ms += 1 + self.rng.below(20);
        match self.rng.below(100) {
            0..=24 => self.place_new_order(),
            25..=29 => self.resend_old_order(),
            30..=33 => self.cancel_old_order(),
            34..=59 => {
                let shard = self.rng.below(u64::from(self.options.shards)) as u32;
                self.persist(shard);
            }
            60..=89 => self.deliver_one(),
            _ => self.tick(),
        }
        if self.rng.chance(self.options.crash_percent) {
            self.crash();
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
        let order_id = u128::from(self.rng.next_u64()) << 64 | u128::from(self.rng.next_u64()) | 1;
        self.placed.push(order_id);
        let place = PlaceOrder {
            order_id,
            customer: 1,
            lines,
            payment: Payment::None,
        };
        let shard = shard_of_order(order_id, self.options.shards);
        let token = self.propose_operation(shard, &Operation::PlaceOrder(place));
        self.requests.insert(token, order_id);
    }

    fn resend_old_order(&mut self) {
        if self.placed.is_empty() {
            return;
        }
        let order_id = self.placed[self.rng.below(self.placed.len() as u64) as usize];
        // The lines of a resend do not matter: the id alone decides the outcome.
        let place = PlaceOrder {
            order_id,
            customer: 1,
            lines: vec![OrderLine {
                sku: 0,
                quantity: 1,
            }],
            payment: Payment::None,
        };
        let shard = shard_of_order(order_id, self.options.shards);
        let token = self.propose_operation(shard, &Operation::PlaceOrder(place));
        self.requests.insert(token, order_id);
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
        let token = self.propose_operation(
            shard,
            &Operation::CancelOrder {
                order_id,
                expected_version: None,
            },
        );
        self.requests.insert(token, order_id);
    }

    fn propose_operation(&mut self, shard: u32, operation: &Operation) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        let payload = encode_operation(operation).expect("operations encode");
        self.propose(shard, EntryKind::Operation, payload, Some(token));
        token
    }

    fn propose(&mut self, shard: u32, kind: EntryKind, payload: AlignedVec, sink: Option<u64>) {
        let state = &mut self.shards[shard as usize];
        let id = state
            .next_entry()
            .expect("a single-member group always leads");
        let entry = Entry {
            id,
            timestamp_ms: self.now_ms,
            kind,
            payload: payload.clone(),
        };
        self.appended[shard as usize].push(entry);
        state.push(id, self.now_ms, kind, payload, sink);
    }

    /// The WAL of `shard` syncs: its appended entries become durable, then commit.
    fn persist(&mut self, shard: u32) {
        let appended = std::mem::take(&mut self.appended[shard as usize]);
        let Some(last) = appended.last().map(|entry| entry.id.index) else {
            return;
        };
        self.durable[shard as usize].extend(appended);
        let outputs = self.shards[shard as usize].persisted(last, self.now_ms);
        self.handle(shard, outputs);
    }

    fn handle(&mut self, shard: u32, outputs: Vec<Output<u64>>) {
        for output in outputs {
            match output {
                Output::Reply(token, reply) => self.acknowledge(token, reply),
                Output::ToParticipant(request) => {
                    self.network.push(Message::ToParticipant(request))
                }
                Output::ToCoordinator { coordinator, reply } => self
                    .network
                    .push(Message::ToCoordinator(coordinator, reply)),
                Output::Propose(command) => {
                    self.propose(shard, EntryKind::Command, encode_command(&command), None)
                }
            }
        }
    }

    fn acknowledge(&mut self, token: u64, reply: Reply) {
        let Some(order_id) = self.requests.remove(&token) else {
            return;
        };
        let Reply::Order(order) = reply else {
            panic!("seed {}: order request answered with {reply:?}", self.seed);
        };
        assert_eq!(
            order.order_id, order_id,
            "seed {}: answer for another order",
            self.seed
        );
        let ack = Acknowledged {
            status: order.status,
            total_cents: order.total_cents,
        };
        if let Some(first) = self.acknowledged.get(&order_id) {
            // Idempotency: a resend gets the first outcome; only a cancel changes it.
            let same = *first == ack
                || (ack.status == OrderStatus::Cancelled && first.status == OrderStatus::Committed);
            assert!(
                same,
                "seed {}: order {order_id:#x} was {first:?}, now {ack:?}",
                self.seed
            );
        }
        self.acknowledged.insert(order_id, ack);
    }

    fn deliver_one(&mut self) {
        if self.network.is_empty() {
            return;
        }
        let message = self
            .network
            .swap_remove(self.rng.below(self.network.len() as u64) as usize);
        if self.rng.chance(self.options.drop_percent) {
            return;
        }
        self.deliver(message);
    }

    fn deliver(&mut self, message: Message) {
        self.report.delivered += 1;
        match message {
            Message::ToParticipant(request) => {
                let shard = request.participant;
                let output = self.shards[shard as usize].on_participant_request(request);
                self.handle(shard, vec![output]);
            }
            Message::ToCoordinator(coordinator, reply) => {
                let output =
                    self.shards[coordinator as usize].on_participant_reply(reply, self.now_ms);
                self.handle(coordinator, output.into_iter().collect());
            }
        }
    }

    fn tick(&mut self) {
        self.now_ms += 600; // past the re-send interval
        for shard in 0..self.options.shards {
            let outputs = self.shards[shard as usize].tick(self.now_ms);
            self.handle(shard, outputs);
        }
    }

    /// The process dies: unsynced entries, messages and volatile state are gone.
    fn crash(&mut self) {
        self.report.crashes += 1;
        for appended in &mut self.appended {
            appended.clear();
        }
        self.network.clear();
        self.requests.clear();
        self.recover();
    }

    /// Rebuilds every shard from its durable log, as the daemon's recovery does.
    fn recover(&mut self) {
        self.shards = (0..self.options.shards)
            .map(|shard| {
                let mut store = Store::new(shard, self.options.shards);
                let mut last = EntryId { term: 0, index: 0 };
                for entry in &self.durable[shard as usize] {
                    store.apply(
                        entry.id.term,
                        entry.id.index,
                        entry.timestamp_ms,
                        entry.kind,
                        &entry.payload,
                    );
                    last = entry.id;
                }
                Shard::new(store, last, 500)
            })
            .collect();
    }

    /// Heals: no more faults; everything is delivered, persisted and ticked until no
    /// transaction is open.
    fn quiesce(&mut self) {
        for round in 0..10_000 {
            for shard in 0..self.options.shards {
                self.persist(shard);
            }
            while let Some(message) = self.network.pop() {
                self.deliver(message);
            }
            let open: usize = self
                .shards
                .iter()
                .map(|shard| shard.store().open_transactions().count())
                .sum();
            let unapplied: usize = self
                .shards
                .iter()
                .map(|shard| shard.unapplied_count())
                .sum();
            if open == 0 && unapplied == 0 && self.network.is_empty() {
                return;
            }
            if round % 3 == 2 {
                self.tick();
            }
        }
        let stuck: Vec<String> = self
            .shards
            .iter()
            .flat_map(|shard| shard.store().open_transactions())
            .map(|record| {
                let states: Vec<String> = record
                    .txn
                    .iter()
                    .flat_map(|txn| txn.participants.iter())
                    .map(|participant| {
                        let store = self.shards[*participant as usize].store();
                        format!(
                            "{participant}: {:?}",
                            store.participation(record.order.order_id).map(|p| &p.state)
                        )
                    })
                    .collect();
                format!(
                    "{:#x} {:?} {:?} [{}]",
                    record.order.order_id,
                    record.order.status,
                    record.txn.as_ref().map(|txn| txn.phase),
                    states.join(", ")
                )
            })
            .collect();
        panic!(
            "seed {}: transactions still open after healing (liveness): {stuck:?}",
            self.seed
        );
    }
}
