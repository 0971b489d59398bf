//! A seeded random driver over four shards: items, restocks, single- and cross-shard
//! orders, resends, cancels, abandoned transactions, and two-phase-commit messages
//! delivered late, twice or never (then re-driven). After every step each shard's
//! incremental digest equals a recomputation; at the end each shard's log, replayed into
//! a fresh store — straight, and through a snapshot taken part way — gives the same state
//! and the same digest (invariant 7).

use super::*;
use crate::txn::message::ParticipantReply;
use quorder_proto::shard::shard_of_order;
use std::collections::BTreeMap;

const SEEDS: u64 = 24;
const STEPS: u32 = 600;
const SKUS_PER_SHARD: usize = 4;

#[derive(Clone)]
enum Message {
    Request(ParticipantRequest),
    Reply(u32, ParticipantReply),
}

/// What the runs reached, over all seeds: the test fails if a kind of change never
/// happened, so it cannot pass by exercising nothing.
#[derive(Debug, Default)]
struct Coverage {
    single_shard_commits: usize,
    cross_shard_commits: usize,
    aborts: usize,
    releases: usize,
    completions: usize,
    fences: usize,
}

struct Cluster {
    seed: u64,
    rng: TestRng,
    shards: Vec<Harness>,
    network: Vec<Message>,
    placed: Vec<u128>,
    /// Replies a coordinator collected per order in the order's current phase.
    replies: BTreeMap<u128, (TxnPhase, BTreeMap<u32, ParticipantState>)>,
}

impl Cluster {
    fn new(seed: u64) -> Cluster {
        let mut cluster = Cluster {
            seed,
            rng: TestRng(seed),
            shards: (0..SHARDS).map(Harness::new).collect(),
            network: Vec::new(),
            placed: Vec::new(),
            replies: BTreeMap::new(),
        };
        for shard in 0..SHARDS {
            for nth in 0..SKUS_PER_SHARD {
                cluster.shards[shard as usize].put(sku_on(shard, nth), 10);
            }
        }
        cluster
    }

    fn run(&mut self) {
        for step in 0..STEPS {
            match self.rng.below(100) {
                0..=7 => self.put_item(),
                8..=13 => self.restock(),
                14..=37 => self.place_order(),
                38..=41 => self.resend(),
                42..=71 => self.deliver(),
                72..=78 => self.cancel(),
                79..=83 => self.abandon(),
                84..=94 => self.redrive(),
                _ => {
                    let shard = self.random_shard();
                    self.shards[shard].apply_entry(EntryKind::Noop, AlignedVec::new());
                }
            }
            for harness in &self.shards {
                let store = &harness.store;
                assert_eq!(
                    store.digest(),
                    store.recompute_digest(),
                    "seed {}, step {step}: incremental digest of shard {} drifted",
                    self.seed,
                    store.shard()
                );
            }
        }
    }

    fn random_shard(&mut self) -> usize {
        self.rng.below(u64::from(SHARDS)) as usize
    }

    /// A SKU of `shard`; now and then one that was never created.
    fn random_sku(&mut self, shard: usize) -> u64 {
        let nth = match self.rng.chance(5) {
            true => SKUS_PER_SHARD,
            false => self.rng.below(SKUS_PER_SHARD as u64) as usize,
        };
        sku_on(shard as u32, nth)
    }

    fn put_item(&mut self) {
        let shard = self.random_shard();
        let sku = self.random_sku(shard);
        let current = self.shards[shard]
            .store
            .item(sku)
            .map_or(0, |item| item.version);
        let expected_version = match self.rng.below(4) {
            0 => Some(current),
            1 => Some(current + 1),
            _ => None,
        };
        let put = PutItem {
            sku,
            available: self.rng.below(20),
            price_cents: 1 + self.rng.below(500),
            expected_version,
        };
        self.shards[shard].apply_operation(Operation::PutItem(put));
    }

    fn restock(&mut self) {
        let shard = self.random_shard();
        let sku = self.random_sku(shard);
        let quantity = 1 + self.rng.below(10);
        self.shards[shard].apply_operation(Operation::Restock { sku, quantity });
    }

    fn place_order(&mut self) {
        let mut lines: Vec<(u64, u64)> = Vec::new();
        for _ in 0..=self.rng.below(3) {
            let shard = self.random_shard();
            let sku = self.random_sku(shard);
            if lines.iter().all(|(other, _)| *other != sku) {
                lines.push((sku, 1 + self.rng.below(4)));
            }
        }
        let order_id = u128::from(self.rng.next_u64()) << 64 | u128::from(self.rng.next_u64());
        let mut operation = place(order_id, &lines);
        if let (Operation::PlaceOrder(place), true) = (&mut operation, self.rng.chance(5)) {
            place.payment = Payment::Card {
                token: "tok_visa".to_string(),
            };
        }
        self.placed.push(order_id);
        self.apply_at_coordinator(order_id, operation);
    }

    fn resend(&mut self) {
        if let Some(order_id) = self.random_placed() {
            // The lines of a resend do not matter: the id alone decides the outcome.
            self.apply_at_coordinator(order_id, place(order_id, &[(0, 1)]));
        }
    }

    fn cancel(&mut self) {
        if let Some(order_id) = self.random_placed() {
            let expected_version = self.rng.chance(30).then(|| 1 + self.rng.below(3));
            let cancel = Operation::CancelOrder {
                order_id,
                expected_version,
            };
            self.apply_at_coordinator(order_id, cancel);
        }
    }

    fn random_placed(&mut self) -> Option<u128> {
        let count = self.placed.len() as u64;
        (count > 0).then(|| self.placed[self.rng.below(count) as usize])
    }

    fn apply_at_coordinator(&mut self, order_id: u128, operation: Operation) {
        let coordinator = shard_of_order(order_id, SHARDS) as usize;
        let applied = self.shards[coordinator].apply_operation(operation);
        self.send(applied);
    }

    fn send(&mut self, applied: Applied) {
        for effect in applied.effects {
            match effect {
                Effect::ToParticipant(request) => self.network.push(Message::Request(request)),
                Effect::ToCoordinator { coordinator, reply } => {
                    self.network.push(Message::Reply(coordinator, reply))
                }
                Effect::OrderSettled { .. } => {}
            }
        }
    }

    /// Delivers a random message in flight; some are lost, some delivered twice.
    fn deliver(&mut self) {
        if self.network.is_empty() {
            return;
        }
        let position = self.rng.below(self.network.len() as u64) as usize;
        let message = self.network.swap_remove(position);
        if self.rng.chance(5) {
            return;
        }
        if self.rng.chance(10) {
            self.network.push(message.clone());
        }
        match message {
            Message::Request(request) => {
                let shard = request.participant as usize;
                let applied = self.shards[shard].apply_command(Command::Participant(request));
                self.send(applied);
            }
            Message::Reply(coordinator, reply) => self.on_reply(coordinator, reply),
        }
    }

    fn on_reply(&mut self, coordinator: u32, reply: ParticipantReply) {
        let store = &self.shards[coordinator as usize].store;
        let Some(record) = store.order_record(reply.order_id) else {
            return;
        };
        let Some(txn) = record.txn.clone() else {
            return;
        };
        let replies = self
            .replies
            .entry(reply.order_id)
            .or_insert_with(|| (txn.phase, BTreeMap::new()));
        if replies.0 != txn.phase {
            *replies = (txn.phase, BTreeMap::new());
        }
        replies.1.insert(reply.participant, reply.state);
        if let Some(command) = next_command(reply.order_id, &txn, &replies.1) {
            let applied = self.shards[coordinator as usize].apply_command(command);
            self.send(applied);
        }
    }

    /// A coordinator gives up on an open transaction (a timeout); when the transaction
    /// is past preparing, the decision is a duplicate and must change nothing.
    fn abandon(&mut self) {
        let shard = self.random_shard();
        let open: Vec<u128> = self.shards[shard]
            .store
            .open_transactions()
            .map(|record| record.order.order_id)
            .collect();
        if open.is_empty() {
            return;
        }
        let order_id = open[self.rng.below(open.len() as u64) as usize];
        let reason = RejectReason::PaymentDeclined {
            reason: "abandoned".to_string(),
        };
        let decision = Decision::Abort { reason };
        let applied = self.shards[shard].apply_command(Command::Decide { order_id, decision });
        self.send(applied);
    }

    /// A coordinator re-sends the requests of its open transactions (its tick).
    fn redrive(&mut self) {
        let shard = self.random_shard();
        let store = &self.shards[shard].store;
        let effects: Vec<Effect> = store
            .open_transactions()
            .flat_map(|record| store.requests_for(record))
            .collect();
        self.send(Applied {
            reply: None,
            effects,
        });
    }
}

/// The coordinator's next log entry once the replies of the current phase are in.
fn next_command(
    order_id: u128,
    txn: &CoordinatorTxn,
    replies: &BTreeMap<u32, ParticipantState>,
) -> Option<Command> {
    use ParticipantState as State;
    let all = |wanted: fn(&State) -> bool| {
        txn.participants
            .iter()
            .all(|participant| replies.get(participant).is_some_and(wanted))
    };
    let complete = |phase| Some(Command::Complete { order_id, phase });
    match txn.phase {
        TxnPhase::Preparing => {
            let refusal = replies.values().find_map(|state| match state {
                State::Refused { reason } => Some(reason.clone()),
                _ => None,
            });
            if let Some(reason) = refusal {
                let decision = Decision::Abort { reason };
                return Some(Command::Decide { order_id, decision });
            }
            if !all(|state| matches!(state, State::Prepared { .. })) {
                return None;
            }
            let prices = replies
                .values()
                .flat_map(|state| match state {
                    State::Prepared { prices } => prices.clone(),
                    _ => Vec::new(),
                })
                .collect();
            let decision = Decision::Commit { prices };
            Some(Command::Decide { order_id, decision })
        }
        TxnPhase::Committing
            if all(|state| matches!(state, State::Committed | State::Released)) =>
        {
            complete(TxnPhase::Committing)
        }
        TxnPhase::Aborting if all(|state| matches!(state, State::Aborted)) => {
            complete(TxnPhase::Aborting)
        }
        TxnPhase::Releasing if all(|state| matches!(state, State::Released)) => {
            complete(TxnPhase::Releasing)
        }
        _ => None,
    }
}

/// Replays each shard's log into fresh stores — straight, and through a snapshot taken
/// after a random prefix — and compares them with the live store.
fn check_replay(cluster: &mut Cluster) {
    let seed = cluster.seed;
    for harness in &cluster.shards {
        let shard = harness.store.shard();
        let cut = cluster.rng.below(harness.log.len() as u64 + 1) as usize;
        let mut straight = Store::new(shard, SHARDS);
        let mut restored = None;
        for (position, (kind, payload)) in harness.log.iter().enumerate() {
            if position == cut {
                let snapshot = straight.to_snapshot();
                let loaded = Store::from_snapshot(shard, &snapshot).expect("snapshot loads");
                assert_eq!(loaded.digest_at(), straight.digest_at(), "seed {seed}");
                restored = Some(loaded);
            }
            let index = position as u64 + 1;
            apply_logged(&mut straight, index, *kind, payload);
            if let Some(restored) = restored.as_mut() {
                apply_logged(restored, index, *kind, payload);
            }
        }
        let restored = match restored {
            Some(restored) => restored,
            None => Store::from_snapshot(shard, &straight.to_snapshot()).expect("loads"),
        };
        for replayed in [&straight, &restored] {
            assert_eq!(*replayed, harness.store, "seed {seed}, shard {shard}");
            assert_eq!(
                replayed.digest_at(),
                harness.store.digest_at(),
                "seed {seed}"
            );
        }
    }
}

fn count(cluster: &Cluster, coverage: &mut Coverage) {
    for harness in &cluster.shards {
        let store = &harness.store;
        for order_id in &cluster.placed {
            // A fence: an abort that reached the participant before its prepare.
            let fenced = store.participation(*order_id).is_some_and(|participation| {
                participation.lines.is_empty() && participation.state == ParticipantState::Aborted
            });
            coverage.fences += usize::from(fenced);
            let Some(record) = store.order_record(*order_id) else {
                continue;
            };
            let cross_shard = record.txn.is_some();
            match record.order.status {
                OrderStatus::Committed if !cross_shard => coverage.single_shard_commits += 1,
                OrderStatus::Committed => coverage.cross_shard_commits += 1,
                OrderStatus::Rejected if cross_shard => coverage.aborts += 1,
                OrderStatus::Cancelled if cross_shard => coverage.releases += 1,
                _ => {}
            }
            let phase = record.txn.as_ref().map(|txn| txn.phase);
            coverage.completions += usize::from(phase == Some(TxnPhase::Complete));
        }
    }
}

#[test]
fn incremental_digest_equals_recomputation_under_random_traffic() {
    let mut coverage = Coverage::default();
    for seed in 1..=SEEDS {
        let mut cluster = Cluster::new(seed);
        cluster.run();
        check_replay(&mut cluster);
        count(&cluster, &mut coverage);
    }
    let reached = [
        coverage.single_shard_commits,
        coverage.cross_shard_commits,
        coverage.aborts,
        coverage.releases,
        coverage.completions,
        coverage.fences,
    ];
    assert!(
        reached.iter().all(|count| *count > 0),
        "the driver missed a kind of change: {coverage:?}"
    );
}
