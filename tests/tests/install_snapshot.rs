//! A mirror that was down while the others compacted their logs catches up through
//! InstallSnapshot (DESIGN.md §5): with `snapshot_interval_entries = 200`, node 3 is killed,
//! enough orders are placed that every shard's mirrors on nodes 1 and 2 snapshot past
//! everything node 3 holds (their logs no longer reach back to it, so entries alone cannot
//! bring it up to date), and node 3 restarts. It must end with the others' applied index
//! and digest on every shard, and a snapshot file of its own for every shard.

use quorder_client::Client;
use quorder_daemon::snapshot::snapshot_path;
use quorder_proto::{ErrorReply, Operation, OrderLine, OrderStatus, Payment, PlaceOrder, Reply};
use quorder_tests::cluster::{
    check_acknowledged, describe, snapshot_applied_index, Acknowledged, Cluster, Ledger,
    FAST_RAFT_TOML,
};
use std::time::{Duration, Instant};

const NODES: u32 = 3;
const SHARDS: u32 = 4;
const SKUS: u64 = 16;
const INITIAL_STOCK: u64 = 1_000_000;
const SNAPSHOT_INTERVAL_ENTRIES: u64 = 200;
const BATCH_ORDERS: usize = 100;
/// Most orders placed while node 3 is down; about 6 snapshot intervals per shard.
const ORDERS_MAX: usize = 5_000;
/// Sends of one batch, the first included, while some of its orders are refused.
const BATCH_ATTEMPTS_MAX: u32 = 10;
const LAGGARD: u64 = 3;
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(40);

/// Places `count` single-line orders in batches; records every outcome in `ledger`.
fn place_orders(client: &mut Client, count: usize, round: u64, ledger: &mut Ledger) {
    let mut placed = 0;
    while placed < count {
        let size = BATCH_ORDERS.min(count - placed);
        let orders: Vec<PlaceOrder> = (0..size)
            .map(|at| {
                let sku = (round * 7 + (placed + at) as u64) % SKUS;
                PlaceOrder {
                    order_id: client.new_order_id(sku),
                    customer: round,
                    lines: vec![OrderLine { sku, quantity: 1 }],
                    payment: Payment::None,
                }
            })
            .collect();
        place_batch(client, orders, ledger);
        placed += size;
    }
}

/// Places one batch of orders. An operation refused with a retryable error (its shard's
/// primary moved or was unreachable when the batch arrived) is sent again with the same
/// order id, which makes the retry idempotent.
fn place_batch(client: &mut Client, mut orders: Vec<PlaceOrder>, ledger: &mut Ledger) {
    for _attempt in 0..BATCH_ATTEMPTS_MAX {
        let operations: Vec<Operation> =
            orders.iter().cloned().map(Operation::PlaceOrder).collect();
        let sent_at = Instant::now();
        let replies = client
            .execute_batch(&operations)
            .expect("a batch of orders with a majority up");
        let mut refused = Vec::new();
        for (order, reply) in orders.into_iter().zip(replies) {
            match reply {
                Reply::Order(stored) => {
                    assert_eq!(stored.status, OrderStatus::Committed, "{stored:?}");
                    let acknowledged = Acknowledged {
                        status: stored.status,
                        sent_at,
                        took: sent_at.elapsed(),
                    };
                    ledger.acknowledged.insert(order.order_id, acknowledged);
                }
                Reply::Error(
                    ErrorReply::Unavailable
                    | ErrorReply::NotPrimary { .. }
                    | ErrorReply::Overloaded,
                ) => refused.push(order),
                other => panic!("order {:#x}: {other:?}", order.order_id),
            }
        }
        if refused.is_empty() {
            return;
        }
        eprintln!(
            "{} orders of a batch refused; sending them again",
            refused.len()
        );
        orders = refused;
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("orders still refused after {BATCH_ATTEMPTS_MAX} attempts");
}

/// The lowest snapshot index over `nodes`' snapshot files of `shard` (0 when one is
/// missing).
fn lowest_snapshot_index(cluster: &Cluster, nodes: &[u64], shard: u32) -> u64 {
    nodes
        .iter()
        .map(|id| snapshot_applied_index(&snapshot_path(&cluster.node(*id).data_dir, shard)))
        .map(|index| index.unwrap_or(0))
        .min()
        .unwrap_or(0)
}

#[test]
fn a_mirror_behind_compacted_logs_catches_up_by_snapshot() {
    let extra =
        format!("snapshot_interval_entries = {SNAPSHOT_INTERVAL_ENTRIES}\n{FAST_RAFT_TOML}");
    let mut cluster = Cluster::start("install-snapshot", NODES, SHARDS, &extra);
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
    let mut client = cluster.client();
    for sku in 0..SKUS {
        client
            .put_item(sku, INITIAL_STOCK, 100 + sku, None)
            .expect("create item");
    }
    let mut ledger = Ledger::default();
    place_orders(&mut client, 40, 0, &mut ledger);
    let before = cluster.wait_until_converged(CONVERGE_TIMEOUT);
    let laggard_applied: Vec<u64> = before
        .shards
        .iter()
        .map(|shard| {
            let mirror = shard.mirrors.iter().find(|mirror| mirror.node == LAGGARD);
            mirror.expect("node 3's mirror").applied_index
        })
        .collect();
    assert!(
        laggard_applied
            .iter()
            .all(|applied| *applied < SNAPSHOT_INTERVAL_ENTRIES),
        "test premise: node 3 took no snapshot before it was killed: {laggard_applied:?}"
    );
    cluster.kill(LAGGARD);
    // Primaries move off node 3 first, so that few orders wait on it.
    cluster.wait_until_converged(CONVERGE_TIMEOUT);

    let others: Vec<u64> = (1..=u64::from(NODES)).filter(|id| *id != LAGGARD).collect();
    let compacted_past_laggard = |cluster: &Cluster| {
        (0..SHARDS).all(|shard| {
            lowest_snapshot_index(cluster, &others, shard) > laggard_applied[shard as usize]
        })
    };
    let mut placed = 0;
    let mut round = 1;
    while !compacted_past_laggard(&cluster) {
        assert!(
            placed < ORDERS_MAX,
            "{placed} orders and the logs of nodes {others:?} still reach back to node 3's \
             applied indexes {laggard_applied:?}"
        );
        place_orders(&mut client, 500, round, &mut ledger);
        placed += 500;
        round += 1;
        // Snapshots are taken after applying, off the request path: give them a moment.
        std::thread::sleep(Duration::from_millis(200));
    }
    let compacted: Vec<u64> = (0..SHARDS)
        .map(|shard| lowest_snapshot_index(&cluster, &others, shard))
        .collect();
    eprintln!(
        "{placed} orders placed with node 3 down; its applied indexes {laggard_applied:?}, \
         the others' snapshots at {compacted:?}"
    );
    // Node 3 holds no snapshot, and the others' logs start past its last entry: it can
    // only catch up by receiving one.
    for shard in 0..SHARDS {
        let path = snapshot_path(&cluster.node(LAGGARD).data_dir, shard);
        assert!(!path.exists(), "test premise: {} exists", path.display());
    }

    let restarted = Instant::now();
    cluster.restart(LAGGARD);
    let status = cluster.wait_until_converged(CONVERGE_TIMEOUT);
    eprintln!("node 3 caught up in {:?}", restarted.elapsed());
    for shard in &status.shards {
        let laggard = shard.mirrors.iter().find(|mirror| mirror.node == LAGGARD);
        let laggard = laggard.expect("node 3 reports its mirror");
        for other in shard.mirrors.iter().filter(|mirror| mirror.node != LAGGARD) {
            assert_eq!(
                (laggard.applied_index, laggard.digest),
                (other.applied_index, other.digest),
                "shard {}: node 3 differs from node {}\n{}",
                shard.shard,
                other.node,
                describe(&status)
            );
        }
        // The received snapshot is in the store at once; its file becomes durable right
        // after (the mirror acknowledges it only then), so give the file a moment.
        let path = snapshot_path(&cluster.node(LAGGARD).data_dir, shard.shard);
        let wanted = compacted[shard.shard as usize];
        let file_deadline = Instant::now() + Duration::from_secs(10);
        let mut installed = snapshot_applied_index(&path);
        while installed.is_none_or(|index| index < wanted) && Instant::now() < file_deadline {
            std::thread::sleep(Duration::from_millis(20));
            installed = snapshot_applied_index(&path);
        }
        assert!(
            installed.is_some_and(|index| index >= compacted[shard.shard as usize]),
            "shard {}: node 3 holds no snapshot at or past {} (found {installed:?})",
            shard.shard,
            compacted[shard.shard as usize]
        );
    }

    // The installed mirror goes on replicating: more orders, and every node agrees again.
    place_orders(&mut client, 200, round, &mut ledger);
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
    check_acknowledged(&mut cluster.client(), &ledger);
}
