//! The records of one shard and the running digest over them.
//!
//! The maps are private to this module: every write goes through one of the methods
//! below, each of which moves the digest by (new hash − old hash) of the record it
//! touches. So no mutation can bypass the digest, and keeping it costs O(1) hashes per
//! changed record. [`Records::recompute_digest`] is the O(n) audit of that bookkeeping.

use super::digest::{item_hash, order_hash, participation_hash};
use super::order::{OrderRecord, TxnPhase};
use super::participant::Participation;
use quorder_proto::Item;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Items, orders (with their transaction records) and participations of a shard.
///
/// The digest is archived with the maps so that a snapshot carries it and loading can
/// check it against a recomputation (see `Store::from_snapshot`).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Records {
    items: BTreeMap<u64, Item>,
    orders: BTreeMap<u128, OrderRecord>,
    participations: BTreeMap<u128, Participation>,
    /// Wrapping sum of the hashes of every record above.
    digest: u64,
}

impl Records {
    /// The digest kept up to date by every write.
    pub(super) fn digest(&self) -> u64 {
        self.digest
    }

    /// The digest recomputed from every record (O(n)).
    pub(super) fn recompute_digest(&self) -> u64 {
        let items = self.items.values().map(item_hash);
        let orders = self.orders.values().map(order_hash);
        let participations = self
            .participations
            .iter()
            .map(|(order_id, participation)| participation_hash(*order_id, participation));
        items
            .chain(orders)
            .chain(participations)
            .fold(0, u64::wrapping_add)
    }

    /// Orders whose transaction is not complete, derived from the records (the store
    /// keeps this set as an index; a snapshot load checks the two agree).
    pub(super) fn derive_open_transactions(&self) -> BTreeSet<u128> {
        self.orders
            .iter()
            .filter(|(_, record)| {
                record
                    .txn
                    .as_ref()
                    .is_some_and(|txn| txn.phase != TxnPhase::Complete)
            })
            .map(|(order_id, _)| *order_id)
            .collect()
    }

    fn replace_hash(&mut self, old: u64, new: u64) {
        self.digest = self.digest.wrapping_sub(old).wrapping_add(new);
    }

    pub(super) fn item(&self, sku: u64) -> Option<&Item> {
        self.items.get(&sku)
    }

    pub(super) fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.values()
    }

    /// Writes an item, new or replacing the one with its SKU.
    pub(super) fn put_item(&mut self, item: Item) {
        let old = self.items.insert(item.sku, item);
        self.replace_hash(old.as_ref().map_or(0, item_hash), item_hash(&item));
    }

    /// Changes an existing item in place (one lookup, for the per-line hot path).
    pub(super) fn update_item<R>(
        &mut self,
        sku: u64,
        change: impl FnOnce(&mut Item) -> R,
    ) -> Option<R> {
        let item = self.items.get_mut(&sku)?;
        let old = item_hash(item);
        let result = change(item);
        assert_eq!(item.sku, sku, "an item update changed the key");
        let new = item_hash(item);
        self.replace_hash(old, new);
        Some(result)
    }

    pub(super) fn order(&self, order_id: u128) -> Option<&OrderRecord> {
        self.orders.get(&order_id)
    }

    pub(super) fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// Adds an order that is not there yet (the store's idempotency check comes first).
    pub(super) fn insert_order(&mut self, record: OrderRecord) {
        let hash = order_hash(&record);
        let order_id = record.order.order_id;
        let previous = self.orders.insert(order_id, record);
        assert!(previous.is_none(), "order {order_id:#x} recorded twice");
        self.replace_hash(0, hash);
    }

    /// Removes an order to change it; the caller puts it back with [`Records::insert_order`]
    /// (`Store::update_order` is the one caller that does both).
    pub(super) fn take_order(&mut self, order_id: u128) -> Option<OrderRecord> {
        let record = self.orders.remove(&order_id)?;
        self.replace_hash(order_hash(&record), 0);
        Some(record)
    }

    pub(super) fn participation(&self, order_id: u128) -> Option<&Participation> {
        self.participations.get(&order_id)
    }

    /// Adds a participation that is not there yet.
    pub(super) fn insert_participation(&mut self, order_id: u128, participation: Participation) {
        let hash = participation_hash(order_id, &participation);
        let previous = self.participations.insert(order_id, participation);
        assert!(
            previous.is_none(),
            "participation in {order_id:#x} recorded twice"
        );
        self.replace_hash(0, hash);
    }

    /// Removes a participation to change it; the caller puts it back.
    pub(super) fn take_participation(&mut self, order_id: u128) -> Option<Participation> {
        let participation = self.participations.remove(&order_id)?;
        self.replace_hash(participation_hash(order_id, &participation), 0);
        Some(participation)
    }
}
