//! No oversell under contention (DESIGN.md §9 invariants 3 and 4): many clients race for
//! the last units of one item, with single-shard orders and two-shard orders that also
//! take a well-stocked item. Exactly the stock is sold, every other order is rejected for
//! that item, and a two-shard order sells both of its lines or neither.

use quorder_client::Client;
use quorder_proto::shard::shard_of_sku;
use quorder_proto::{Item, Order, OrderLine, OrderStatus, Payment, PlaceOrder, RejectReason};
use quorder_tests::process::{scratch_dir, Node};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const SHARDS: u32 = 8;
const CORES: u32 = 2;
const SCARCE_SKU: u64 = 1001;
const SCARCE_STOCK: u64 = 25;
const SCARCE_PRICE_CENTS: u64 = 300;
const PLENTIFUL_STOCK: u64 = 10_000;
const PLENTIFUL_PRICE_CENTS: u64 = 70;
const PLENTIFUL_QUANTITY: u64 = 2;
const THREADS: usize = 8;
const ORDERS_PER_THREAD: usize = 10;
/// Generous: two-shard orders settle on their participants shortly after the client is
/// answered; this only bounds a hang.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The first SKU from `start` whose shard is none of `avoid`.
fn sku_off_shards(start: u64, avoid: &[u32]) -> u64 {
    (start..)
        .find(|sku| !avoid.contains(&shard_of_sku(*sku, SHARDS)))
        .expect("some SKU lands on another shard")
}

/// What one racing order asked for and got.
struct Attempt {
    cross_shard: bool,
    order: Order,
}

/// One racer: its own client, orders of one scarce unit; every third order also takes
/// plentiful units on another shard, coordinated in turn by the scarce item's shard, the
/// plentiful item's shard and a third shard.
fn race(
    node_client: Client,
    thread_index: usize,
    plentiful_sku: u64,
    third_sku: u64,
    start: &Barrier,
) -> Vec<Attempt> {
    let mut client = node_client;
    let mut attempts = Vec::with_capacity(ORDERS_PER_THREAD);
    start.wait();
    for number in 0..ORDERS_PER_THREAD {
        let scarce = OrderLine {
            sku: SCARCE_SKU,
            quantity: 1,
        };
        let cross_shard = (thread_index + number) % 3 == 1;
        let (order_id, lines) = if cross_shard {
            let plentiful = OrderLine {
                sku: plentiful_sku,
                quantity: PLENTIFUL_QUANTITY,
            };
            let coordinator_sku = [SCARCE_SKU, plentiful_sku, third_sku][number % 3];
            (
                client.new_order_id(coordinator_sku),
                vec![scarce, plentiful],
            )
        } else {
            (client.new_order_id(SCARCE_SKU), vec![scarce])
        };
        let order = client
            .place_order(&PlaceOrder {
                order_id,
                customer: thread_index as u64,
                lines,
                payment: Payment::None,
            })
            .unwrap_or_else(|error| panic!("order {order_id:#x} failed: {error}"));
        assert_eq!(order.order_id, order_id);
        attempts.push(Attempt { cross_shard, order });
    }
    attempts
}

/// Reads an item until no units are reserved (two-shard orders have settled everywhere).
fn settled_item(client: &mut Client, sku: u64) -> Item {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let item = client.get_item(sku).expect("read item");
        if item.reserved == 0 {
            return item;
        }
        assert!(
            Instant::now() < deadline,
            "units of sku {sku} still reserved: {item:?}"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn racing_orders_sell_exactly_the_stock() {
    let node = Node::start(&scratch_dir("no-oversell"), SHARDS, CORES);
    let scarce_shard = shard_of_sku(SCARCE_SKU, SHARDS);
    let plentiful_sku = sku_off_shards(2001, &[scarce_shard]);
    let plentiful_shard = shard_of_sku(plentiful_sku, SHARDS);
    let third_sku = sku_off_shards(3001, &[scarce_shard, plentiful_shard]);

    let mut client = node.client();
    client
        .put_item(SCARCE_SKU, SCARCE_STOCK, SCARCE_PRICE_CENTS, None)
        .expect("create scarce item");
    client
        .put_item(plentiful_sku, PLENTIFUL_STOCK, PLENTIFUL_PRICE_CENTS, None)
        .expect("create plentiful item");

    let start = Arc::new(Barrier::new(THREADS));
    let racers: Vec<_> = (0..THREADS)
        .map(|thread_index| {
            let racer_client = node.client();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                race(racer_client, thread_index, plentiful_sku, third_sku, &start)
            })
        })
        .collect();
    let attempts: Vec<Attempt> = racers
        .into_iter()
        .flat_map(|racer| racer.join().expect("racer thread"))
        .collect();
    assert_eq!(attempts.len(), THREADS * ORDERS_PER_THREAD);
    assert!(
        attempts.len() as u64 > SCARCE_STOCK,
        "test premise: more orders than stock"
    );

    let mut scarce_sold = 0;
    let mut cross_shard_committed = 0;
    let mut rejected = 0;
    for Attempt { cross_shard, order } in &attempts {
        match order.status {
            OrderStatus::Committed => {
                scarce_sold += 1;
                let mut expected_total = SCARCE_PRICE_CENTS;
                if *cross_shard {
                    cross_shard_committed += 1;
                    expected_total += PLENTIFUL_QUANTITY * PLENTIFUL_PRICE_CENTS;
                }
                assert_eq!(order.total_cents, expected_total, "{order:?}");
                assert_eq!(order.reason, None, "{order:?}");
            }
            OrderStatus::Rejected => {
                rejected += 1;
                assert_eq!(
                    order.reason,
                    Some(RejectReason::InsufficientStock {
                        sku: SCARCE_SKU,
                        available: 0
                    }),
                    "{order:?}"
                );
            }
            status => panic!("order settled as {status:?}: {order:?}"),
        }
        // The record reads back with the status the client was answered.
        let stored = client.get_order(order.order_id).expect("read order");
        assert_eq!(stored.status, order.status, "{stored:?}");
        assert_eq!(stored.reason, order.reason, "{stored:?}");
    }
    assert_eq!(
        scarce_sold, SCARCE_STOCK,
        "committed orders of the scarce item"
    );
    assert_eq!(rejected, attempts.len() as u64 - SCARCE_STOCK);
    assert!(
        attempts.iter().any(|attempt| attempt.cross_shard),
        "test premise: some two-shard orders raced"
    );

    let scarce = settled_item(&mut client, SCARCE_SKU);
    assert_eq!(
        (scarce.available, scarce.reserved, scarce.sold),
        (0, 0, SCARCE_STOCK),
        "{scarce:?}"
    );
    let plentiful = settled_item(&mut client, plentiful_sku);
    let plentiful_sold = cross_shard_committed * PLENTIFUL_QUANTITY;
    assert_eq!(
        (plentiful.available, plentiful.reserved, plentiful.sold),
        (PLENTIFUL_STOCK - plentiful_sold, 0, plentiful_sold),
        "{plentiful:?}"
    );
}
