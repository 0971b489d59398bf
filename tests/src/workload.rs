//! Concurrent order load for crash and failover tests, and the checks that follow it:
//! what writers were told (a ledger of acknowledged and in-doubt requests), every
//! acknowledged order read back, and stock conserved per SKU.

use crate::rng::Rng;
use quorder_client::{Client, ClientError, ClientOptions};
use quorder_proto::limits::BATCH_OPERATIONS_MAX;
use quorder_proto::{
    ErrorReply, Operation, Order, OrderLine, OrderStatus, Payment, PlaceOrder, Reply,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What one order's writer learned when the cluster answered.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    /// The outcome the cluster acknowledged.
    pub status: OrderStatus,
    /// When the request was first sent.
    pub sent_at: Instant,
    /// From sending to the acknowledgement, retries and failover included.
    pub took: Duration,
}

/// What concurrent writers learned: acknowledged outcomes, and what is in doubt (a request
/// that failed may or may not have been applied).
#[derive(Debug, Default)]
pub struct Ledger {
    /// Orders the cluster acknowledged, by order id.
    pub acknowledged: BTreeMap<u128, Acknowledged>,
    /// Orders whose request failed.
    pub in_doubt_orders: Vec<u128>,
    /// Acknowledged restocked units per SKU.
    pub restocked: BTreeMap<u64, u64>,
    /// Restocked units per SKU whose request failed.
    pub in_doubt_restocks: BTreeMap<u64, u64>,
    /// Failed requests by error text, for the report.
    pub errors: BTreeMap<String, u64>,
}

impl Ledger {
    /// Acknowledged orders whose request was sent after `instant`.
    pub fn acknowledged_sent_after(&self, instant: Instant) -> usize {
        self.acknowledged
            .values()
            .filter(|acknowledged| acknowledged.sent_at > instant)
            .count()
    }

    /// The longest an acknowledged order took, retries and failover included.
    pub fn slowest_acknowledgement(&self) -> Duration {
        self.acknowledged
            .values()
            .map(|acknowledged| acknowledged.took)
            .max()
            .unwrap_or_default()
    }

    fn failed(&mut self, error: &ClientError) {
        let kind = match error {
            ClientError::Server(reply) => format!("{reply:?}"),
            other => other.to_string(),
        };
        *self.errors.entry(kind).or_default() += 1;
    }
}

/// Shape of the load [`write_until_stopped`] puts on a cluster.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// SKUs `0..skus` exist.
    pub skus: u64,
    /// Percent of requests that are restocks of 5 units.
    pub restock_percent: u64,
    /// Percent of orders with a second line (on another SKU, often another shard).
    pub two_line_percent: u64,
    /// Deadline of each request, retries and failover included.
    pub request_timeout: Duration,
}

/// One writer: places 1- and 2-line orders of 1..=2 units and restocks over a client of
/// all `addresses` until `stop`, recording every outcome in `ledger`.
pub fn write_until_stopped(
    addresses: &[String],
    workload: Workload,
    seed: u64,
    stop: &AtomicBool,
    ledger: &Mutex<Ledger>,
) {
    let options = ClientOptions {
        request_timeout: workload.request_timeout,
        connect_timeout: Duration::from_millis(500),
    };
    let Ok(mut client) = Client::connect(addresses, options) else {
        return;
    };
    let mut rng = Rng::new(seed);
    let record = |update: &mut dyn FnMut(&mut Ledger)| {
        update(
            &mut ledger
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    };
    while !stop.load(Ordering::SeqCst) {
        if rng.chance(workload.restock_percent) {
            let sku = rng.below(workload.skus);
            match client.restock(sku, 5) {
                Ok(_) => record(&mut |ledger| *ledger.restocked.entry(sku).or_default() += 5),
                Err(error) => record(&mut |ledger| {
                    *ledger.in_doubt_restocks.entry(sku).or_default() += 5;
                    ledger.failed(&error);
                }),
            }
            continue;
        }
        let first = rng.below(workload.skus);
        let mut lines = vec![OrderLine {
            sku: first,
            quantity: 1 + rng.below(2),
        }];
        if rng.chance(workload.two_line_percent) {
            lines.push(OrderLine {
                sku: (first + 1 + rng.below(workload.skus - 1)) % workload.skus,
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
        let sent_at = Instant::now();
        match client.place_order(&order) {
            Ok(placed) => record(&mut |ledger| {
                let acknowledged = Acknowledged {
                    status: placed.status,
                    sent_at,
                    took: sent_at.elapsed(),
                };
                ledger.acknowledged.insert(order_id, acknowledged);
            }),
            Err(error) => record(&mut |ledger| {
                ledger.in_doubt_orders.push(order_id);
                ledger.failed(&error);
            }),
        }
    }
}

/// Reads orders in batches, waiting for preparing ones to settle (2PC in flight);
/// absent orders are left out. Panics if one stays `Preparing` past `limit`.
pub fn read_settled(
    client: &mut Client,
    order_ids: &[u128],
    limit: Duration,
) -> BTreeMap<u128, Order> {
    let mut settled = BTreeMap::new();
    let mut pending: Vec<u128> = order_ids.to_vec();
    let deadline = Instant::now() + limit;
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
                .unwrap_or_else(|error| panic!("reading {} orders back: {error}", chunk.len()));
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

/// Reads every acknowledged order of `ledger` back and checks that each is there with the
/// acknowledged status. Returns every stored order among the acknowledged and in-doubt ones.
pub fn check_acknowledged(client: &mut Client, ledger: &Ledger) -> BTreeMap<u128, Order> {
    let mut sent: Vec<u128> = ledger.acknowledged.keys().copied().collect();
    sent.extend(ledger.in_doubt_orders.iter().copied());
    let stored = read_settled(client, &sent, Duration::from_secs(30));
    for (order_id, acknowledged) in &ledger.acknowledged {
        let found = stored.get(order_id).map(|order| order.status);
        assert_eq!(
            found,
            Some(acknowledged.status),
            "acknowledged order {order_id:#x} changed or was lost"
        );
    }
    stored
}

/// Stock conservation per SKU `0..skus` once nothing is reserved any more:
/// `available + reserved + sold` is the initial stock plus the acknowledged restocks (plus
/// at most the in-doubt ones), and `sold` is the units of the committed orders in `stored`.
pub fn check_stock(
    client: &mut Client,
    ledger: &Ledger,
    stored: &BTreeMap<u128, Order>,
    skus: u64,
    initial_stock: u64,
) {
    let mut committed_units: BTreeMap<u64, u64> = BTreeMap::new();
    for order in stored
        .values()
        .filter(|order| order.status == OrderStatus::Committed)
    {
        for line in &order.lines {
            *committed_units.entry(line.sku).or_default() += line.quantity;
        }
    }
    for sku in 0..skus {
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
        let low = initial_stock + ledger.restocked.get(&sku).copied().unwrap_or(0);
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
