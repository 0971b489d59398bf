//! The record hashes behind the digest: every field counts, the format is pinned, and
//! the sum over records does not depend on insertion order.

use super::TestRng;
use crate::store::digest::{item_hash, order_hash, participation_hash};
use crate::store::order::{CoordinatorTxn, OrderRecord, TxnPhase};
use crate::store::participant::Participation;
use crate::store::records::Records;
use crate::txn::message::{LinePrice, ParticipantState};
use quorder_proto::{Item, Order, OrderLine, OrderLineRecord, OrderStatus, RejectReason};

/// Asserts that every variant differs from the others as a record and as a hash.
fn assert_all_distinct<T: PartialEq + std::fmt::Debug>(
    variants: &[(&str, T)],
    hash: impl Fn(&T) -> u64,
) {
    for (position, (name, record)) in variants.iter().enumerate() {
        for (other_name, other) in &variants[position + 1..] {
            assert_ne!(record, other, "{name} and {other_name} are the same record");
            assert_ne!(
                hash(record),
                hash(other),
                "{name} and {other_name} hash alike"
            );
        }
    }
}

fn item() -> Item {
    Item {
        sku: 7,
        available: 10,
        reserved: 2,
        sold: 3,
        price_cents: 250,
        version: 4,
    }
}

#[test]
fn every_item_field_changes_the_hash() {
    let base = item();
    let variants = [
        ("base", base),
        ("sku", Item { sku: 8, ..base }),
        (
            "available",
            Item {
                available: 11,
                ..base
            },
        ),
        (
            "reserved",
            Item {
                reserved: 3,
                ..base
            },
        ),
        ("sold", Item { sold: 4, ..base }),
        (
            "price",
            Item {
                price_cents: 251,
                ..base
            },
        ),
        ("version", Item { version: 5, ..base }),
        // Moving a unit between buckets keeps the sum of the fields.
        (
            "moved",
            Item {
                available: 9,
                reserved: 3,
                ..base
            },
        ),
        (
            "high bit",
            Item {
                sold: 3 | 1 << 63,
                ..base
            },
        ),
    ];
    assert_all_distinct(&variants, item_hash);
}

fn order_record() -> OrderRecord {
    let line = |sku| OrderLineRecord {
        sku,
        quantity: 2,
        unit_price_cents: 100,
    };
    OrderRecord {
        order: Order {
            order_id: 0x1234_5678_9abc_def0_0fed_cba9_8765_4321,
            customer: 9,
            lines: vec![line(1), line(2)],
            total_cents: 400,
            status: OrderStatus::Committed,
            reason: None,
            version: 2,
            created_ms: 1_000,
            updated_ms: 1_005,
        },
        txn: Some(CoordinatorTxn {
            participants: vec![1, 3],
            phase: TxnPhase::Committing,
        }),
    }
}

#[test]
fn every_order_field_changes_the_hash() {
    let base = order_record();
    let mut variants = vec![("base", base.clone())];
    let mut vary = |name, change: &dyn Fn(&mut OrderRecord)| {
        let mut record = base.clone();
        change(&mut record);
        variants.push((name, record));
    };
    vary("id low half", &|record| record.order.order_id ^= 1);
    vary("id high half", &|record| record.order.order_id ^= 1 << 64);
    vary("customer", &|record| record.order.customer = 10);
    vary("line sku", &|record| record.order.lines[0].sku = 5);
    vary("line quantity", &|record| {
        record.order.lines[1].quantity = 3
    });
    vary("line price", &|record| {
        record.order.lines[1].unit_price_cents = 99
    });
    vary("line order", &|record| record.order.lines.reverse());
    vary("one line less", &|record| {
        record.order.lines.pop();
    });
    vary("total", &|record| record.order.total_cents = 401);
    vary("status", &|record| {
        record.order.status = OrderStatus::Cancelled
    });
    vary("queued", &|record| {
        record.order.status = OrderStatus::Queued
    });
    vary("reason", &|record| {
        record.order.reason = Some(RejectReason::UnknownSku { sku: 1 })
    });
    vary("reason sku", &|record| {
        record.order.reason = Some(RejectReason::UnknownSku { sku: 2 })
    });
    vary("stock reason", &|record| {
        let reason = RejectReason::InsufficientStock {
            sku: 1,
            available: 0,
        };
        record.order.reason = Some(reason);
    });
    vary("declined", &|record| {
        let reason = "card expired".to_string();
        record.order.reason = Some(RejectReason::PaymentDeclined { reason });
    });
    vary("declined text", &|record| {
        let reason = "card expired!".to_string();
        record.order.reason = Some(RejectReason::PaymentDeclined { reason });
    });
    vary("version", &|record| record.order.version = 3);
    vary("created", &|record| record.order.created_ms = 1_001);
    vary("updated", &|record| record.order.updated_ms = 1_006);
    vary("no txn", &|record| record.txn = None);
    vary("participants", &|record| {
        if let Some(txn) = record.txn.as_mut() {
            txn.participants = vec![1, 2];
        }
    });
    vary("phase", &|record| {
        if let Some(txn) = record.txn.as_mut() {
            txn.phase = TxnPhase::Complete;
        }
    });
    assert_all_distinct(&variants, order_hash);
}

#[test]
fn every_participation_field_changes_the_hash() {
    let base = Participation {
        coordinator: 0,
        lines: vec![OrderLine {
            sku: 5,
            quantity: 2,
        }],
        state: ParticipantState::Prepared {
            prices: vec![LinePrice {
                sku: 5,
                unit_price_cents: 105,
            }],
        },
    };
    let with_state = |state| Participation {
        state,
        ..base.clone()
    };
    let refused = |sku| ParticipantState::Refused {
        reason: RejectReason::UnknownSku { sku },
    };
    let variants = [
        ("base", base.clone()),
        (
            "coordinator",
            Participation {
                coordinator: 2,
                ..base.clone()
            },
        ),
        (
            "no lines",
            Participation {
                lines: Vec::new(),
                ..base.clone()
            },
        ),
        ("refused", with_state(refused(5))),
        ("refused other", with_state(refused(6))),
        ("committed", with_state(ParticipantState::Committed)),
        ("aborted", with_state(ParticipantState::Aborted)),
        ("released", with_state(ParticipantState::Released)),
        (
            "no prices",
            with_state(ParticipantState::Prepared { prices: Vec::new() }),
        ),
    ];
    assert_all_distinct(&variants, |participation| {
        participation_hash(77, participation)
    });
    assert_ne!(
        participation_hash(77, &base),
        participation_hash(78, &base),
        "the key is part of the record"
    );
}

#[test]
fn the_hash_format_is_pinned() {
    // Mirrors running different builds compare digests: a change here is a format change
    // (bump DIGEST_FORMAT), never an accident.
    assert_eq!(item_hash(&item()), GOLDEN_ITEM_HASH);
    assert_eq!(order_hash(&order_record()), GOLDEN_ORDER_HASH);
}

const GOLDEN_ITEM_HASH: u64 = 0x2411_5f6e_133a_940d;
const GOLDEN_ORDER_HASH: u64 = 0xd253_1ff4_d64f_0492;

/// Records of every kind, with distinct keys.
fn sample_records(rng: &mut TestRng, count: u64) -> Vec<Record> {
    (0..count)
        .map(|key| {
            let value = rng.below(1_000);
            match key % 3 {
                0 => Record::Item(Item {
                    sku: key,
                    available: value,
                    ..item()
                }),
                1 => {
                    let mut record = order_record();
                    record.order.order_id = u128::from(key);
                    record.order.total_cents = value;
                    Record::Order(record)
                }
                _ => Record::Participation(
                    u128::from(key),
                    Participation {
                        coordinator: (value % 4) as u32,
                        lines: Vec::new(),
                        state: ParticipantState::Aborted,
                    },
                ),
            }
        })
        .collect()
}

#[derive(Clone)]
enum Record {
    Item(Item),
    Order(OrderRecord),
    Participation(u128, Participation),
}

fn insert_all(records: &mut Records, all: &[Record]) {
    for record in all.iter().cloned() {
        match record {
            Record::Item(item) => records.put_item(item),
            Record::Order(order) => records.insert_order(order),
            Record::Participation(order_id, participation) => {
                records.insert_participation(order_id, participation)
            }
        }
    }
}

#[test]
fn the_digest_does_not_depend_on_insertion_order() {
    for seed in 0..20 {
        let mut rng = TestRng(seed);
        let mut all = sample_records(&mut rng, 60);
        let mut first = Records::default();
        insert_all(&mut first, &all);
        // Fisher-Yates with the seeded generator.
        for position in (1..all.len()).rev() {
            all.swap(position, rng.below(position as u64 + 1) as usize);
        }
        let mut second = Records::default();
        insert_all(&mut second, &all);
        assert_eq!(first, second, "seed {seed}");
        assert_eq!(first.digest(), second.digest(), "seed {seed}");
        assert_eq!(first.digest(), first.recompute_digest(), "seed {seed}");
        assert_ne!(first.digest(), Records::default().digest(), "seed {seed}");
        // Taking a record out and putting it back restores the digest exactly.
        let digest = first.digest();
        let order = first.take_order(1).expect("order 1 is a sample");
        assert_ne!(first.digest(), digest, "seed {seed}");
        first.insert_order(order);
        assert_eq!(first.digest(), digest, "seed {seed}");
    }
}
