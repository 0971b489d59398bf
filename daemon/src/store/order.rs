//! Orders coordinated by this shard: the one-step path for single-shard orders and the
//! coordinator side of two-phase commit for orders whose lines span shards.

use super::{Applied, Bucket, Effect, Store};
use crate::entry::Decision;
use crate::txn::message::{LinePrice, ParticipantAction, ParticipantRequest};
use quorder_proto::shard::shard_of_sku;
use quorder_proto::{
    ArchivedPayment, ArchivedPlaceOrder, ErrorReply, Order, OrderLine, OrderLineRecord,
    OrderStatus, RejectReason, Reply,
};
use rkyv::{Archive, Deserialize, Serialize};

/// Where the coordinator is in a cross-shard transaction.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum TxnPhase {
    /// Prepares sent; waiting for every vote.
    Preparing,
    /// Decided commit; waiting for every participant to commit.
    Committing,
    /// Decided abort; waiting for every participant to release.
    Aborting,
    /// Cancelled after commit; waiting for every participant to release.
    Releasing,
    /// Every participant acknowledged; nothing left to drive.
    Complete,
}

/// Coordinator record of a cross-shard order.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorTxn {
    /// Other shards holding lines of the order, ascending.
    pub participants: Vec<u32>,
    /// Phase.
    pub phase: TxnPhase,
}

/// An order and, for a cross-shard one, its transaction.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order as clients see it.
    pub order: Order,
    /// Present for cross-shard orders.
    pub txn: Option<CoordinatorTxn>,
}

impl OrderRecord {
    /// Lines of the order held by `shard`.
    pub fn lines_on(&self, shard: u32, shard_count: u32) -> Vec<OrderLine> {
        self.order
            .lines
            .iter()
            .filter(|line| shard_of_sku(line.sku, shard_count) == shard)
            .map(|line| OrderLine {
                sku: line.sku,
                quantity: line.quantity,
            })
            .collect()
    }

    /// The request a participant should get in the current phase, if any.
    pub fn action_for(&self, participant: u32, shard_count: u32) -> Option<ParticipantAction> {
        match self.txn.as_ref()?.phase {
            TxnPhase::Preparing => Some(ParticipantAction::Prepare {
                lines: self.lines_on(participant, shard_count),
            }),
            TxnPhase::Committing => Some(ParticipantAction::Commit),
            TxnPhase::Aborting => Some(ParticipantAction::Abort),
            TxnPhase::Releasing => Some(ParticipantAction::Release),
            TxnPhase::Complete => None,
        }
    }
}

impl Store {
    pub(super) fn place_order(&mut self, place: &ArchivedPlaceOrder, timestamp_ms: u64) -> Applied {
        let order_id = place.order_id.to_native();
        if let Some(existing) = self.records.order(order_id) {
            // Idempotent: the same id always yields the first outcome. A preparing order
            // is answered when it settles.
            let reply = match existing.order.status {
                OrderStatus::Preparing => None,
                _ => Some(Reply::Order(existing.order.clone())),
            };
            return Applied {
                reply,
                effects: Vec::new(),
            };
        }
        let lines: Vec<OrderLine> = place
            .lines
            .iter()
            .map(|line| OrderLine {
                sku: line.sku.to_native(),
                quantity: line.quantity.to_native(),
            })
            .collect();
        let mut order = Order {
            order_id,
            customer: place.customer.to_native(),
            lines: lines
                .iter()
                .map(|line| OrderLineRecord {
                    sku: line.sku,
                    quantity: line.quantity,
                    unit_price_cents: 0,
                })
                .collect(),
            total_cents: 0,
            status: OrderStatus::Preparing,
            reason: None,
            version: 1,
            created_ms: timestamp_ms,
            updated_ms: timestamp_ms,
        };
        if let ArchivedPayment::Card { .. } = place.payment {
            // External participants join in M3; until then a card order cannot be charged.
            let reason = "no payment gateway is configured on this node".to_string();
            return self.record_rejection(order, RejectReason::PaymentDeclined { reason });
        }
        let (local, remote): (Vec<OrderLine>, Vec<OrderLine>) = lines
            .into_iter()
            .partition(|line| shard_of_sku(line.sku, self.shard_count) == self.shard);
        if let Err(reason) = self.check_lines(&local) {
            return self.record_rejection(order, reason);
        }
        if remote.is_empty() {
            self.sell_local_lines(&mut order, Bucket::Available);
            order.status = OrderStatus::Committed;
            return self.record_settled(order, None);
        }
        self.start_transaction(order, &remote)
    }

    /// Reserves the local lines of a cross-shard order and asks the shards of the
    /// `remote` lines to prepare; the client is answered when the decision applies.
    fn start_transaction(&mut self, mut order: Order, remote: &[OrderLine]) -> Applied {
        self.reserve_local_lines(&mut order);
        let mut participants: Vec<u32> = remote
            .iter()
            .map(|line| shard_of_sku(line.sku, self.shard_count))
            .collect();
        participants.sort_unstable();
        participants.dedup();
        let order_id = order.order_id;
        let record = OrderRecord {
            order,
            txn: Some(CoordinatorTxn {
                participants,
                phase: TxnPhase::Preparing,
            }),
        };
        let effects = self.requests_for(&record);
        self.open_transactions.insert(order_id);
        self.records.insert_order(record);
        Applied {
            reply: None,
            effects,
        }
    }

    /// Checks that every line can be taken from `available` now; the first failing
    /// line gives the reason.
    pub(super) fn check_lines(&self, lines: &[OrderLine]) -> Result<(), RejectReason> {
        for line in lines {
            match self.records.item(line.sku) {
                None => return Err(RejectReason::UnknownSku { sku: line.sku }),
                Some(item) if item.available < line.quantity => {
                    return Err(RejectReason::InsufficientStock {
                        sku: line.sku,
                        available: item.available,
                    })
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn local_line_positions(&self, order: &Order) -> Vec<usize> {
        (0..order.lines.len())
            .filter(|position| {
                shard_of_sku(order.lines[*position].sku, self.shard_count) == self.shard
            })
            .collect()
    }

    /// Local lines go from `from` to sold, at the item's current price.
    fn sell_local_lines(&mut self, order: &mut Order, from: Bucket) {
        for position in self.local_line_positions(order) {
            let line = &mut order.lines[position];
            let item = self.move_stock(line.sku, from, Bucket::Sold, line.quantity);
            line.unit_price_cents = item.price_cents;
        }
        order.total_cents = order
            .lines
            .iter()
            .map(|line| line.quantity * line.unit_price_cents)
            .sum();
    }

    fn reserve_local_lines(&mut self, order: &mut Order) {
        for position in self.local_line_positions(order) {
            let line = &mut order.lines[position];
            let item =
                self.move_stock(line.sku, Bucket::Available, Bucket::Reserved, line.quantity);
            line.unit_price_cents = item.price_cents;
        }
    }

    fn release_local_lines(&mut self, order: &Order, from: Bucket) {
        for position in self.local_line_positions(order) {
            let line = order.lines[position];
            self.move_stock(line.sku, from, Bucket::Available, line.quantity);
        }
    }

    fn record_rejection(&mut self, mut order: Order, reason: RejectReason) -> Applied {
        order.status = OrderStatus::Rejected;
        order.reason = Some(reason);
        for line in &mut order.lines {
            line.unit_price_cents = 0;
        }
        self.record_settled(order, None)
    }

    fn record_settled(&mut self, order: Order, txn: Option<CoordinatorTxn>) -> Applied {
        let reply = Reply::Order(order.clone());
        self.records.insert_order(OrderRecord { order, txn });
        Applied {
            reply: Some(reply),
            effects: Vec::new(),
        }
    }

    /// Requests due to every participant in the record's current phase.
    pub fn requests_for(&self, record: &OrderRecord) -> Vec<Effect> {
        let Some(txn) = &record.txn else {
            return Vec::new();
        };
        txn.participants
            .iter()
            .filter_map(|participant| {
                let action = record.action_for(*participant, self.shard_count)?;
                Some(Effect::ToParticipant(ParticipantRequest {
                    order_id: record.order.order_id,
                    coordinator: self.shard,
                    participant: *participant,
                    action,
                }))
            })
            .collect()
    }

    pub(super) fn apply_decision(
        &mut self,
        order_id: u128,
        decision: Decision,
        timestamp_ms: u64,
    ) -> Applied {
        let decided = self.update_order(order_id, |store, record| {
            store.decide(record, decision, timestamp_ms)
        });
        decided.unwrap_or_else(|| {
            tracing::error!(shard = self.shard, "decision for an unknown order; ignored");
            Applied::default()
        })
    }

    fn decide(
        &mut self,
        record: &mut OrderRecord,
        decision: Decision,
        timestamp_ms: u64,
    ) -> Applied {
        let phase = record.txn.as_ref().map(|txn| txn.phase);
        if phase != Some(TxnPhase::Preparing) {
            // A duplicate decision (a re-proposal after a leader change) changes nothing.
            return Applied::default();
        }
        let next_phase = match decision {
            Decision::Commit { prices } => {
                self.commit_prepared(&mut record.order, &prices);
                TxnPhase::Committing
            }
            Decision::Abort { reason } => {
                self.release_local_lines(&record.order, Bucket::Reserved);
                record.order.status = OrderStatus::Rejected;
                record.order.reason = Some(reason);
                record.order.total_cents = 0;
                TxnPhase::Aborting
            }
        };
        record.order.version += 1;
        record.order.updated_ms = timestamp_ms;
        if let Some(txn) = record.txn.as_mut() {
            txn.phase = next_phase;
        }
        let mut effects = self.requests_for(record);
        effects.push(Effect::OrderSettled {
            order_id: record.order.order_id,
        });
        Applied {
            reply: None,
            effects,
        }
    }

    fn commit_prepared(&mut self, order: &mut Order, prices: &[LinePrice]) {
        for line in &mut order.lines {
            if shard_of_sku(line.sku, self.shard_count) == self.shard {
                continue;
            }
            let price = prices.iter().find(|price| price.sku == line.sku);
            let price = price.expect("a commit decision prices every remote line");
            line.unit_price_cents = price.unit_price_cents;
        }
        self.sell_local_lines(order, Bucket::Reserved);
        order.status = OrderStatus::Committed;
    }

    pub(super) fn cancel_order(
        &mut self,
        order_id: u128,
        expected_version: Option<u64>,
        timestamp_ms: u64,
    ) -> Applied {
        let cancelled = self.update_order(order_id, |store, record| {
            store.cancel(record, expected_version, timestamp_ms)
        });
        cancelled.unwrap_or_else(|| Applied {
            reply: Some(Reply::Error(ErrorReply::NotFound)),
            effects: Vec::new(),
        })
    }

    fn cancel(
        &mut self,
        record: &mut OrderRecord,
        expected_version: Option<u64>,
        timestamp_ms: u64,
    ) -> Applied {
        let version = record.order.version;
        let status = record.order.status;
        let outcome = match (expected_version, status) {
            (Some(expected), _) if expected != version => {
                Err(ErrorReply::VersionConflict { current: version })
            }
            (_, OrderStatus::Cancelled) => Ok(false),
            (_, OrderStatus::Committed) => Ok(true),
            (_, status) => Err(ErrorReply::InvalidState {
                reason: format!(
                    "order is {}; only committed orders can be cancelled",
                    status.name()
                ),
            }),
        };
        let changed = match outcome {
            Err(error) => {
                return Applied {
                    reply: Some(Reply::Error(error)),
                    effects: Vec::new(),
                }
            }
            Ok(changed) => changed,
        };
        let mut effects = Vec::new();
        if changed {
            self.release_local_lines(&record.order, Bucket::Sold);
            record.order.status = OrderStatus::Cancelled;
            record.order.version += 1;
            record.order.updated_ms = timestamp_ms;
            if let Some(txn) = record.txn.as_mut() {
                txn.phase = TxnPhase::Releasing;
                self.open_transactions.insert(record.order.order_id);
            }
            effects = self.requests_for(record);
        }
        Applied {
            reply: Some(Reply::Order(record.order.clone())),
            effects,
        }
    }

    pub(super) fn complete_transaction(&mut self, order_id: u128, phase: TxnPhase) -> Applied {
        self.update_order(order_id, |store, record| {
            let Some(txn) = record.txn.as_mut() else {
                return;
            };
            let finishing = matches!(
                txn.phase,
                TxnPhase::Committing | TxnPhase::Aborting | TxnPhase::Releasing
            );
            if finishing && txn.phase == phase {
                txn.phase = TxnPhase::Complete;
                store.open_transactions.remove(&order_id);
            }
        });
        Applied::default()
    }

    /// Record of an order coordinated here.
    pub fn order_record(&self, order_id: u128) -> Option<&OrderRecord> {
        self.records.order(order_id)
    }
}
