//! Optimistic locking (DESIGN.md §3): a write with `expected_version` is a compare-and-set
//! on the record's version. Of many concurrent writers holding the same version exactly
//! one wins; every other gets `VersionConflict` naming the winner's version, and changes
//! nothing. A missing item has version 0.

use quorder_client::{Client, ClientError};
use quorder_proto::{ErrorReply, Item, Order, OrderLine, OrderStatus, Payment, PlaceOrder};
use quorder_tests::process::{scratch_dir, Node};
use std::sync::{Arc, Barrier};
use std::thread;

const SHARDS: u32 = 8;
const CORES: u32 = 2;
const WRITERS: usize = 8;
const ROUNDS: u64 = 4;

/// Runs `write(client, writer_index)` on `WRITERS` threads, each with its own client,
/// released together.
fn race<T: Send + 'static>(
    node: &Node,
    write: impl Fn(&mut Client, usize) -> Result<T, ClientError> + Send + Sync + 'static,
) -> Vec<Result<T, ClientError>> {
    let write = Arc::new(write);
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|index| {
            let mut client = node.client();
            let start = Arc::clone(&start);
            let write = Arc::clone(&write);
            thread::spawn(move || {
                start.wait();
                write(&mut client, index)
            })
        })
        .collect();
    writers
        .into_iter()
        .map(|writer| writer.join().expect("writer thread"))
        .collect()
}

/// The single winner of a race; every loser got `VersionConflict { current }`.
fn single_winner<T: std::fmt::Debug>(results: Vec<Result<T, ClientError>>, current: u64) -> T {
    let mut winners = Vec::new();
    for result in results {
        match result {
            Ok(value) => winners.push(value),
            Err(ClientError::Server(ErrorReply::VersionConflict { current: got })) => {
                assert_eq!(got, current, "a loser was told the wrong current version");
            }
            Err(error) => panic!("a writer failed otherwise than by a conflict: {error}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    winners.pop().expect("one winner")
}

fn conflict_of(result: Result<impl std::fmt::Debug, ClientError>) -> u64 {
    match result {
        Err(ClientError::Server(ErrorReply::VersionConflict { current })) => current,
        other => panic!("expected VersionConflict, got {other:?}"),
    }
}

#[test]
fn concurrent_puts_with_one_version_have_one_winner() {
    let node = Node::start(&scratch_dir("locking-put"), SHARDS, CORES);
    let mut client = node.client();
    const SKU: u64 = 501;
    let mut item = client.put_item(SKU, 10, 100, None).expect("create item");
    for _ in 0..ROUNDS {
        let expected = item.version;
        let results = race(&node, move |client, index| {
            let index = index as u64;
            client.put_item(SKU, 1000 + index, 200 + index, Some(expected))
        });
        let winner: Item = single_winner(results, expected + 1);
        assert_eq!(winner.version, expected + 1, "{winner:?}");
        let index = winner.available - 1000;
        assert!(index < WRITERS as u64, "{winner:?}");
        assert_eq!(winner.price_cents, 200 + index, "the winner's own write");
        // Only the winner's write is in the record.
        item = client.get_item(SKU).expect("read item");
        assert_eq!(item, winner);
    }

    // A stale version after the races is refused and changes nothing.
    let stale = conflict_of(client.put_item(SKU, 1, 1, Some(item.version - 1)));
    assert_eq!(stale, item.version);
    assert_eq!(client.get_item(SKU).expect("read item"), item);
}

#[test]
fn creating_with_version_zero_happens_once() {
    let node = Node::start(&scratch_dir("locking-create"), SHARDS, CORES);
    let mut client = node.client();

    // A missing item has version 0: any other expected version conflicts and creates
    // nothing.
    const MISSING_SKU: u64 = 601;
    assert_eq!(conflict_of(client.put_item(MISSING_SKU, 5, 5, Some(3))), 0);
    let error = client.get_item(MISSING_SKU).expect_err("still missing");
    assert!(
        matches!(error, ClientError::Server(ErrorReply::NotFound)),
        "{error}"
    );

    // Sequential: the first put with version 0 creates, the second conflicts.
    const SKU: u64 = 602;
    let created = client.put_item(SKU, 5, 50, Some(0)).expect("create");
    assert_eq!(
        (
            created.sku,
            created.available,
            created.price_cents,
            created.version
        ),
        (SKU, 5, 50, 1)
    );
    assert_eq!(conflict_of(client.put_item(SKU, 6, 60, Some(0))), 1);
    assert_eq!(client.get_item(SKU).expect("read"), created);

    // Concurrent: of many creators, one.
    const RACED_SKU: u64 = 603;
    let results = race(&node, |client, index| {
        client.put_item(RACED_SKU, 10 + index as u64, 70, Some(0))
    });
    let winner = single_winner(results, 1);
    assert_eq!(winner.version, 1);
    assert_eq!(client.get_item(RACED_SKU).expect("read"), winner);
}

fn place(client: &mut Client, sku: u64, quantity: u64) -> Order {
    let order_id = client.new_order_id(sku);
    let order = client
        .place_order(&PlaceOrder {
            order_id,
            customer: 4,
            lines: vec![OrderLine { sku, quantity }],
            payment: Payment::None,
        })
        .expect("place order");
    assert_eq!(order.status, OrderStatus::Committed, "{order:?}");
    order
}

#[test]
fn cancelling_with_a_stale_version_conflicts() {
    let node = Node::start(&scratch_dir("locking-cancel"), SHARDS, CORES);
    let mut client = node.client();
    const SKU: u64 = 701;
    client.put_item(SKU, 100, 10, None).expect("create item");
    let order = place(&mut client, SKU, 4);
    let sold = client.get_item(SKU).expect("read item");
    assert_eq!((sold.available, sold.sold), (96, 4));

    for stale in [0, order.version + 1, order.version + 100] {
        let current = conflict_of(client.cancel_order(order.order_id, Some(stale)));
        assert_eq!(current, order.version, "stale version {stale}");
    }
    assert_eq!(client.get_order(order.order_id).expect("read"), order);
    assert_eq!(client.get_item(SKU).expect("read item"), sold);

    let cancelled = client
        .cancel_order(order.order_id, Some(order.version))
        .expect("cancel with the current version");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(cancelled.version, order.version + 1);
    // The version that just won is now stale.
    let current = conflict_of(client.cancel_order(order.order_id, Some(order.version)));
    assert_eq!(current, cancelled.version);
    assert_eq!(client.get_order(order.order_id).expect("read"), cancelled);
    let released = client.get_item(SKU).expect("read item");
    assert_eq!(
        (released.available, released.sold),
        (100, 0),
        "{released:?}"
    );

    // Concurrent cancels holding the same version: one cancels, the stock comes back once.
    let order = place(&mut client, SKU, 7);
    let (order_id, expected) = (order.order_id, order.version);
    let results = race(&node, move |client, _| {
        client.cancel_order(order_id, Some(expected))
    });
    let winner = single_winner(results, expected + 1);
    assert_eq!(winner.status, OrderStatus::Cancelled);
    assert_eq!(client.get_order(order_id).expect("read"), winner);
    let released = client.get_item(SKU).expect("read item");
    assert_eq!(
        (released.available, released.reserved, released.sold),
        (100, 0, 0),
        "{released:?}"
    );
}
