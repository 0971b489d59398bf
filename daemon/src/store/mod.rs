//! The shard store (DESIGN.md §3): items, orders and transaction records of one shard.
//!
//! Owned by the core that owns the shard; nothing else touches it. Applying a committed
//! entry is a pure function of (state, entry): no clock (timestamps come in the entry), no
//! randomness, and only ordered maps, so mirrors that apply the same log hold identical
//! state. Every mutation bumps the record's `version`; writes may carry an expected
//! version (optimistic locking: compare-and-set, never a lock wait).
//!
//! Stock moves between three buckets per SKU: `available` → `reserved` (prepare of a
//! cross-shard order) → `sold` (commit), or back to `available` (abort, cancel). Only
//! `PutItem` and `Restock` change the sum (invariant 3, asserted after every change).
//!
//! The records live in `records::Records`, which every write goes through and which keeps
//! a digest of them up to date in O(1) per changed record (`digest.rs`): mirrors compare
//! digests taken at the same applied index to detect divergence (DESIGN.md §8,
//! invariant 7), and a snapshot carries the digest and is checked against it on load.

mod digest;
mod order;
mod participant;
mod records;

use crate::entry::{access_command, ArchivedCommand, Command, EntryKind};
use crate::txn::message::{ParticipantReply, ParticipantRequest};
use quorder_proto::codec::access_operation;
use quorder_proto::limits::STOCK_MAX;
use quorder_proto::{ArchivedOperation, ErrorReply, Item, Order, Reply};
use records::Records;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::collections::BTreeSet;

pub use order::{CoordinatorTxn, OrderRecord, TxnPhase};
pub use participant::Participation;

/// A shard's digest and the applied index it was taken at: what mirrors exchange to
/// compare their state (DESIGN.md §8). Digests are comparable only at equal indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedDigest {
    /// Index of the last applied entry.
    pub applied_index: u64,
    /// [`Store::digest`] after applying it.
    pub digest: u64,
}

/// What applying one entry produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Reply for the client that proposed the entry, if it can be answered now. A
    /// cross-shard `PlaceOrder` has none: it is answered when its decision applies.
    pub reply: Option<Reply>,
    /// Messages and notifications for the leader to act on (followers drop them).
    pub effects: Vec<Effect>,
}

/// Something the leader must do because an entry was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a request to a participant shard.
    ToParticipant(ParticipantRequest),
    /// Answer a coordinator shard.
    ToCoordinator {
        /// The coordinator.
        coordinator: u32,
        /// The answer.
        reply: ParticipantReply,
    },
    /// The order reached a final status for now; clients waiting on it can be answered.
    OrderSettled {
        /// The order.
        order_id: u128,
    },
}

/// State of one shard.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Store {
    shard: u32,
    shard_count: u32,
    /// Items, orders, participations and their running digest; written only through
    /// `Records`' methods so that the digest follows every change.
    records: Records,
    /// Orders coordinated here whose transaction is not complete (to re-drive them). An
    /// index derivable from the orders (phase not `Complete`), so not in the digest.
    open_transactions: BTreeSet<u128>,
    applied_index: u64,
    applied_term: u64,
}

/// Error loading a snapshot body.
#[derive(Debug, thiserror::Error)]
#[error("snapshot body of shard {shard} is not a valid store archive: {reason}")]
pub struct SnapshotDecodeError {
    /// The shard.
    pub shard: u32,
    /// What failed.
    pub reason: String,
}

impl Store {
    /// Empty store of `shard` in a cluster of `shard_count` shards.
    pub fn new(shard: u32, shard_count: u32) -> Store {
        assert!(shard < shard_count);
        Store {
            shard,
            shard_count,
            records: Records::default(),
            open_transactions: BTreeSet::new(),
            applied_index: 0,
            applied_term: 0,
        }
    }

    /// The shard this store holds.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// Index of the last applied entry.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Term of the last applied entry.
    pub fn applied_term(&self) -> u64 {
        self.applied_term
    }

    /// Applies committed entry `index`. Entries must come in index order, each once.
    pub fn apply(
        &mut self,
        term: u64,
        index: u64,
        timestamp_ms: u64,
        kind: EntryKind,
        payload: &[u8],
    ) -> Applied {
        assert_eq!(
            index,
            self.applied_index + 1,
            "shard {} applies out of order",
            self.shard
        );
        assert!(
            term >= self.applied_term,
            "shard {} term went backwards",
            self.shard
        );
        self.applied_index = index;
        self.applied_term = term;
        match kind {
            EntryKind::Noop => Applied::default(),
            EntryKind::Operation => match access_operation(payload) {
                Ok(operation) => self.apply_operation(operation, timestamp_ms),
                Err(error) => undecodable(self.shard, index, &error.to_string()),
            },
            EntryKind::Command => match access_command(payload) {
                Ok(command) => self.apply_command(command, timestamp_ms),
                Err(error) => undecodable(self.shard, index, &error.to_string()),
            },
        }
    }

    fn apply_operation(&mut self, operation: &ArchivedOperation, timestamp_ms: u64) -> Applied {
        let reply = match operation {
            ArchivedOperation::PutItem(put) => self.put_item(
                put.sku.to_native(),
                put.available.to_native(),
                put.price_cents.to_native(),
                put.expected_version
                    .as_ref()
                    .map(|version| version.to_native()),
            ),
            ArchivedOperation::Restock { sku, quantity } => {
                self.restock(sku.to_native(), quantity.to_native())
            }
            ArchivedOperation::PlaceOrder(place) => return self.place_order(place, timestamp_ms),
            ArchivedOperation::CancelOrder {
                order_id,
                expected_version,
            } => {
                let expected = expected_version.as_ref().map(|version| version.to_native());
                return self.cancel_order(order_id.to_native(), expected, timestamp_ms);
            }
            // Reads are never logged; a logged read is answered like one.
            ArchivedOperation::Ping { .. }
            | ArchivedOperation::GetItem { .. }
            | ArchivedOperation::GetOrder { .. } => self.read(operation),
        };
        Applied {
            reply: Some(reply),
            effects: Vec::new(),
        }
    }

    fn apply_command(&mut self, command: &ArchivedCommand, timestamp_ms: u64) -> Applied {
        let command = match rkyv::deserialize::<Command, rancor::Error>(command) {
            Ok(command) => command,
            Err(error) => return undecodable(self.shard, self.applied_index, &error.to_string()),
        };
        match command {
            Command::Participant(request) => self.apply_participant_request(&request),
            Command::Decide { order_id, decision } => {
                self.apply_decision(order_id, decision, timestamp_ms)
            }
            Command::Complete { order_id, phase } => self.complete_transaction(order_id, phase),
        }
    }

    /// Answers a read (`GetItem`, `GetOrder`, `Ping`) from applied state.
    pub fn read(&self, operation: &ArchivedOperation) -> Reply {
        match operation {
            ArchivedOperation::GetItem { sku } => match self.records.item(sku.to_native()) {
                Some(item) => Reply::Item(*item),
                None => Reply::Error(ErrorReply::NotFound),
            },
            ArchivedOperation::GetOrder { order_id } => {
                match self.records.order(order_id.to_native()) {
                    Some(record) => Reply::Order(record.order.clone()),
                    None => Reply::Error(ErrorReply::NotFound),
                }
            }
            ArchivedOperation::Ping { nonce } => Reply::Pong {
                nonce: nonce.to_native(),
                shard_count: self.shard_count,
            },
            _ => Reply::Error(ErrorReply::Internal {
                message: "a write was routed to the read path".to_string(),
            }),
        }
    }

    fn put_item(
        &mut self,
        sku: u64,
        available: u64,
        price_cents: u64,
        expected_version: Option<u64>,
    ) -> Reply {
        let current = self.records.item(sku).copied().unwrap_or(Item {
            sku,
            ..Item::default()
        });
        if let Some(expected) = expected_version {
            if expected != current.version {
                return Reply::Error(ErrorReply::VersionConflict {
                    current: current.version,
                });
            }
        }
        let total = available
            .saturating_add(current.reserved)
            .saturating_add(current.sold);
        if total > STOCK_MAX {
            return Reply::Error(ErrorReply::Invalid {
                field: "available".to_string(),
                reason: format!("available + reserved + sold would exceed {STOCK_MAX}"),
            });
        }
        let item = Item {
            available,
            price_cents,
            version: current.version + 1,
            ..current
        };
        self.records.put_item(item);
        Reply::Item(item)
    }

    fn restock(&mut self, sku: u64, quantity: u64) -> Reply {
        let Some(current) = self.records.item(sku).copied() else {
            return Reply::Error(ErrorReply::NotFound);
        };
        if item_total(&current).saturating_add(quantity) > STOCK_MAX {
            return Reply::Error(ErrorReply::Invalid {
                field: "quantity".to_string(),
                reason: format!("available + reserved + sold would exceed {STOCK_MAX}"),
            });
        }
        let item = Item {
            available: current.available + quantity,
            version: current.version + 1,
            ..current
        };
        self.records.put_item(item);
        Reply::Item(item)
    }

    /// Item by SKU.
    pub fn item(&self, sku: u64) -> Option<&Item> {
        self.records.item(sku)
    }

    /// All items in SKU order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.records.items()
    }

    /// Order coordinated here, by id.
    pub fn order(&self, order_id: u128) -> Option<&Order> {
        self.records.order(order_id).map(|record| &record.order)
    }

    /// Number of orders coordinated here.
    pub fn order_count(&self) -> usize {
        self.records.order_count()
    }

    /// Orders coordinated here whose transaction still needs driving.
    pub fn open_transactions(&self) -> impl Iterator<Item = &OrderRecord> {
        self.open_transactions
            .iter()
            .filter_map(|order_id| self.records.order(*order_id))
    }

    /// Participation of this shard in an order coordinated elsewhere.
    pub fn participation(&self, order_id: u128) -> Option<&Participation> {
        self.records.participation(order_id)
    }

    /// Digest of the shard's records (DESIGN.md §8): items, orders with their transaction
    /// records, and participations. Equal records give equal digests whatever the order
    /// they were written in; a change of any field of any record changes it (with
    /// probability 1 − 2⁻⁶⁴). Kept up to date by every write, so this is O(1).
    ///
    /// Not covered: the applied index and term (mirrors compare digests taken at the same
    /// index, see [`Store::digest_at`]), the shard and shard count (fixed per store), and
    /// the open-transaction set (derived from the orders' phases).
    pub fn digest(&self) -> u64 {
        self.records.digest()
    }

    /// The digest with the applied index it belongs to, as mirrors exchange it. The index
    /// is kept beside the digest rather than hashed into it, so that a comparison can tell
    /// "not comparable yet" (different indexes) from "diverged" (same index, different
    /// digests).
    pub fn digest_at(&self) -> AppliedDigest {
        AppliedDigest {
            applied_index: self.applied_index,
            digest: self.digest(),
        }
    }

    /// The digest recomputed from every record, O(n): for audits and tests, which compare
    /// it with [`Store::digest`] to check the incremental bookkeeping.
    pub fn recompute_digest(&self) -> u64 {
        self.records.recompute_digest()
    }

    /// Serializes the whole store for a snapshot. The archive carries the digest.
    pub fn to_snapshot(&self) -> AlignedVec {
        rkyv::to_bytes::<rancor::Error>(self).expect("store serialization cannot fail")
    }

    /// Loads a store from a snapshot body (checksummed by the snapshot file).
    ///
    /// The archived digest is checked against one recomputed from the loaded records, and
    /// the open-transaction set against the orders: a snapshot that was written wrongly or
    /// damaged in a way its checksum missed is refused instead of served. Cost: one hash
    /// per record, on top of the O(n) deserialization.
    pub fn from_snapshot(shard: u32, body: &[u8]) -> Result<Store, SnapshotDecodeError> {
        let fail = |reason: String| SnapshotDecodeError { shard, reason };
        let archived = rkyv::access::<ArchivedStore, rancor::Error>(body)
            .map_err(|error| fail(error.to_string()))?;
        let store = rkyv::deserialize::<Store, rancor::Error>(archived)
            .map_err(|error| fail(error.to_string()))?;
        if store.shard != shard {
            return Err(fail(format!("it holds shard {}", store.shard)));
        }
        store.check_loaded().map_err(fail)?;
        Ok(store)
    }

    fn check_loaded(&self) -> Result<(), String> {
        let stored = self.records.digest();
        let recomputed = self.records.recompute_digest();
        if stored != recomputed {
            return Err(format!(
                "digest mismatch: archived {stored:#018x}, records hash to {recomputed:#018x}"
            ));
        }
        if self.records.derive_open_transactions() != self.open_transactions {
            return Err("its open transactions do not match its orders".to_string());
        }
        Ok(())
    }

    /// Moves stock of an existing item between buckets (invariant 3) and returns the
    /// item as it is now.
    fn move_stock(&mut self, sku: u64, from: Bucket, to: Bucket, quantity: u64) -> Item {
        let moved = self.records.update_item(sku, |item| {
            move_item_stock(item, from, to, quantity);
            *item
        });
        moved.expect("a reserved or sold line names an existing item")
    }

    /// Runs `change` on the order's record with the store at hand (to move stock), then
    /// puts the record back: the one path by which an existing order changes.
    fn update_order<R>(
        &mut self,
        order_id: u128,
        change: impl FnOnce(&mut Store, &mut OrderRecord) -> R,
    ) -> Option<R> {
        let mut record = self.records.take_order(order_id)?;
        let result = change(self, &mut record);
        assert_eq!(
            record.order.order_id, order_id,
            "an order update changed the key"
        );
        self.records.insert_order(record);
        Some(result)
    }
}

fn item_total(item: &Item) -> u64 {
    item.available + item.reserved + item.sold
}

/// Moves `quantity` units of `item` between buckets, keeping the total (invariant 3).
fn move_item_stock(item: &mut Item, from: Bucket, to: Bucket, quantity: u64) {
    let total_before = item_total(item);
    let source = bucket(item, from);
    assert!(
        *source >= quantity,
        "sku {} would go negative in {from:?}",
        item.sku
    );
    *source -= quantity;
    *bucket(item, to) += quantity;
    item.version += 1;
    assert_eq!(
        item_total(item),
        total_before,
        "stock conservation broken for sku {}",
        item.sku
    );
}

#[derive(Debug, Clone, Copy)]
enum Bucket {
    Available,
    Reserved,
    Sold,
}

fn bucket(item: &mut Item, which: Bucket) -> &mut u64 {
    match which {
        Bucket::Available => &mut item.available,
        Bucket::Reserved => &mut item.reserved,
        Bucket::Sold => &mut item.sold,
    }
}

fn undecodable(shard: u32, index: u64, reason: &str) -> Applied {
    // The entry passed the WAL checksum and was validated when proposed, so this is a bug
    // or a format change; every mirror reaches the same verdict, so state stays equal.
    tracing::error!(
        shard,
        index,
        reason,
        "committed entry does not decode; applied as no-op"
    );
    Applied {
        reply: Some(Reply::Error(ErrorReply::Internal {
            message: format!("entry {index} of shard {shard} does not decode: {reason}"),
        })),
        effects: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
