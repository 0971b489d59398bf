//! A cross-shard order is all-or-nothing even when the process dies between prepare and
//! decision, between decision and commit, and after a participant committed: crash points
//! abort the daemon there, and after a restart the order settles the same on every shard.

use quorder_client::{Client, ClientOptions};
use quorder_proto::shard::shard_of_sku;
use quorder_proto::{Item, OrderLine, OrderStatus, Payment, PlaceOrder, RejectReason};
use quorder_tests::process::{scratch_dir, Node};
use std::time::{Duration, Instant};

const SHARDS: u32 = 8;

/// Two SKUs on different shards (and so, with two cores, possibly different cores).
fn two_skus_on_different_shards() -> (u64, u64) {
    let first = 1;
    let second = (2..).find(|sku| shard_of_sku(*sku, SHARDS) != shard_of_sku(first, SHARDS));
    (first, second.expect("another shard"))
}

fn quick_client(node: &Node) -> Client {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_millis(300),
    };
    Client::connect(std::slice::from_ref(&node.addr), options).expect("connect")
}

fn settled_item(client: &mut Client, sku: u64) -> Item {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let item = client.get_item(sku).expect("item");
        if item.reserved == 0 {
            return item;
        }
        assert!(
            Instant::now() < deadline,
            "sku {sku} keeps reserved units: {item:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Places a two-shard order on a node armed with `crash_point`, checks the node died,
/// restarts it unarmed, and returns the settled order status and both items.
fn crash_during_order(
    name: &str,
    crash_point: &str,
    second_stock: u64,
) -> (OrderStatus, Option<RejectReason>, Item, Item) {
    let dir = scratch_dir(name);
    let (first, second) = two_skus_on_different_shards();
    let mut node = Node::start(&dir, SHARDS, 2);
    let mut setup = node.client();
    setup.put_item(first, 10, 500, None).expect("first item");
    setup
        .put_item(second, second_stock, 300, None)
        .expect("second item");
    drop(setup);
    node.stop();
    node.set_env(&[("QUORDER_CRASH_POINT", crash_point)]);
    node.restart();
    let mut client = quick_client(&node);
    let order_id = client.new_order_id(first);
    let lines = vec![
        OrderLine {
            sku: first,
            quantity: 2,
        },
        OrderLine {
            sku: second,
            quantity: 3,
        },
    ];
    let order = PlaceOrder {
        order_id,
        customer: 1,
        lines,
        payment: Payment::None,
    };
    let outcome = client.place_order(&order);
    // The client is answered once the decision is durable, so only a crash after that
    // point may come after an answer, and then the answer must be the commit.
    if crash_point.starts_with("committed") {
        let status = outcome.map(|order| order.status).ok();
        assert!(
            matches!(status, None | Some(OrderStatus::Committed)),
            "{crash_point}: {status:?}"
        );
    } else {
        assert!(
            outcome.is_err(),
            "{crash_point}: answered ({outcome:?}) before the crash point"
        );
    }
    assert!(
        node.wait_exit(Duration::from_secs(10)),
        "{crash_point}: the node did not crash"
    );
    node.set_env(&[]);
    node.restart();
    let mut client = node.client();
    let deadline = Instant::now() + Duration::from_secs(20);
    let settled = loop {
        // The client retries with the same id: idempotent, it returns the recorded outcome.
        let placed = client.place_order(&order).expect("order after restart");
        if placed.status != OrderStatus::Preparing {
            break placed;
        }
        assert!(
            Instant::now() < deadline,
            "{crash_point}: order never settled"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let (first_item, second_item) = (
        settled_item(&mut client, first),
        settled_item(&mut client, second),
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
    (settled.status, settled.reason, first_item, second_item)
}

#[test]
fn dies_after_a_participant_prepared() {
    let (status, _, first, second) = crash_during_order("xs-prepared", "prepared:1", 10);
    assert_eq!(status, OrderStatus::Committed);
    assert_eq!((first.available, first.sold), (8, 2));
    assert_eq!((second.available, second.sold), (7, 3));
}

#[test]
fn dies_after_the_commit_decision_is_durable() {
    let (status, _, first, second) = crash_during_order("xs-decided", "decided:1", 10);
    assert_eq!(status, OrderStatus::Committed);
    assert_eq!((first.available, first.sold), (8, 2));
    assert_eq!((second.available, second.sold), (7, 3));
}

#[test]
fn dies_after_the_abort_decision_is_durable() {
    let (status, reason, first, second) = crash_during_order("xs-decided-abort", "decided:1", 1);
    assert_eq!(status, OrderStatus::Rejected);
    assert!(
        matches!(
            reason,
            Some(RejectReason::InsufficientStock { available: 1, .. })
        ),
        "{reason:?}"
    );
    assert_eq!(
        (first.available, first.reserved, first.sold),
        (10, 0, 0),
        "the coordinator's line is released"
    );
    assert_eq!((second.available, second.reserved, second.sold), (1, 0, 0));
}

#[test]
fn dies_after_a_participant_committed() {
    let (status, _, first, second) = crash_during_order("xs-committed", "committed:1", 10);
    assert_eq!(status, OrderStatus::Committed);
    assert_eq!((first.available, first.sold), (8, 2));
    assert_eq!((second.available, second.sold), (7, 3));
}
