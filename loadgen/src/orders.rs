//! Order generation: which SKUs an order buys, for which customer, under which id.
//!
//! Every order has `lines` lines of quantity 1 on distinct SKUs drawn uniformly from the
//! run's SKU range, a customer drawn from `1..=CUSTOMERS_MAX`, no external payment, and an
//! order id made by `colocated_order_id` from the same generator, so the id lands on the
//! shard of the first line's SKU: with `--lines 1` every order is single-shard (1PC).
//! Everything comes from one seeded `SplitMix64`, so a seed replays the same orders —
//! including the same order ids, which are idempotency keys: a replay against the same
//! cluster gets the original outcomes back. Use another `--seed` for fresh orders.

use crate::limits::CUSTOMERS_MAX;
use crate::prng::SplitMix64;
use quorder_proto::limits::ORDER_LINES_MAX;
use quorder_proto::shard::colocated_order_id;
use quorder_proto::{OrderLine, Payment, PlaceOrder};

/// The SKUs a run creates and orders from: `first..first + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkuRange {
    /// First SKU.
    pub first: u64,
    /// Number of SKUs, at least 1.
    pub count: u64,
}

impl SkuRange {
    /// Iterates over the SKUs in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = u64> {
        self.first..self.first + self.count
    }
}

/// Makes orders for one connection. Owned by that connection's sender thread.
#[derive(Debug)]
pub struct OrderGenerator {
    random: SplitMix64,
    skus: SkuRange,
    lines_per_order: usize,
    shard_count: u32,
    // Reused between orders: the chosen SKU offsets of the order being built.
    offsets: Vec<u64>,
}

impl OrderGenerator {
    /// Generator drawing from `random`. Panics on arguments the configuration check
    /// rejects (no lines, more lines than SKUs or than `ORDER_LINES_MAX`, no shards).
    pub fn new(
        random: SplitMix64,
        skus: SkuRange,
        lines_per_order: usize,
        shard_count: u32,
    ) -> OrderGenerator {
        assert!((1..=ORDER_LINES_MAX).contains(&lines_per_order));
        assert!(lines_per_order as u64 <= skus.count);
        assert!(skus.first.checked_add(skus.count).is_some());
        assert!(shard_count > 0);
        OrderGenerator {
            random,
            skus,
            lines_per_order,
            shard_count,
            offsets: Vec::with_capacity(lines_per_order),
        }
    }

    /// The next order.
    pub fn next_order(&mut self) -> PlaceOrder {
        self.choose_offsets();
        let lines: Vec<OrderLine> = self
            .offsets
            .iter()
            .map(|offset| OrderLine {
                sku: self.skus.first + offset,
                quantity: 1,
            })
            .collect();
        let customer = 1 + self.random.below(CUSTOMERS_MAX);
        let random = &mut self.random;
        let order_id = colocated_order_id(lines[0].sku, self.shard_count, || random.next_u128());
        PlaceOrder {
            order_id,
            customer,
            lines,
            payment: Payment::None,
        }
    }

    /// Fills `offsets` with `lines_per_order` distinct offsets into the SKU range, in
    /// random order: Floyd's sampling (exactly one draw per line, no retry loop, no
    /// allocation proportional to the range) followed by a Fisher-Yates shuffle, because
    /// Floyd's output order is not uniform and the first SKU decides the order's shard.
    fn choose_offsets(&mut self) {
        self.offsets.clear();
        let count = self.skus.count;
        let wanted = self.lines_per_order as u64;
        for candidate_max in (count - wanted)..count {
            let drawn = self.random.below(candidate_max + 1);
            if self.offsets.contains(&drawn) {
                self.offsets.push(candidate_max);
            } else {
                self.offsets.push(drawn);
            }
        }
        for position in (1..self.offsets.len()).rev() {
            let other = self.random.below(position as u64 + 1) as usize;
            self.offsets.swap(position, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorder_proto::shard::{shard_of_order, shard_of_sku};
    use std::collections::BTreeSet;

    fn generator(seed: u64, first: u64, count: u64, lines: usize) -> OrderGenerator {
        OrderGenerator::new(SplitMix64::new(seed), SkuRange { first, count }, lines, 8)
    }

    #[test]
    fn lines_are_distinct_in_range_quantity_one() {
        let mut orders = generator(1, 100, 10, 4);
        for _ in 0..500 {
            let order = orders.next_order();
            assert_eq!(order.lines.len(), 4);
            let skus: BTreeSet<u64> = order.lines.iter().map(|line| line.sku).collect();
            assert_eq!(skus.len(), 4, "duplicate sku in {order:?}");
            assert!(skus.iter().all(|sku| (100..110).contains(sku)));
            assert!(order.lines.iter().all(|line| line.quantity == 1));
            assert!((1..=CUSTOMERS_MAX).contains(&order.customer));
            assert_ne!(order.order_id, 0);
            assert_eq!(order.payment, Payment::None);
        }
    }

    #[test]
    fn every_sku_can_be_drawn_even_when_all_are_needed() {
        let mut orders = generator(2, 1, 5, 5);
        let mut first_skus = BTreeSet::new();
        for _ in 0..200 {
            let order = orders.next_order();
            let skus: BTreeSet<u64> = order.lines.iter().map(|line| line.sku).collect();
            assert_eq!(skus, (1..=5).collect());
            first_skus.insert(order.lines[0].sku);
        }
        // The shuffle makes any SKU the first line (and so the order's shard).
        assert_eq!(first_skus.len(), 5);
    }

    #[test]
    fn single_line_orders_are_colocated_with_their_sku() {
        let mut orders = generator(3, 1, 1000, 1);
        for _ in 0..200 {
            let order = orders.next_order();
            assert_eq!(
                shard_of_order(order.order_id, 8),
                shard_of_sku(order.lines[0].sku, 8)
            );
        }
    }

    #[test]
    fn a_seed_replays_the_same_orders() {
        let mut first = generator(99, 1, 1000, 3);
        let mut again = generator(99, 1, 1000, 3);
        let mut other = generator(100, 1, 1000, 3);
        let a: Vec<PlaceOrder> = (0..50).map(|_| first.next_order()).collect();
        let b: Vec<PlaceOrder> = (0..50).map(|_| again.next_order()).collect();
        let c: Vec<PlaceOrder> = (0..50).map(|_| other.next_order()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let ids: BTreeSet<u128> = a.iter().map(|order| order.order_id).collect();
        assert_eq!(ids.len(), 50, "order ids repeat");
    }

    #[test]
    fn skus_are_drawn_evenly() {
        let mut orders = generator(4, 0, 4, 1);
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[orders.next_order().lines[0].sku as usize] += 1;
        }
        assert!(
            counts.iter().all(|count| (850..1150).contains(count)),
            "{counts:?}"
        );
    }
}
