use super::*;
use crate::entry::{encode_command, Command, Decision};
use crate::txn::message::{ParticipantAction, ParticipantState};
use quorder_proto::codec::encode_operation;
use quorder_proto::shard::shard_of_sku;
use quorder_proto::{
    Operation, OrderLine, OrderStatus, Payment, PlaceOrder, PutItem, RejectReason,
};
use rkyv::util::AlignedVec;

const SHARDS: u32 = 4;

mod digest;
mod random;
mod record_hash;

/// splitmix64: a seeded generator for the randomized tests, so a failure replays from
/// the seed it prints.
struct TestRng(u64);

impl TestRng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut value = self.0;
        value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        value ^ (value >> 31)
    }

    /// Uniform enough in `0..bound` for tests (`bound` > 0).
    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A store of `shard` with helpers to apply entries in sequence; it keeps the entries
/// it applied so that another store can replay them.
struct Harness {
    store: Store,
    log: Vec<(EntryKind, AlignedVec)>,
}

impl Harness {
    fn new(shard: u32) -> Harness {
        Harness {
            store: Store::new(shard, SHARDS),
            log: Vec::new(),
        }
    }

    fn apply_operation(&mut self, operation: Operation) -> Applied {
        let payload = encode_operation(&operation).expect("encode");
        self.apply_entry(EntryKind::Operation, payload)
    }

    fn apply_command(&mut self, command: Command) -> Applied {
        self.apply_entry(EntryKind::Command, encode_command(&command))
    }

    fn apply_entry(&mut self, kind: EntryKind, payload: AlignedVec) -> Applied {
        let index = self.store.applied_index() + 1;
        let applied = apply_logged(&mut self.store, index, kind, &payload);
        self.log.push((kind, payload));
        applied
    }

    fn put(&mut self, sku: u64, available: u64) {
        let put = PutItem {
            sku,
            available,
            price_cents: 100 + sku,
            expected_version: None,
        };
        self.apply_operation(Operation::PutItem(put));
    }
}

/// Applies entry `index` as the harness does: term 1, timestamp derived from the index.
fn apply_logged(store: &mut Store, index: u64, kind: EntryKind, payload: &[u8]) -> Applied {
    store.apply(1, index, 1000 + index, kind, payload)
}

fn sku_on(shard: u32, nth: usize) -> u64 {
    (0..)
        .filter(|sku| shard_of_sku(*sku, SHARDS) == shard)
        .nth(nth)
        .expect("a sku")
}

fn place(order_id: u128, lines: &[(u64, u64)]) -> Operation {
    Operation::PlaceOrder(PlaceOrder {
        order_id,
        customer: 9,
        lines: lines
            .iter()
            .map(|(sku, quantity)| OrderLine {
                sku: *sku,
                quantity: *quantity,
            })
            .collect(),
        payment: Payment::None,
    })
}

fn order_of(applied: &Applied) -> Order {
    match &applied.reply {
        Some(Reply::Order(order)) => order.clone(),
        other => panic!("expected an order, got {other:?}"),
    }
}

#[test]
fn single_shard_order_sells_at_once_and_is_idempotent() {
    let mut shard = Harness::new(0);
    let sku = sku_on(0, 0);
    shard.put(sku, 5);
    let first = order_of(&shard.apply_operation(place(77, &[(sku, 3)])));
    assert_eq!(first.status, OrderStatus::Committed);
    assert_eq!(first.total_cents, 3 * (100 + sku));
    let again = order_of(&shard.apply_operation(place(77, &[(sku, 3)])));
    assert_eq!(again, first, "a resend returns the first outcome");
    let item = shard.store.item(sku).expect("item");
    assert_eq!(
        (item.available, item.reserved, item.sold),
        (2, 0, 3),
        "nothing reserved twice"
    );
}

#[test]
fn no_oversell_on_the_last_units() {
    let mut shard = Harness::new(0);
    let sku = sku_on(0, 0);
    shard.put(sku, 2);
    let outcomes: Vec<Order> = (1..=4)
        .map(|id| order_of(&shard.apply_operation(place(id, &[(sku, 1)]))))
        .collect();
    let committed = outcomes
        .iter()
        .filter(|order| order.status == OrderStatus::Committed)
        .count();
    assert_eq!(committed, 2);
    for order in outcomes
        .iter()
        .filter(|order| order.status == OrderStatus::Rejected)
    {
        assert_eq!(
            order.reason,
            Some(RejectReason::InsufficientStock { sku, available: 0 })
        );
    }
}

#[test]
fn put_item_compare_and_set() {
    let mut shard = Harness::new(0);
    let put = |expected| {
        Operation::PutItem(PutItem {
            sku: 1,
            available: 10,
            price_cents: 5,
            expected_version: expected,
        })
    };
    assert!(
        matches!(shard.apply_operation(put(Some(0))).reply, Some(Reply::Item(item)) if item.version == 1)
    );
    let conflict = shard.apply_operation(put(Some(0))).reply;
    assert_eq!(
        conflict,
        Some(Reply::Error(ErrorReply::VersionConflict { current: 1 }))
    );
    assert!(
        matches!(shard.apply_operation(put(Some(1))).reply, Some(Reply::Item(item)) if item.version == 2)
    );
}

#[test]
fn cross_shard_commit_moves_reserved_to_sold_on_both_sides() {
    let mut coordinator = Harness::new(0);
    let mut participant = Harness::new(1);
    let local = sku_on(0, 0);
    let remote = sku_on(1, 0);
    coordinator.put(local, 4);
    participant.put(remote, 4);
    let applied = coordinator.apply_operation(place(5, &[(local, 1), (remote, 2)]));
    assert_eq!(applied.reply, None, "answered only after the decision");
    let [Effect::ToParticipant(request)] = applied.effects.as_slice() else {
        panic!("expected one prepare, got {:?}", applied.effects)
    };
    assert_eq!(
        coordinator.store.item(local).map(|item| item.reserved),
        Some(1)
    );
    let prepared = participant.apply_command(Command::Participant(request.clone()));
    let [Effect::ToCoordinator { reply, .. }] = prepared.effects.as_slice() else {
        panic!()
    };
    let ParticipantState::Prepared { prices } = &reply.state else {
        panic!("{reply:?}")
    };
    assert_eq!(
        participant.store.item(remote).map(|item| item.reserved),
        Some(2)
    );
    let decided = coordinator.apply_command(Command::Decide {
        order_id: 5,
        decision: Decision::Commit {
            prices: prices.clone(),
        },
    });
    assert!(decided
        .effects
        .contains(&Effect::OrderSettled { order_id: 5 }));
    let order = coordinator.store.order(5).expect("order").clone();
    assert_eq!(order.status, OrderStatus::Committed);
    assert_eq!(order.total_cents, (100 + local) + 2 * (100 + remote));
    let commit = ParticipantRequest {
        action: ParticipantAction::Commit,
        ..request.clone()
    };
    participant.apply_command(Command::Participant(commit));
    let item = participant.store.item(remote).expect("item");
    assert_eq!((item.available, item.reserved, item.sold), (2, 0, 2));
    coordinator.apply_command(Command::Complete {
        order_id: 5,
        phase: TxnPhase::Committing,
    });
    assert_eq!(coordinator.store.open_transactions().count(), 0);
}

#[test]
fn abort_fences_a_late_prepare() {
    let mut participant = Harness::new(1);
    let remote = sku_on(1, 0);
    participant.put(remote, 4);
    let request = |action| ParticipantRequest {
        order_id: 8,
        coordinator: 0,
        participant: 1,
        action,
    };
    participant.apply_command(Command::Participant(request(ParticipantAction::Abort)));
    let prepare = ParticipantAction::Prepare {
        lines: vec![OrderLine {
            sku: remote,
            quantity: 1,
        }],
    };
    let late = participant.apply_command(Command::Participant(request(prepare)));
    let [Effect::ToCoordinator { reply, .. }] = late.effects.as_slice() else {
        panic!()
    };
    assert_eq!(reply.state, ParticipantState::Aborted);
    assert_eq!(
        participant.store.item(remote).map(|item| item.available),
        Some(4)
    );
}

#[test]
fn snapshot_round_trip_preserves_state() {
    let mut shard = Harness::new(2);
    let sku = sku_on(2, 0);
    shard.put(sku, 9);
    shard.apply_operation(place(3, &[(sku, 2)]));
    let bytes = shard.store.to_snapshot();
    let restored = Store::from_snapshot(2, &bytes).expect("restore");
    assert_eq!(restored, shard.store);
    assert!(
        Store::from_snapshot(1, &bytes).is_err(),
        "a snapshot of another shard is refused"
    );
}
