//! Failover, redirects, retries within the deadline and replay safety, against fake nodes.

use super::*;
use crate::testing::{Action, FakeNode, FakeStore};
use quorder_proto::message::{OrderLine, OrderStatus, Payment};
use quorder_proto::shard::{shard_of_order, shard_of_sku};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

fn options(request_timeout_ms: u64) -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(request_timeout_ms),
        connect_timeout: Duration::from_millis(500),
    }
}

fn closed_port_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").to_string()
}

fn order(order_id: u128, lines: &[(u64, u64)]) -> PlaceOrder {
    PlaceOrder {
        order_id,
        customer: 7,
        lines: lines
            .iter()
            .map(|&(sku, quantity)| OrderLine { sku, quantity })
            .collect(),
        payment: Payment::None,
    }
}

/// A store node whose first `failures` operations get `failure` instead of an answer.
fn flaky_node(failures: usize, failure: Action) -> (FakeNode, Arc<Mutex<Vec<Operation>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let store = Mutex::new(FakeStore::new(8));
    let count = AtomicUsize::new(0);
    let recorded = Arc::clone(&seen);
    let node = FakeNode::start(move |operation| {
        recorded.lock().expect("lock").push(operation.clone());
        if count.fetch_add(1, Ordering::SeqCst) < failures {
            return failure.clone();
        }
        Action::Reply(store.lock().expect("lock").apply(operation))
    })
    .expect("node");
    (node, seen)
}

#[test]
fn typed_helpers_drive_a_store() {
    let node = FakeNode::start_store(8).expect("node");
    let mut client =
        Client::connect(&[node.address().to_string()], options(2000)).expect("connect");
    let item = client.put_item(5, 10, 199, None).expect("put");
    assert_eq!(
        (item.available, item.price_cents, item.version),
        (10, 199, 1)
    );
    let conflict = client.put_item(5, 10, 199, Some(7));
    assert!(matches!(
        conflict,
        Err(ClientError::Server(ErrorReply::VersionConflict {
            current: 1
        }))
    ));
    assert_eq!(client.restock(5, 5).expect("restock").available, 15);
    assert_eq!(client.get_item(5).expect("get").version, 2);
    let missing = client.get_item(6);
    assert!(matches!(
        missing,
        Err(ClientError::Server(ErrorReply::NotFound))
    ));

    let order_id = client.new_order_id(5);
    let placed = client
        .place_order(&order(order_id, &[(5, 4)]))
        .expect("place");
    assert_eq!(placed.status, OrderStatus::Committed);
    assert_eq!(placed.total_cents, 4 * 199);
    let second_id = client.new_order_id(5);
    let rejected = client
        .place_order(&order(second_id, &[(5, 100)]))
        .expect("a rejection is an outcome");
    assert_eq!(rejected.status, OrderStatus::Rejected);
    let cancelled = client.cancel_order(order_id, Some(1)).expect("cancel");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(client.get_order(order_id).expect("get order").version, 2);
    assert_eq!(client.get_item(5).expect("get").available, 15);
    let zero = client.place_order(&order(0, &[(5, 1)]));
    assert!(matches!(zero, Err(ClientError::InvalidRequest(_))));
}

#[test]
fn ping_learns_the_shard_count_and_ids_are_colocated() {
    let node = FakeNode::start_store(16).expect("node");
    let mut client =
        Client::connect(&[node.address().to_string()], options(2000)).expect("connect");
    let pong = client.ping().expect("ping");
    assert_eq!(pong.shard_count, 16);
    assert_eq!(pong.address, node.address());
    assert_eq!(client.shard_count().expect("known"), 16);
    for sku in 0..100 {
        let order_id = client.new_order_id(sku);
        assert_ne!(order_id, 0);
        assert_eq!(shard_of_order(order_id, 16), shard_of_sku(sku, 16));
    }
}

#[test]
fn connect_skips_unreachable_addresses() {
    let node = FakeNode::start_store(8).expect("node");
    let addresses = [closed_port_address(), node.address().to_string()];
    let mut client = Client::connect(&addresses, options(2000)).expect("connect");
    assert_eq!(client.current_address(), Some(node.address()));
    client.ping().expect("ping");
}

#[test]
fn no_reachable_node_names_every_address() {
    let addresses = [closed_port_address(), closed_port_address()];
    let error = Client::connect(&addresses, options(2000)).expect_err("nothing listens");
    let text = error.to_string();
    assert!(text.starts_with("cannot reach any node ("), "{text}");
    for address in &addresses {
        assert!(
            text.contains(&format!("{address}: connection refused")),
            "{text}"
        );
    }
    let none = Client::connect(&[], options(2000));
    assert!(matches!(none, Err(ClientError::InvalidRequest(_))));
}

#[test]
fn connection_loss_fails_over_to_the_next_address() {
    let first = FakeNode::start_store(8).expect("first");
    let second = FakeNode::start_store(8).expect("second");
    let addresses = [first.address().to_string(), second.address().to_string()];
    let mut client = Client::connect(&addresses, options(3000)).expect("connect");
    client.ping().expect("ping first");
    assert_eq!(client.current_address(), Some(first.address()));
    drop(first);
    let pong = client.ping().expect("ping fails over");
    assert_eq!(pong.address, second.address());
}

#[test]
fn a_crash_mid_order_is_retried_with_the_same_order_id() {
    let (node, seen) = flaky_node(1, Action::Close);
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    let placed = client
        .place_order(&order(77, &[(5, 1)]))
        .expect("an outcome despite the crash");
    assert_eq!(placed.order_id, 77);
    assert_eq!(placed.status, OrderStatus::Rejected, "sku 5 does not exist");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|operation| matches!(
        operation,
        Operation::PlaceOrder(place) if place.order_id == 77
    )));
}

#[test]
fn a_lost_reply_to_an_order_is_retried_and_answered_once() {
    let store = Mutex::new(FakeStore::new(8));
    let orders_seen = AtomicUsize::new(0);
    let node = FakeNode::start(move |operation| {
        let reply = store.lock().expect("lock").apply(operation);
        if matches!(operation, Operation::PlaceOrder(_))
            && orders_seen.fetch_add(1, Ordering::SeqCst) == 0
        {
            // Applied, then the node dies before answering.
            return Action::Close;
        }
        Action::Reply(reply)
    })
    .expect("node");
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    client.put_item(5, 10, 100, None).expect("put");
    let placed = client.place_order(&order(78, &[(5, 3)])).expect("retried");
    assert_eq!(placed.status, OrderStatus::Committed);
    assert_eq!(
        client.get_item(5).expect("get").available,
        7,
        "applied exactly once"
    );
}

#[test]
fn a_restock_is_not_replayed_after_an_ambiguous_failure() {
    let (node, seen) = flaky_node(2, Action::Close);
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    // First operation: a ping, replayed after the crash (safe); the second crash hits it too.
    client.ping().expect("ping is replayed");
    let restock = client.restock(5, 1);
    assert!(
        matches!(restock, Err(ClientError::Server(ErrorReply::NotFound))),
        "a restock that was never applied runs once: {restock:?}"
    );
    let (node, seen_restock) = flaky_node(1, Action::Close);
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    let ambiguous = client.restock(5, 1);
    assert!(
        matches!(ambiguous, Err(ClientError::ConnectionClosed)),
        "{ambiguous:?}"
    );
    assert_eq!(
        seen_restock.lock().expect("lock").len(),
        1,
        "sent once, not replayed"
    );
    assert_eq!(seen.lock().expect("lock").len(), 4);
}

#[test]
fn retryable_server_errors_are_retried_with_backoff() {
    let (node, seen) = flaky_node(3, Action::Reply(Reply::Error(ErrorReply::Unavailable)));
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    let started = Instant::now();
    client.ping().expect("answered after three refusals");
    assert_eq!(seen.lock().expect("lock").len(), 4);
    // Backoffs of at least 5 + 10 + 20 ms (half of 10, 20, 40 with equal jitter).
    assert!(started.elapsed() >= Duration::from_millis(35));
}

#[test]
fn retries_stop_at_the_deadline() {
    let node =
        FakeNode::start(|_| Action::Reply(Reply::Error(ErrorReply::Unavailable))).expect("node");
    let mut client = Client::connect(&[node.address().to_string()], options(300)).expect("connect");
    let started = Instant::now();
    let result = client.ping();
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(ClientError::Server(ErrorReply::Unavailable))),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_millis(300), "took {elapsed:?}");
    assert!(
        node.requests_received() >= 3,
        "retried {}",
        node.requests_received()
    );
}

#[test]
fn a_silent_node_times_out_at_the_deadline() {
    let node = FakeNode::start(|_| Action::NoReply).expect("node");
    let mut client = Client::connect(&[node.address().to_string()], options(200)).expect("connect");
    let started = Instant::now();
    let result = client.get_item(1);
    assert!(matches!(result, Err(ClientError::Timeout)), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn non_retryable_errors_return_at_once() {
    let node =
        FakeNode::start(|_| Action::Reply(Reply::Error(ErrorReply::NotFound))).expect("node");
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    assert!(matches!(
        client.get_order(9),
        Err(ClientError::Server(ErrorReply::NotFound))
    ));
    assert_eq!(node.requests_received(), 1);
}

#[test]
fn not_primary_with_a_hint_moves_to_the_primary() {
    let primary = FakeNode::start_store(8).expect("primary");
    let hint = primary.address().to_string();
    let backup = FakeNode::start(move |_| {
        Action::Reply(Reply::Error(ErrorReply::NotPrimary {
            hint: Some(hint.clone()),
        }))
    })
    .expect("backup");
    let mut client =
        Client::connect(&[backup.address().to_string()], options(3000)).expect("connect");
    let item = client.put_item(1, 2, 3, Some(0)).expect("redirected");
    assert_eq!(item.version, 1);
    assert_eq!(client.current_address(), Some(primary.address()));
    assert_eq!(client.addresses().len(), 2);
    assert_eq!(backup.requests_received(), 1);
}

#[test]
fn a_batch_is_retried_as_a_whole() {
    let (node, _seen) = flaky_node(1, Action::Close);
    let mut client =
        Client::connect(&[node.address().to_string()], options(3000)).expect("connect");
    let replies = client
        .execute_batch(&[Operation::GetItem { sku: 1 }, Operation::Ping { nonce: 4 }])
        .expect("batch");
    assert_eq!(replies[0], Reply::Error(ErrorReply::NotFound));
    assert!(matches!(replies[1], Reply::Pong { nonce: 4, .. }));
}
