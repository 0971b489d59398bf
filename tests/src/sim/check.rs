//! Invariants checked by the simulator (DESIGN.md §9, those that hold on one node).

use super::Sim;
use quorder_daemon::txn::message::ParticipantState;
use quorder_proto::shard::{shard_of_order, shard_of_sku};
use quorder_proto::OrderStatus;
use std::collections::BTreeMap;

impl Sim {
    /// After every step: stock conservation and no lost acknowledged order.
    pub(super) fn check(&self, when: &str) {
        let seed = self.seed;
        for sku in 0..self.options.skus {
            let shard = shard_of_sku(sku, self.options.shards) as usize;
            let item = self.shards[shard].store().item(sku);
            let item = item.unwrap_or_else(|| panic!("seed {seed}, {when}: item {sku} lost"));
            let total = item.available + item.reserved + item.sold;
            assert_eq!(
                total, self.options.stock_per_sku,
                "seed {seed}, {when}: stock of sku {sku} not conserved: {item:?}"
            );
        }
        for (order_id, ack) in &self.acknowledged {
            let shard = shard_of_order(*order_id, self.options.shards) as usize;
            let order = self.shards[shard].store().order(*order_id);
            let order = order.unwrap_or_else(|| {
                panic!("seed {seed}, {when}: acknowledged order {order_id:#x} lost")
            });
            let consistent = order.status == ack.status
                || (ack.status == OrderStatus::Committed && order.status == OrderStatus::Cancelled);
            assert!(
                consistent,
                "seed {seed}, {when}: order {order_id:#x} acknowledged {:?} but stored {:?}",
                ack.status, order.status
            );
        }
    }

    /// After healing: nothing reserved, every order's lines all sold or all released, at
    /// every participant.
    pub(super) fn check_quiescent(&self) {
        let seed = self.seed;
        let shard_count = self.options.shards;
        let mut sold: BTreeMap<u64, u64> = BTreeMap::new();
        for shard in &self.shards {
            let store = shard.store();
            for order_id in &self.placed {
                let Some(record) = store.order_record(*order_id) else {
                    continue;
                };
                let order = &record.order;
                assert_ne!(
                    order.status,
                    OrderStatus::Preparing,
                    "seed {seed}: order {order_id:#x} still preparing"
                );
                if order.status == OrderStatus::Committed {
                    for line in &order.lines {
                        *sold.entry(line.sku).or_default() += line.quantity;
                        assert!(
                            line.unit_price_cents > 0,
                            "seed {seed}: committed line without price"
                        );
                    }
                }
                let expected = match order.status {
                    OrderStatus::Committed => ParticipantState::Committed,
                    OrderStatus::Cancelled => ParticipantState::Released,
                    _ => ParticipantState::Aborted,
                };
                for participant in record.txn.iter().flat_map(|txn| txn.participants.iter()) {
                    let participation = self.shards[*participant as usize]
                        .store()
                        .participation(*order_id);
                    let state = participation.map(|participation| participation.state.clone());
                    assert_eq!(state, Some(expected.clone()), "seed {seed}: order {order_id:#x} is {:?} but participant {participant} is {state:?}", order.status);
                }
            }
        }
        for sku in 0..self.options.skus {
            let shard = shard_of_sku(sku, shard_count) as usize;
            let item = self.shards[shard].store().item(sku).expect("checked above");
            assert_eq!(
                item.reserved, 0,
                "seed {seed}: sku {sku} still has reserved units after healing"
            );
            assert_eq!(
                item.sold,
                sold.get(&sku).copied().unwrap_or(0),
                "seed {seed}: sku {sku} sold units differ from committed orders"
            );
        }
    }
}
