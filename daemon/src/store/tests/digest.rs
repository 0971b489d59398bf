//! The store's digest through applied entries: every change moves it, no-ops do not, it
//! survives snapshots, and a damaged snapshot is refused.

use super::*;

/// Applies `step`; asserts that the digest moved and still equals a recomputation.
fn changes(
    harness: &mut Harness,
    what: &str,
    step: impl FnOnce(&mut Harness) -> Applied,
) -> Applied {
    let before = harness.store.digest();
    let applied = step(harness);
    assert_ne!(
        harness.store.digest(),
        before,
        "{what} left the digest alone"
    );
    assert_eq!(
        harness.store.digest(),
        harness.store.recompute_digest(),
        "{what}: incremental digest drifted"
    );
    applied
}

/// Applies `step`; asserts that the digest did not move.
fn keeps(harness: &mut Harness, what: &str, step: impl FnOnce(&mut Harness) -> Applied) {
    let before = harness.store.clone();
    step(harness);
    assert_eq!(
        harness.store.digest(),
        before.digest(),
        "{what} moved the digest"
    );
    assert_eq!(
        harness.store.recompute_digest(),
        before.digest(),
        "{what} changed a record"
    );
}

fn put_operation(sku: u64, available: u64, price_cents: u64) -> Operation {
    Operation::PutItem(PutItem {
        sku,
        available,
        price_cents,
        expected_version: None,
    })
}

fn participant_command(order_id: u128, action: ParticipantAction) -> Command {
    Command::Participant(ParticipantRequest {
        order_id,
        coordinator: 0,
        participant: 1,
        action,
    })
}

fn prepare(lines: &[(u64, u64)]) -> ParticipantAction {
    ParticipantAction::Prepare {
        lines: lines
            .iter()
            .map(|(sku, quantity)| OrderLine {
                sku: *sku,
                quantity: *quantity,
            })
            .collect(),
    }
}

fn prices_of(applied: &Applied) -> Vec<crate::txn::message::LinePrice> {
    match applied.effects.as_slice() {
        [Effect::ToCoordinator { reply, .. }] => match &reply.state {
            ParticipantState::Prepared { prices } => prices.clone(),
            state => panic!("expected prepared, got {state:?}"),
        },
        effects => panic!("expected one reply, got {effects:?}"),
    }
}

#[test]
fn every_item_and_single_shard_operation_changes_the_digest() {
    let mut shard = Harness::new(0);
    let sku = sku_on(0, 0);
    let missing = sku_on(0, 1);
    changes(&mut shard, "PutItem (new)", |h| {
        h.apply_operation(put_operation(sku, 10, 5))
    });
    changes(&mut shard, "PutItem (existing)", |h| {
        h.apply_operation(put_operation(sku, 10, 6))
    });
    let restock = Operation::Restock { sku, quantity: 5 };
    changes(&mut shard, "Restock", |h| h.apply_operation(restock));
    changes(&mut shard, "1-step order", |h| {
        h.apply_operation(place(1, &[(sku, 1)]))
    });
    changes(&mut shard, "order short of stock", |h| {
        h.apply_operation(place(2, &[(sku, 99)]))
    });
    changes(&mut shard, "order of an unknown sku", |h| {
        h.apply_operation(place(3, &[(missing, 1)]))
    });
    let card = Operation::PlaceOrder(PlaceOrder {
        order_id: 4,
        customer: 9,
        lines: vec![OrderLine { sku, quantity: 1 }],
        payment: Payment::Card {
            token: "tok".to_string(),
        },
    });
    changes(&mut shard, "card order (declined)", |h| {
        h.apply_operation(card)
    });
    let cancel = Operation::CancelOrder {
        order_id: 1,
        expected_version: Some(1),
    };
    changes(&mut shard, "cancel", |h| h.apply_operation(cancel));
}

#[test]
fn every_two_phase_commit_step_changes_the_digest() {
    let mut coordinator = Harness::new(0);
    let mut participant = Harness::new(1);
    let (local, remote) = (sku_on(0, 0), sku_on(1, 0));
    coordinator.put(local, 10);
    participant.put(remote, 10);
    let order = place(4, &[(local, 1), (remote, 2)]);
    changes(&mut coordinator, "cross-shard place", |h| {
        h.apply_operation(order)
    });
    let prepared = changes(&mut participant, "prepare", |h| {
        h.apply_command(participant_command(4, prepare(&[(remote, 2)])))
    });
    let decision = Decision::Commit {
        prices: prices_of(&prepared),
    };
    changes(&mut coordinator, "commit decision", |h| {
        h.apply_command(Command::Decide {
            order_id: 4,
            decision,
        })
    });
    changes(&mut participant, "participant commit", |h| {
        h.apply_command(participant_command(4, ParticipantAction::Commit))
    });
    let complete = |phase| Command::Complete { order_id: 4, phase };
    changes(&mut coordinator, "complete", |h| {
        h.apply_command(complete(TxnPhase::Committing))
    });
    let cancel = Operation::CancelOrder {
        order_id: 4,
        expected_version: None,
    };
    changes(&mut coordinator, "cancel (releasing)", |h| {
        h.apply_operation(cancel)
    });
    changes(&mut participant, "participant release", |h| {
        h.apply_command(participant_command(4, ParticipantAction::Release))
    });
    changes(&mut coordinator, "complete release", |h| {
        h.apply_command(complete(TxnPhase::Releasing))
    });
}

#[test]
fn every_abort_step_changes_the_digest() {
    let mut coordinator = Harness::new(0);
    let mut participant = Harness::new(1);
    let (local, remote) = (sku_on(0, 0), sku_on(1, 0));
    coordinator.put(local, 10);
    participant.put(remote, 10);
    coordinator.apply_operation(place(5, &[(local, 1), (remote, 1)]));
    changes(&mut participant, "prepare of order 5", |h| {
        h.apply_command(participant_command(5, prepare(&[(remote, 1)])))
    });
    changes(&mut participant, "refused prepare", |h| {
        h.apply_command(participant_command(6, prepare(&[(remote, 99)])))
    });
    let reason = RejectReason::InsufficientStock {
        sku: remote,
        available: 9,
    };
    changes(&mut coordinator, "abort decision", |h| {
        h.apply_command(Command::Decide {
            order_id: 5,
            decision: Decision::Abort { reason },
        })
    });
    changes(&mut participant, "abort of a prepared order", |h| {
        h.apply_command(participant_command(5, ParticipantAction::Abort))
    });
    changes(&mut participant, "abort of a refused order", |h| {
        h.apply_command(participant_command(6, ParticipantAction::Abort))
    });
    changes(&mut participant, "abort fencing a prepare", |h| {
        h.apply_command(participant_command(7, ParticipantAction::Abort))
    });
}

#[test]
fn entries_that_change_no_record_leave_the_digest_alone() {
    let mut coordinator = Harness::new(0);
    let mut participant = Harness::new(1);
    let (local, remote) = (sku_on(0, 0), sku_on(1, 0));
    coordinator.put(local, 10);
    participant.put(remote, 10);
    coordinator.apply_operation(place(1, &[(local, 1)]));
    keeps(&mut coordinator, "resend", |h| {
        h.apply_operation(place(1, &[(local, 1)]))
    });
    let conflict = Operation::PutItem(PutItem {
        expected_version: Some(7),
        ..PutItem {
            sku: local,
            available: 1,
            price_cents: 1,
            expected_version: None,
        }
    });
    keeps(&mut coordinator, "version conflict", |h| {
        h.apply_operation(conflict)
    });
    let unknown = Operation::Restock {
        sku: sku_on(0, 1),
        quantity: 1,
    };
    keeps(&mut coordinator, "restock of an unknown item", |h| {
        h.apply_operation(unknown)
    });
    let cancel = |order_id| Operation::CancelOrder {
        order_id,
        expected_version: None,
    };
    keeps(&mut coordinator, "cancel of an unknown order", |h| {
        h.apply_operation(cancel(9))
    });
    keeps(&mut coordinator, "noop", |h| {
        h.apply_entry(EntryKind::Noop, AlignedVec::new())
    });
    let read = Operation::GetItem { sku: local };
    keeps(&mut coordinator, "logged read", |h| h.apply_operation(read));
    coordinator.apply_operation(cancel(1));
    keeps(&mut coordinator, "second cancel", |h| {
        h.apply_operation(cancel(1))
    });
    coordinator.apply_operation(place(4, &[(local, 1), (remote, 2)]));
    let prepared = participant.apply_command(participant_command(4, prepare(&[(remote, 2)])));
    keeps(&mut participant, "duplicate prepare", |h| {
        h.apply_command(participant_command(4, prepare(&[(remote, 2)])))
    });
    let decide = || Command::Decide {
        order_id: 4,
        decision: Decision::Commit {
            prices: prices_of(&prepared),
        },
    };
    coordinator.apply_command(decide());
    keeps(&mut coordinator, "duplicate decision", |h| {
        h.apply_command(decide())
    });
    let complete = |phase| Command::Complete { order_id: 4, phase };
    keeps(&mut coordinator, "completion of another phase", |h| {
        h.apply_command(complete(TxnPhase::Releasing))
    });
    coordinator.apply_command(complete(TxnPhase::Committing));
    keeps(&mut coordinator, "duplicate completion", |h| {
        h.apply_command(complete(TxnPhase::Committing))
    });
}

#[test]
fn stores_with_equal_records_have_equal_digests_whatever_the_order() {
    let skus: Vec<u64> = (0..5).map(|nth| sku_on(0, nth)).collect();
    let mut forward = Harness::new(0);
    let mut backward = Harness::new(0);
    for sku in &skus {
        forward.put(*sku, *sku);
    }
    for sku in skus.iter().rev() {
        backward.put(*sku, *sku);
    }
    assert_eq!(
        forward.store.items().collect::<Vec<_>>(),
        backward.store.items().collect::<Vec<_>>()
    );
    assert_eq!(forward.store.digest(), backward.store.digest());
    assert_ne!(forward.store.digest(), Harness::new(0).store.digest());
    let at = forward.store.digest_at();
    assert_eq!(at.applied_index, 5);
    assert_eq!(at.digest, forward.store.digest());
}

#[test]
fn a_snapshot_keeps_the_digest() {
    let mut shard = Harness::new(2);
    let sku = sku_on(2, 0);
    shard.put(sku, 9);
    shard.apply_operation(place(3, &[(sku, 2)]));
    let restored = Store::from_snapshot(2, &shard.store.to_snapshot()).expect("restore");
    assert_eq!(restored.digest(), shard.store.digest());
    assert_eq!(restored.digest_at(), shard.store.digest_at());
    assert_eq!(restored.recompute_digest(), shard.store.digest());
}

/// Replaces the one occurrence of `from` in `bytes` by `to`.
fn patch(bytes: &[u8], from: u64, to: u64) -> Vec<u8> {
    let needle = from.to_le_bytes();
    let positions: Vec<usize> = (0..=bytes.len() - needle.len())
        .filter(|position| bytes[*position..*position + needle.len()] == needle)
        .collect();
    let [position] = positions.as_slice() else {
        panic!("{from:#x} occurs {} times in the archive", positions.len())
    };
    let mut patched = bytes.to_vec();
    patched[*position..*position + needle.len()].copy_from_slice(&to.to_le_bytes());
    patched
}

#[test]
fn a_snapshot_whose_records_and_digest_disagree_is_refused() {
    let mut shard = Harness::new(0);
    let sku = sku_on(0, 0);
    // A stock figure that occurs once in the archive, so it can be found and damaged.
    let stock = 0xab_cdef_0123;
    shard.apply_operation(put_operation(sku, stock, 5));
    let bytes = shard.store.to_snapshot();
    let mut aligned = AlignedVec::<16>::new();
    for (what, damaged) in [
        ("record", patch(&bytes, stock, stock + 1)),
        ("digest", patch(&bytes, shard.store.digest(), 42)),
    ] {
        aligned.clear();
        aligned.extend_from_slice(&damaged);
        let error = Store::from_snapshot(0, &aligned).expect_err("a damaged snapshot loads");
        assert!(
            error.reason.contains("digest mismatch"),
            "damaged {what}: {error}"
        );
    }
}
