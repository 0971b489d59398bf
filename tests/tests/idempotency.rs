//! Idempotency of `PlaceOrder` (DESIGN.md §9 invariant 6): the order id is the idempotency
//! key, so sending the same order again — one after another, from many clients at once,
//! twice in one batch, with other lines or payment, after restocking, after a clean
//! restart and after kill -9 — answers the first outcome (status, reason, lines, total,
//! version, timestamps) and reserves or sells nothing twice.

use quorder_client::Client;
use quorder_proto::shard::shard_of_sku;
use quorder_proto::{
    Item, Operation, Order, OrderLine, OrderStatus, Payment, PlaceOrder, RejectReason, Reply,
};
use quorder_tests::process::{scratch_dir, Node};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const SHARDS: u32 = 8;
const CORES: u32 = 2;
const RESENDS: usize = 3;
const CONCURRENT_SENDERS: usize = 8;
/// Bounds a hang only: two-shard orders settle on participants just after the answer.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

const SKU_A: u64 = 1001;
const PRICE_A: u64 = 300;
const PRICE_B: u64 = 70;
const PRICE_SCARCE: u64 = 900;

/// The first SKU from `start` whose shard is none of `avoid`.
fn sku_off_shards(start: u64, avoid: &[u32]) -> u64 {
    (start..)
        .find(|sku| !avoid.contains(&shard_of_sku(*sku, SHARDS)))
        .expect("some SKU lands on another shard")
}

fn line(sku: u64, quantity: u64) -> OrderLine {
    OrderLine { sku, quantity }
}

fn request(order_id: u128, lines: Vec<OrderLine>) -> PlaceOrder {
    PlaceOrder {
        order_id,
        customer: 12,
        lines,
        payment: Payment::None,
    }
}

/// Every item, once no units are reserved any more (two-shard orders have settled).
fn settled_items(client: &mut Client, skus: &[u64]) -> Vec<Item> {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let items: Vec<Item> = skus
            .iter()
            .map(|sku| client.get_item(*sku).expect("read item"))
            .collect();
        if items.iter().all(|item| item.reserved == 0) {
            return items;
        }
        assert!(Instant::now() < deadline, "units still reserved: {items:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// The orders placed so far, each with its first answer, and the items they touch.
struct Ledger {
    skus: Vec<u64>,
    orders: Vec<(PlaceOrder, Order)>,
    items: Vec<Item>,
}

impl Ledger {
    /// Resends every order `RESENDS` times and reads it back: always the first answer;
    /// then checks that no item moved.
    fn check_resends(&self, client: &mut Client, after: &str) {
        for (placed, first) in &self.orders {
            for _ in 0..RESENDS {
                let again = client
                    .place_order(placed)
                    .unwrap_or_else(|error| panic!("resend {after}: {error}"));
                assert_eq!(&again, first, "resent order {after}");
            }
            let stored = client.get_order(first.order_id).expect("read order");
            assert_eq!(&stored, first, "stored order {after}");
        }
        self.check_items(client, after);
    }

    fn check_items(&self, client: &mut Client, after: &str) {
        let items = settled_items(client, &self.skus);
        assert_eq!(items, self.items, "items moved {after}");
    }
}

/// Sends the same `PlaceOrder`s from many clients at once; every sender must get the same
/// answer for each id. Returns the answers.
fn place_concurrently(node: &Node, orders: &[PlaceOrder]) -> Vec<Order> {
    let start = Arc::new(Barrier::new(CONCURRENT_SENDERS));
    let senders: Vec<_> = (0..CONCURRENT_SENDERS)
        .map(|sender| {
            let mut client = node.client();
            let start = Arc::clone(&start);
            let mut mine = orders.to_vec();
            // Different senders go through the ids in different orders.
            mine.rotate_left(sender % orders.len());
            thread::spawn(move || {
                start.wait();
                mine.iter()
                    .map(|order| client.place_order(order).expect("concurrent place"))
                    .collect::<Vec<Order>>()
            })
        })
        .collect();
    let mut answers: Vec<Vec<Order>> = senders
        .into_iter()
        .map(|sender| sender.join().expect("sender thread"))
        .collect();
    for (sender, answer) in answers.iter_mut().enumerate() {
        answer.rotate_right(sender % orders.len());
    }
    let first = answers[0].clone();
    for answer in &answers {
        assert_eq!(
            answer, &first,
            "senders of the same ids got different answers"
        );
    }
    for (order, answer) in orders.iter().zip(&first) {
        assert_eq!(answer.order_id, order.order_id);
    }
    first
}

#[test]
fn the_same_order_id_always_yields_the_first_outcome() {
    let mut node = Node::start(&scratch_dir("idempotency"), SHARDS, CORES);
    let shard_a = shard_of_sku(SKU_A, SHARDS);
    let sku_b = sku_off_shards(2001, &[shard_a]);
    let shard_b = shard_of_sku(sku_b, SHARDS);
    let scarce_sku = sku_off_shards(3001, &[shard_a, shard_b]);
    let third_sku = sku_off_shards(4001, &[shard_a, shard_b, shard_of_sku(scarce_sku, SHARDS)]);

    let mut client = node.client();
    client.put_item(SKU_A, 100, PRICE_A, None).expect("put A");
    client.put_item(sku_b, 100, PRICE_B, None).expect("put B");
    client
        .put_item(scarce_sku, 1, PRICE_SCARCE, None)
        .expect("put scarce");

    // First outcomes: one-shard and two-shard, committed and rejected.
    let first_requests = [
        request(client.new_order_id(SKU_A), vec![line(SKU_A, 2)]),
        request(
            client.new_order_id(sku_b),
            vec![line(SKU_A, 3), line(sku_b, 4)],
        ),
        request(client.new_order_id(scarce_sku), vec![line(scarce_sku, 5)]),
        request(
            client.new_order_id(sku_b),
            vec![line(sku_b, 1), line(scarce_sku, 5)],
        ),
    ];
    let mut orders = Vec::new();
    for placed in first_requests {
        let order = client.place_order(&placed).expect("first place");
        orders.push((placed, order));
    }
    let statuses: Vec<OrderStatus> = orders.iter().map(|(_, order)| order.status).collect();
    use OrderStatus::{Committed, Rejected};
    assert_eq!(statuses, [Committed, Committed, Rejected, Rejected]);
    assert_eq!(orders[0].1.total_cents, 2 * PRICE_A);
    assert_eq!(orders[1].1.total_cents, 3 * PRICE_A + 4 * PRICE_B);
    let short = Some(RejectReason::InsufficientStock {
        sku: scarce_sku,
        available: 1,
    });
    assert_eq!(orders[2].1.reason, short);
    assert_eq!(orders[3].1.reason, short);

    let skus = vec![SKU_A, sku_b, scarce_sku];
    let items = settled_items(&mut client, &skus);
    let counts: Vec<(u64, u64, u64)> = items
        .iter()
        .map(|item| (item.available, item.reserved, item.sold))
        .collect();
    assert_eq!(counts, [(95, 0, 5), (96, 0, 4), (1, 0, 0)], "{items:?}");
    let mut ledger = Ledger {
        skus,
        orders,
        items,
    };

    ledger.check_resends(&mut client, "one after another");

    // Other content under a known id: still the original order, nothing else happens.
    for (placed, first) in &ledger.orders {
        let other_lines = request(placed.order_id, vec![line(sku_b, 9), line(SKU_A, 1)]);
        let other_payer = PlaceOrder {
            customer: placed.customer + 1,
            payment: Payment::Card {
                token: "tok_other".to_string(),
            },
            ..placed.clone()
        };
        for changed in [other_lines, other_payer] {
            let again = client
                .place_order(&changed)
                .expect("resend with other content");
            assert_eq!(&again, first, "resend with other content: {changed:?}");
        }
    }
    ledger.check_items(&mut client, "after resends with other content");

    // Restocking does not turn a rejected order into a committed one.
    client.restock(scarce_sku, 100).expect("restock");
    ledger.items = settled_items(&mut client, &ledger.skus);
    ledger.check_resends(&mut client, "after restocking");

    // Many clients send the same new orders at once.
    let concurrent = [
        request(client.new_order_id(SKU_A), vec![line(SKU_A, 1)]),
        request(
            client.new_order_id(third_sku),
            vec![line(SKU_A, 1), line(sku_b, 1)],
        ),
        request(client.new_order_id(scarce_sku), vec![line(scarce_sku, 500)]),
    ];
    let answers = place_concurrently(&node, &concurrent);
    let statuses: Vec<OrderStatus> = answers.iter().map(|order| order.status).collect();
    assert_eq!(statuses, [Committed, Committed, Rejected]);
    assert_eq!(
        answers[2].reason,
        Some(RejectReason::InsufficientStock {
            sku: scarce_sku,
            available: 101
        })
    );
    let items = settled_items(&mut client, &ledger.skus);
    let sold: Vec<u64> = items.iter().map(|item| item.sold).collect();
    assert_eq!(
        sold,
        [7, 5, 0],
        "concurrent copies sold more than once: {items:?}"
    );
    ledger.items = items;
    ledger.orders.extend(concurrent.into_iter().zip(answers));
    ledger.check_resends(&mut client, "after concurrent sends");

    // The same ids twice in one batch: the copies run side by side inside the node.
    let doubled = [
        request(client.new_order_id(SKU_A), vec![line(SKU_A, 1)]),
        request(
            client.new_order_id(third_sku),
            vec![line(SKU_A, 1), line(sku_b, 1)],
        ),
    ];
    let operations: Vec<Operation> = doubled
        .iter()
        .flat_map(|order| [order.clone(), order.clone()])
        .map(Operation::PlaceOrder)
        .collect();
    let replies = client.execute_batch(&operations).expect("batch");
    let answers: Vec<Order> = replies
        .into_iter()
        .map(|reply| match reply {
            Reply::Order(order) => order,
            other => panic!("batch copy answered {other:?}"),
        })
        .collect();
    assert_eq!(answers[0], answers[1], "copies in one batch");
    assert_eq!(answers[2], answers[3], "copies in one batch");
    assert_eq!(answers[0].status, Committed);
    assert_eq!(answers[2].status, Committed);
    let items = settled_items(&mut client, &ledger.skus);
    let sold: Vec<u64> = items.iter().map(|item| item.sold).collect();
    assert_eq!(
        sold,
        [9, 6, 0],
        "batched copies sold more than once: {items:?}"
    );
    ledger.items = items;
    ledger.orders.extend(
        doubled
            .into_iter()
            .zip([answers[0].clone(), answers[2].clone()]),
    );
    ledger.check_resends(&mut client, "after a batch of copies");

    // A clean restart: the outcomes come back from the WAL and snapshots.
    drop(client);
    let status = node.stop();
    assert!(status.success(), "quorderd did not stop cleanly: {status}");
    node.restart();
    let mut client = node.client();
    ledger.check_resends(&mut client, "after a clean restart");

    // kill -9: every answered order was durable before its answer.
    drop(client);
    node.kill();
    node.restart();
    let mut client = node.client();
    ledger.check_resends(&mut client, "after kill -9");
}
