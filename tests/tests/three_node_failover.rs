//! Failover in a cluster of three real nodes (DESIGN.md §4.7, §9.2, §9.7).
//!
//! - Losing one node under load: orders keep committing, no acknowledged order is lost,
//!   and the node restarts, catches up and ends with the same digests as the others.
//! - Losing two nodes: clients get an error within their deadline, nothing acknowledged is
//!   lost, and service resumes as soon as one of them returns.

use quorder_client::{Client, ClientError, ClientOptions};
use quorder_proto::{ErrorReply, OrderLine, OrderStatus, Payment, PlaceOrder};
use quorder_tests::cluster::{
    check_acknowledged, describe, spawn_writers, write_until_stopped, Acknowledged, Cluster,
    Ledger, Workload, FAST_RAFT_TOML,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: u32 = 3;
const SHARDS: u32 = 8;
const SKUS: u64 = 32;
/// Enough that no order of the test is refused for stock.
const INITIAL_STOCK: u64 = 1_000_000;
const WRITERS: u64 = 4;
/// Deadline of each writer request: long enough to ride out an election on a loaded host.
const WRITER_TIMEOUT: Duration = Duration::from_secs(10);
/// Startup elections, and catch-up of a restarted node, on a loaded two-core host.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Orders sent after the kill that must commit before the load stops...
const AFTER_KILL_ORDERS_WANTED: usize = 200;
/// ... within this long after the kill.
const AFTER_KILL_LOAD_MAX: Duration = Duration::from_secs(20);

const WORKLOAD: Workload = Workload {
    skus: SKUS,
    restock_percent: 5,
    two_line_percent: 30,
    request_timeout: WRITER_TIMEOUT,
};

fn start(name: &str) -> Cluster {
    let mut cluster = Cluster::start(name, NODES, SHARDS, FAST_RAFT_TOML);
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
    let mut client = cluster.client();
    for sku in 0..SKUS {
        client
            .put_item(sku, INITIAL_STOCK, 100 + sku, None)
            .expect("create item");
    }
    cluster
}

fn one_line_order(client: &mut Client, sku: u64) -> PlaceOrder {
    PlaceOrder {
        order_id: client.new_order_id(sku),
        customer: 7,
        lines: vec![OrderLine { sku, quantity: 1 }],
        payment: Payment::None,
    }
}

#[test]
fn losing_one_node_under_load_loses_nothing() {
    let mut cluster = start("failover-one");
    let victim = cluster.node_with_most_primaries();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(&cluster, WORKLOAD, WRITERS, 1, &stop, &ledger);
    std::thread::sleep(Duration::from_millis(1_500));
    cluster.kill(victim);
    let killed_at = Instant::now();
    // Requests in flight to the dead primary may wait out the daemon's forward timeout;
    // keep the load on until orders sent after the kill commit, within a bound.
    while killed_at.elapsed() < AFTER_KILL_LOAD_MAX {
        std::thread::sleep(Duration::from_millis(200));
        let ledger = ledger.lock().expect("ledger");
        if ledger.acknowledged_sent_after(killed_at) >= AFTER_KILL_ORDERS_WANTED {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let ledger = ledger.lock().expect("ledger");
    let after_kill = ledger.acknowledged_sent_after(killed_at);
    eprintln!(
        "killed node {victim}: {} acknowledged ({after_kill} sent after the kill, slowest \
         {:?}), {} in doubt, errors {:?}",
        ledger.acknowledged.len(),
        ledger.slowest_acknowledgement(),
        ledger.in_doubt_orders.len(),
        ledger.errors
    );
    assert!(
        after_kill > 0,
        "no order sent after node {victim} was killed committed"
    );

    let stored = check_acknowledged(&mut cluster.client(), &ledger);
    let committed = stored
        .values()
        .filter(|order| order.status == OrderStatus::Committed)
        .count();
    assert!(committed > 0, "no committed order at all");

    cluster.restart(victim);
    let status = cluster.wait_until_converged(CONVERGE_TIMEOUT);
    for shard in &status.shards {
        assert_eq!(shard.mirrors.len(), NODES as usize, "{}", describe(&status));
    }
    // The restarted node answers for what it missed, from its own mirrors and forwards.
    let restarted_only = vec![cluster.node(victim).addr.clone()];
    let options = cluster.client().options();
    let mut client =
        Client::connect(&restarted_only, options).expect("connect to the restarted node");
    check_acknowledged(&mut client, &ledger);
}

/// True for the errors a client may get while no majority is reachable.
fn is_outage_error(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::Timeout
            | ClientError::ConnectionClosed
            | ClientError::NoReachableNode(_)
            | ClientError::Io(_)
            | ClientError::Server(ErrorReply::Unavailable)
            | ClientError::Server(ErrorReply::NotPrimary { .. })
            | ClientError::Server(ErrorReply::Overloaded)
    )
}

#[test]
fn losing_two_nodes_fails_within_the_deadline_and_recovers() {
    let mut cluster = start("failover-two");
    let mut ledger = Ledger::default();
    let mut client = cluster.client();
    for sku in 0..SKUS {
        let order = one_line_order(&mut client, sku);
        let placed = client.place_order(&order).expect("order before the outage");
        assert_eq!(placed.status, OrderStatus::Committed);
        ledger.acknowledged.insert(
            order.order_id,
            Acknowledged {
                status: placed.status,
                sent_at: Instant::now(),
                took: Duration::ZERO,
            },
        );
    }

    let first = cluster.node_with_most_primaries();
    let second = (1..=u64::from(NODES))
        .find(|id| *id != first)
        .expect("another node");
    cluster.kill(first);
    cluster.kill(second);

    let deadline = Duration::from_secs(5);
    let slack = Duration::from_secs(3);
    let mut outage_client = cluster
        .client_with_timeout(deadline)
        .expect("the surviving node accepts connections");
    for sku in [0, 1] {
        let order = one_line_order(&mut outage_client, sku);
        let started = Instant::now();
        let result = outage_client.place_order(&order);
        let took = started.elapsed();
        match result {
            Ok(placed) => panic!("order acknowledged by one node of three: {placed:?}"),
            Err(error) => {
                eprintln!("order on sku {sku} with two nodes down: {error} after {took:?}");
                assert!(is_outage_error(&error), "unexpected error: {error:?}");
            }
        }
        assert!(
            took <= deadline + slack,
            "the request took {took:?}, past its deadline {deadline:?} and {slack:?} of slack"
        );
        ledger.in_doubt_orders.push(order.order_id);
    }

    cluster.restart(second);
    let mut client = cluster.client();
    let order = one_line_order(&mut client, 5);
    let placed = client
        .place_order(&order)
        .expect("an order commits once a majority is back");
    assert_eq!(placed.status, OrderStatus::Committed);
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
    check_acknowledged(&mut client, &ledger);

    cluster.restart(first);
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
    check_acknowledged(&mut cluster.client(), &ledger);
}

/// Clients with the default options (a 5 s deadline) connected to a node that stays up
/// must not see the death of a primary it forwards to: a new primary is elected in well
/// under a second, and the forwarding node answers `Unavailable` as soon as the link to
/// the dead primary drops or the shard has another primary, so the client retries there.
#[test]
fn default_deadline_clients_ride_out_a_primary_kill() {
    let mut cluster = start("failover-default-deadline");
    let status = cluster.status();
    // A victim other than node 1 that is primary of some shard; clients stay on node 1.
    let victim = (2..=u64::from(NODES))
        .max_by_key(|id| {
            let primaries = status
                .shards
                .iter()
                .filter(|shard| shard.primary == Some(*id));
            primaries.count()
        })
        .expect("nodes 2 and 3");
    let victim_primaries = status
        .shards
        .iter()
        .filter(|shard| shard.primary == Some(victim))
        .count();
    assert!(
        victim_primaries > 0,
        "test premise: node 1 leads every shard; rerun"
    );
    let addresses = cluster.addresses();
    let stays_up = [addresses[0].clone()];
    let workload = Workload {
        request_timeout: ClientOptions::default().request_timeout,
        ..WORKLOAD
    };
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (stop, ledger, stays_up) =
                (Arc::clone(&stop), Arc::clone(&ledger), stays_up.clone());
            std::thread::spawn(move || {
                write_until_stopped(&stays_up, workload, 50 + writer, &stop, &ledger)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1_500));
    cluster.kill(victim);
    std::thread::sleep(Duration::from_millis(3_000));
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().expect("writer thread");
    }
    let ledger = ledger.lock().expect("ledger");
    eprintln!(
        "killed node {victim}: {} acknowledged (slowest {:?}), errors {:?}",
        ledger.acknowledged.len(),
        ledger.slowest_acknowledgement(),
        ledger.errors
    );
    assert!(
        ledger.errors.is_empty(),
        "clients saw the primary's death: {:?}",
        ledger.errors
    );
}
