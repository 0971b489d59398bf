//! Record hashing for the shard digest (DESIGN.md §8, invariant 7).
//!
//! A shard's digest is the wrapping sum of one 64-bit hash per record (item, order with
//! its transaction record, participation). A sum does not depend on the order in which
//! records were inserted, and a change of one record costs O(1): subtract its old hash,
//! add its new one. Mirrors compare digests taken at the same applied index, so the hash
//! must be identical on every platform and in every build: it is written here over
//! explicit 64-bit words, never through `std::hash` (whose `RandomState` is seeded per
//! process and whose `Hash` impls are not a stable format).
//!
//! Canonical encoding: each record is a sequence of `u64` words — a record-kind tag,
//! then every field in declaration order; enums as an explicit code followed by their
//! fields; `Option` as 0, or 1 followed by the value; sequences and strings prefixed by
//! their length (strings as little-endian 8-byte chunks, the last one zero-padded), so
//! the encoding is self-delimiting and two different records never encode alike. Every
//! struct is destructured exhaustively: adding a field breaks the build here until the
//! field is hashed, so no field can silently fall out of the digest.
//!
//! Hash: each word is absorbed by `state = mix(state ^ word + γ)`, where `mix` is the
//! splitmix64 finalizer (a bijection with full avalanche). For a fixed word each step is
//! a bijection of the state, so two encodings of equal length that differ in one word
//! always hash differently; the final `mix` of the state and word count makes the
//! per-record outputs look independent, which is what keeps the sum from cancelling.
//! Changing anything here changes every digest, so mirrors running different builds
//! would report divergence: bump [`DIGEST_FORMAT`] and treat it as a format change.

use super::order::{CoordinatorTxn, OrderRecord, TxnPhase};
use super::participant::Participation;
use crate::txn::message::{LinePrice, ParticipantState};
use quorder_proto::{Item, Order, OrderLine, OrderLineRecord, OrderStatus, RejectReason};

/// Version of the canonical encoding and hash; part of every record's initial state.
pub const DIGEST_FORMAT: u64 = 1;

/// The golden ratio increment of splitmix64: odd, so adding it never maps two states
/// together, and it keeps an all-zero input from sitting on the fixed point `mix(0) = 0`.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Kind tags, so that an item and an order can never encode alike.
#[derive(Clone, Copy)]
#[repr(u64)]
enum RecordKind {
    Item = 0x6974_656d, // "item"
    Order = 0x6f72_6472,
    Participation = 0x7061_7274,
}

/// splitmix64's output function (Stafford's "mix13" constants).
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

/// Streaming hash of one record's canonical words.
struct RecordHasher {
    state: u64,
    words: u64,
}

impl RecordHasher {
    fn new(kind: RecordKind) -> RecordHasher {
        let mut hasher = RecordHasher {
            state: mix(DIGEST_FORMAT.wrapping_mul(GAMMA)),
            words: 0,
        };
        hasher.word(kind as u64);
        hasher
    }

    fn word(&mut self, word: u64) {
        self.state = mix((self.state ^ word).wrapping_add(GAMMA));
        self.words += 1;
    }

    fn wide(&mut self, value: u128) {
        // Truncations are the point: low half, then high half.
        self.word(value as u64);
        self.word((value >> 64) as u64);
    }

    fn length(&mut self, length: usize) {
        self.word(length as u64);
    }

    fn flag(&mut self, present: bool) {
        self.word(u64::from(present));
    }

    fn text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        self.length(bytes.len());
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.word(u64::from_le_bytes(word));
        }
    }

    fn finish(self) -> u64 {
        mix(self.state ^ self.words.wrapping_mul(GAMMA))
    }
}

/// Hash of an item record.
pub fn item_hash(item: &Item) -> u64 {
    let Item {
        sku,
        available,
        reserved,
        sold,
        price_cents,
        version,
    } = *item;
    let mut hasher = RecordHasher::new(RecordKind::Item);
    for word in [sku, available, reserved, sold, price_cents, version] {
        hasher.word(word);
    }
    hasher.finish()
}

/// Hash of an order record: the order as clients see it and its transaction record.
pub fn order_hash(record: &OrderRecord) -> u64 {
    let OrderRecord { order, txn } = record;
    let mut hasher = RecordHasher::new(RecordKind::Order);
    order_words(&mut hasher, order);
    hasher.flag(txn.is_some());
    if let Some(CoordinatorTxn {
        participants,
        phase,
    }) = txn
    {
        hasher.length(participants.len());
        for participant in participants {
            hasher.word(u64::from(*participant));
        }
        hasher.word(phase_code(*phase));
    }
    hasher.finish()
}

fn order_words(hasher: &mut RecordHasher, order: &Order) {
    let Order {
        order_id,
        customer,
        lines,
        total_cents,
        status,
        reason,
        version,
        created_ms,
        updated_ms,
    } = order;
    hasher.wide(*order_id);
    hasher.word(*customer);
    hasher.length(lines.len());
    for line in lines {
        let OrderLineRecord {
            sku,
            quantity,
            unit_price_cents,
        } = *line;
        for word in [sku, quantity, unit_price_cents] {
            hasher.word(word);
        }
    }
    hasher.word(*total_cents);
    hasher.word(status_code(*status));
    hasher.flag(reason.is_some());
    if let Some(reason) = reason {
        reason_words(hasher, reason);
    }
    for word in [*version, *created_ms, *updated_ms] {
        hasher.word(word);
    }
}

/// Hash of this shard's participation in order `order_id` (the key is not in the value,
/// so it is hashed explicitly: the same participation under another order differs).
pub fn participation_hash(order_id: u128, participation: &Participation) -> u64 {
    let Participation {
        coordinator,
        lines,
        state,
    } = participation;
    let mut hasher = RecordHasher::new(RecordKind::Participation);
    hasher.wide(order_id);
    hasher.word(u64::from(*coordinator));
    hasher.length(lines.len());
    for line in lines {
        let OrderLine { sku, quantity } = *line;
        hasher.word(sku);
        hasher.word(quantity);
    }
    match state {
        ParticipantState::Prepared { prices } => {
            hasher.word(1);
            hasher.length(prices.len());
            for price in prices {
                let LinePrice {
                    sku,
                    unit_price_cents,
                } = *price;
                hasher.word(sku);
                hasher.word(unit_price_cents);
            }
        }
        ParticipantState::Refused { reason } => {
            hasher.word(2);
            reason_words(&mut hasher, reason);
        }
        ParticipantState::Committed => hasher.word(3),
        ParticipantState::Aborted => hasher.word(4),
        ParticipantState::Released => hasher.word(5),
    }
    hasher.finish()
}

fn reason_words(hasher: &mut RecordHasher, reason: &RejectReason) {
    match reason {
        RejectReason::InsufficientStock { sku, available } => {
            hasher.word(1);
            hasher.word(*sku);
            hasher.word(*available);
        }
        RejectReason::UnknownSku { sku } => {
            hasher.word(2);
            hasher.word(*sku);
        }
        RejectReason::PaymentDeclined { reason } => {
            hasher.word(3);
            hasher.text(reason);
        }
    }
}

// Explicit codes rather than `as` casts: the encoding must not follow a reordering of
// the enum, and a new variant must be given a code here before it compiles.
fn status_code(status: OrderStatus) -> u64 {
    match status {
        OrderStatus::Preparing => 1,
        OrderStatus::Committed => 2,
        OrderStatus::Rejected => 3,
        OrderStatus::Queued => 4,
        OrderStatus::Cancelled => 5,
    }
}

fn phase_code(phase: TxnPhase) -> u64 {
    match phase {
        TxnPhase::Preparing => 1,
        TxnPhase::Committing => 2,
        TxnPhase::Aborting => 3,
        TxnPhase::Releasing => 4,
        TxnPhase::Complete => 5,
    }
}
