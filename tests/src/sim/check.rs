//! Invariants checked by the simulator (DESIGN.md §9).

use super::Sim;
use quorder_daemon::raft::state::Role;
use quorder_daemon::txn::message::ParticipantState;
use quorder_proto::shard::shard_of_sku;
use quorder_proto::OrderStatus;
use std::collections::BTreeMap;

impl Sim {
    /// After every step: one leader per term; equal digests at equal applied index; stock
    /// conserved on every mirror; no acknowledged order lost or changed.
    pub(super) fn check(&mut self, when: &str) {
        let seed = self.seed;
        for node in self.nodes.iter().filter(|node| node.up) {
            for (shard, mirror) in &node.mirrors {
                let raft = mirror.raft();
                if raft.role() == Role::Leader {
                    let leader = *self.leaders.entry((*shard, raft.term())).or_insert(node.id);
                    assert_eq!(
                        leader,
                        node.id,
                        "seed {seed}, {when}: two leaders of shard {shard} in term {}",
                        raft.term()
                    );
                }
                let store = mirror.store();
                assert_eq!(
                    store.digest(),
                    store.recompute_digest(),
                    "seed {seed}, {when}: digest drifted on node {}",
                    node.id
                );
                let digest = *self
                    .digests
                    .entry((*shard, store.applied_index()))
                    .or_insert(store.digest());
                assert_eq!(
                    digest,
                    store.digest(),
                    "seed {seed}, {when}: node {} diverged on shard {shard} at applied index {}",
                    node.id,
                    store.applied_index()
                );
                for item in store.items() {
                    let total = item.available + item.reserved + item.sold;
                    assert_eq!(
                        total, self.options.stock_per_sku,
                        "seed {seed}, {when}: node {} broke conservation: {item:?}",
                        node.id
                    );
                }
            }
        }
        self.check_acknowledged(when);
    }

    /// Every mirror that applied past an acknowledgement holds the order as acknowledged
    /// (or cancelled after a committed acknowledgement).
    fn check_acknowledged(&self, when: &str) {
        let seed = self.seed;
        for (order_id, ack) in &self.acknowledged {
            for node in self.nodes.iter().filter(|node| node.up) {
                let Some(mirror) = node.mirrors.get(&ack.shard) else {
                    continue;
                };
                if mirror.store().applied_index() < ack.applied_index {
                    continue;
                }
                let order = mirror.store().order(*order_id);
                let order = order.unwrap_or_else(|| {
                    panic!(
                        "seed {seed}, {when}: node {} lost acknowledged order {order_id:#x}",
                        node.id
                    )
                });
                let consistent = order.status == ack.status
                    || (ack.status == OrderStatus::Committed
                        && order.status == OrderStatus::Cancelled);
                assert!(consistent, "seed {seed}, {when}: order {order_id:#x} acknowledged {:?}, node {} holds {:?}", ack.status, node.id, order.status);
            }
        }
    }

    /// After healing, on every mirror: nothing reserved, every order's lines all sold or
    /// all released at every participant, sold units equal committed orders' units.
    pub(super) fn check_quiescent(&self) {
        let seed = self.seed;
        for node in &self.nodes {
            let mut sold: BTreeMap<u64, u64> = BTreeMap::new();
            for mirror in node.mirrors.values() {
                for order_id in &self.placed {
                    let Some(record) = mirror.store().order_record(*order_id) else {
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
                        }
                    }
                    let expected = match order.status {
                        OrderStatus::Committed => ParticipantState::Committed,
                        OrderStatus::Cancelled => ParticipantState::Released,
                        _ => ParticipantState::Aborted,
                    };
                    for participant in record.txn.iter().flat_map(|txn| txn.participants.iter()) {
                        let state = node.mirrors[participant]
                            .store()
                            .participation(*order_id)
                            .map(|p| p.state.clone());
                        assert_eq!(state, Some(expected.clone()), "seed {seed}: node {}: order {order_id:#x} is {:?} but participant {participant} is {state:?}", node.id, order.status);
                    }
                }
            }
            for sku in 0..self.options.skus {
                let shard = shard_of_sku(sku, self.options.shards);
                let item = node.mirrors[&shard]
                    .store()
                    .item(sku)
                    .expect("items exist after setup");
                assert_eq!(
                    item.reserved, 0,
                    "seed {seed}: node {}: sku {sku} keeps reserved units",
                    node.id
                );
                assert_eq!(
                    item.sold,
                    sold.get(&sku).copied().unwrap_or(0),
                    "seed {seed}: node {}: sku {sku} sold differs from committed orders",
                    node.id
                );
            }
        }
    }
}
