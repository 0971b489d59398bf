//! Store apply: the deterministic state machine applying committed entries, the work a
//! shard's core does per order after the WAL sync. Measures a 1-line order committed in
//! one step, a rejected order, and a resend (idempotent lookup) on a shard that already
//! holds 100,000 orders.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use quorder_daemon::entry::EntryKind;
use quorder_daemon::store::Store;
use quorder_proto::codec::encode_operation;
use quorder_proto::shard::{colocated_order_id, shard_of_sku};
use quorder_proto::{Operation, OrderLine, Payment, PlaceOrder, PutItem};
use rkyv::util::AlignedVec;

const SHARDS: u32 = 8;
const SKUS: u64 = 1_000;
const PRELOADED_ORDERS: u64 = 100_000;

struct Shard {
    store: Store,
    skus: Vec<u64>,
    next_random: u128,
}

impl Shard {
    fn new() -> Shard {
        let skus: Vec<u64> = (0..SKUS * SHARDS as u64)
            .filter(|sku| shard_of_sku(*sku, SHARDS) == 0)
            .take(SKUS as usize)
            .collect();
        let mut shard = Shard {
            store: Store::new(0, SHARDS),
            skus,
            next_random: 1,
        };
        for sku in shard.skus.clone() {
            let put = PutItem {
                sku,
                available: 1_000_000_000,
                price_cents: 250,
                expected_version: None,
            };
            shard.apply(&payload(&Operation::PutItem(put)));
        }
        for _ in 0..PRELOADED_ORDERS {
            let order = shard.order(1);
            shard.apply(&order);
        }
        shard
    }

    fn apply(&mut self, payload: &AlignedVec) {
        let index = self.store.applied_index() + 1;
        let applied = self
            .store
            .apply(1, index, index, EntryKind::Operation, payload);
        assert!(applied.reply.is_some());
    }

    fn order(&mut self, quantity: u64) -> AlignedVec {
        let sku = self.skus[(self.next_random % self.skus.len() as u128) as usize];
        let order_id = colocated_order_id(sku, SHARDS, || {
            self.next_random = self
                .next_random
                .wrapping_mul(0x2545_f491_4f6c_dd1d_0000_0001)
                .wrapping_add(0x9e37_79b9);
            self.next_random
        });
        let place = PlaceOrder {
            order_id,
            customer: 7,
            lines: vec![OrderLine { sku, quantity }],
            payment: Payment::None,
        };
        payload(&Operation::PlaceOrder(place))
    }
}

fn payload(operation: &Operation) -> AlignedVec {
    encode_operation(operation).expect("encode")
}

/// Makes `iterations` orders (untimed), then times applying them.
fn apply_timed(shard: &mut Shard, iterations: u64, quantity: u64) -> std::time::Duration {
    let orders: Vec<AlignedVec> = (0..iterations).map(|_| shard.order(quantity)).collect();
    let started = std::time::Instant::now();
    for order in &orders {
        shard.apply(order);
    }
    started.elapsed()
}

fn bench_apply(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("store_apply");
    group.throughput(Throughput::Elements(1));
    let mut shard = Shard::new();
    group.bench_function("place_order_1_line_committed", |bencher| {
        bencher.iter_custom(|iterations| apply_timed(&mut shard, iterations, 1))
    });
    group.bench_function("place_order_rejected_insufficient_stock", |bencher| {
        bencher.iter_custom(|iterations| apply_timed(&mut shard, iterations, 2_000_000_000))
    });
    let resend = shard.order(1);
    shard.apply(&resend);
    group.bench_function("place_order_resend_idempotent", |bencher| {
        bencher.iter(|| shard.apply(&resend))
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
