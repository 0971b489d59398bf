//! kill -9 under concurrent load at many points: every acknowledged order survives, and
//! per SKU `available + reserved + sold` equals the stock put plus the restocks applied,
//! with `sold` equal to the units of the committed orders.

use quorder_client::{Client, ClientOptions};
use quorder_proto::limits::BATCH_OPERATIONS_MAX;
use quorder_proto::{
    ErrorReply, Operation, Order, OrderLine, OrderStatus, Payment, PlaceOrder, Reply,
};
use quorder_tests::process::{scratch_dir, Node};
use quorder_tests::rng::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SKUS: u64 = 40;
const INITIAL_STOCK: u64 = 300;
const KILL_POINTS: u64 = 20;
const WRITERS: u64 = 4;

/// What the writers learned: acknowledged outcomes and what is in doubt.
#[derive(Default)]
struct Ledger {
    acknowledged: BTreeMap<u128, OrderStatus>,
    in_doubt_orders: Vec<u128>,
    restocked: BTreeMap<u64, u64>,
    in_doubt_restocks: BTreeMap<u64, u64>,
}

fn client(node: &Node, timeout_ms: u64) -> Option<Client> {
    let options = ClientOptions {
        request_timeout: Duration::from_millis(timeout_ms),
        connect_timeout: Duration::from_millis(200),
    };
    Client::connect(std::slice::from_ref(&node.addr), options).ok()
}

fn write_until_stopped(addr: String, seed: u64, stop: Arc<AtomicBool>, ledger: Arc<Mutex<Ledger>>) {
    let options = ClientOptions {
        request_timeout: Duration::from_millis(800),
        connect_timeout: Duration::from_millis(200),
    };
    let Ok(mut client) = Client::connect(&[addr], options) else {
        return;
    };
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::SeqCst) {
        if rng.chance(10) {
            let sku = rng.below(SKUS);
            match client.restock(sku, 5) {
                Ok(_) => {
                    *ledger
                        .lock()
                        .expect("ledger")
                        .restocked
                        .entry(sku)
                        .or_default() += 5
                }
                Err(_) => {
                    *ledger
                        .lock()
                        .expect("ledger")
                        .in_doubt_restocks
                        .entry(sku)
                        .or_default() += 5
                }
            }
            continue;
        }
        let first = rng.below(SKUS);
        let mut lines = vec![OrderLine {
            sku: first,
            quantity: 1 + rng.below(2),
        }];
        if rng.chance(40) {
            let second = (first + 1 + rng.below(SKUS - 1)) % SKUS;
            lines.push(OrderLine {
                sku: second,
                quantity: 1 + rng.below(2),
            });
        }
        let order_id = client.new_order_id(first);
        let order = PlaceOrder {
            order_id,
            customer: seed,
            lines,
            payment: Payment::None,
        };
        match client.place_order(&order) {
            Ok(placed) => {
                ledger
                    .lock()
                    .expect("ledger")
                    .acknowledged
                    .insert(order_id, placed.status);
            }
            Err(_) => ledger
                .lock()
                .expect("ledger")
                .in_doubt_orders
                .push(order_id),
        }
    }
}

/// Reads orders in batches; waits for preparing ones to settle. Absent orders are left out.
fn read_settled(client: &mut Client, order_ids: &[u128]) -> BTreeMap<u128, Order> {
    let mut settled = BTreeMap::new();
    let mut pending: Vec<u128> = order_ids.to_vec();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !pending.is_empty() {
        let mut unsettled = Vec::new();
        for chunk in pending.chunks(BATCH_OPERATIONS_MAX) {
            let reads: Vec<Operation> = chunk
                .iter()
                .map(|order_id| Operation::GetOrder {
                    order_id: *order_id,
                })
                .collect();
            let replies = client
                .execute_batch(&reads)
                .expect("batch read after restart");
            for (order_id, reply) in chunk.iter().zip(replies) {
                match reply {
                    Reply::Order(order) if order.status == OrderStatus::Preparing => {
                        unsettled.push(*order_id)
                    }
                    Reply::Order(order) => {
                        settled.insert(*order_id, order);
                    }
                    Reply::Error(ErrorReply::NotFound) => {}
                    other => panic!("reading order {order_id:#x}: {other:?}"),
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "orders never settled: {unsettled:x?}"
        );
        if !unsettled.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        pending = unsettled;
    }
    settled
}

fn verify(node: &Node, ledger: &Ledger, orders_sent: &mut BTreeSet<u128>) {
    let mut client = client(node, 5000).expect("client after restart");
    orders_sent.extend(ledger.acknowledged.keys().copied());
    orders_sent.extend(ledger.in_doubt_orders.iter().copied());
    let sent: Vec<u128> = orders_sent.iter().copied().collect();
    let stored = read_settled(&mut client, &sent);
    for (order_id, status) in &ledger.acknowledged {
        let found = stored.get(order_id).map(|order| order.status);
        assert_eq!(
            found,
            Some(*status),
            "acknowledged order {order_id:#x} changed or was lost"
        );
    }
    let mut committed_units: BTreeMap<u64, u64> = BTreeMap::new();
    for order in stored
        .values()
        .filter(|order| order.status == OrderStatus::Committed)
    {
        for line in &order.lines {
            *committed_units.entry(line.sku).or_default() += line.quantity;
        }
    }
    for sku in 0..SKUS {
        let deadline = Instant::now() + Duration::from_secs(20);
        let item = loop {
            let item = client.get_item(sku).expect("item survives");
            if item.reserved == 0 {
                break item;
            }
            assert!(
                Instant::now() < deadline,
                "sku {sku} keeps reserved units: {item:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let total = item.available + item.reserved + item.sold;
        let low = INITIAL_STOCK + ledger.restocked.get(&sku).copied().unwrap_or(0);
        let high = low + ledger.in_doubt_restocks.get(&sku).copied().unwrap_or(0);
        assert!(
            (low..=high).contains(&total),
            "sku {sku}: stock {total} outside {low}..={high}: {item:?}"
        );
        assert_eq!(
            item.sold,
            committed_units.get(&sku).copied().unwrap_or(0),
            "sku {sku}: sold differs from committed orders"
        );
    }
}

#[test]
fn acknowledged_orders_survive_kill_nine_under_load() {
    let dir = scratch_dir("crash-durability");
    let mut node = Node::start(&dir, 8, 2);
    let mut setup = node.client();
    for sku in 0..SKUS {
        setup
            .put_item(sku, INITIAL_STOCK, 100 + sku, None)
            .expect("create item");
    }
    let mut rng = Rng::new(0xC0FFEE);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut orders_sent = BTreeSet::new();
    for point in 0..KILL_POINTS {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (addr, stop, ledger) =
                    (node.addr.clone(), Arc::clone(&stop), Arc::clone(&ledger));
                let seed = point * 100 + writer + 1;
                std::thread::spawn(move || write_until_stopped(addr, seed, stop, ledger))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        node.kill();
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().expect("writer thread");
        }
        let restarted = Instant::now();
        node.restart();
        let ready = restarted.elapsed();
        let ledger = ledger.lock().expect("ledger");
        verify(&node, &ledger, &mut orders_sent);
        eprintln!(
            "kill point {point}: ready in {ready:?}, verified in {:?}",
            restarted.elapsed() - ready
        );
    }
    let ledger = ledger.lock().expect("ledger");
    assert!(
        ledger.acknowledged.len() > 100,
        "too little load to mean anything: {}",
        ledger.acknowledged.len()
    );
    eprintln!(
        "{} kill points, {} acknowledged orders, {} in doubt",
        KILL_POINTS,
        ledger.acknowledged.len(),
        ledger.in_doubt_orders.len()
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
