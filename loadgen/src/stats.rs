//! Counters and latency histograms of a run. Each connection keeps its own `Tally`
//! (behind its own lock, written by that connection's reply callbacks); the progress line
//! and the report sum them, so no lock is shared between connections.

use crate::limits::{LATENCY_SIGNIFICANT_DIGITS, LATENCY_US_MAX};
use crate::outcome::Outcome;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// A latency histogram in microseconds, `1 ..= LATENCY_US_MAX`, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Microseconds of `latency`, clamped to the histogram's range.
pub fn latency_us(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .min(LATENCY_US_MAX)
}

/// Order counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Orders committed (queued ones included).
    pub committed: u64,
    /// Orders acknowledged as queued (also counted in `committed`).
    pub queued: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Failed orders by error kind.
    pub errors: BTreeMap<&'static str, u64>,
}

impl Counts {
    /// Counts `orders` orders with `outcome`. Zero orders leave no trace (no error kind
    /// with a count of 0 in the report).
    pub fn add(&mut self, outcome: Outcome, orders: u64) {
        if orders == 0 {
            return;
        }
        match outcome {
            Outcome::Acknowledged { status, .. } => {
                if outcome.is_committed() {
                    self.committed += orders;
                    if status == quorder_proto::OrderStatus::Queued {
                        self.queued += orders;
                    }
                } else {
                    self.rejected += orders;
                }
            }
            Outcome::Failed { kind } => *self.errors.entry(kind).or_insert(0) += orders,
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        self.committed += other.committed;
        self.queued += other.queued;
        self.rejected += other.rejected;
        for (kind, count) in &other.errors {
            *self.errors.entry(kind).or_insert(0) += count;
        }
    }

    /// Orders acknowledged (committed or rejected).
    pub fn acknowledged(&self) -> u64 {
        self.committed + self.rejected
    }

    /// Orders failed, all kinds together.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Counts plus the latency of the acknowledged orders. Errors have no latency: a fast
/// failure would otherwise make a failing system look quick.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Outcome counts.
    pub counts: Counts,
    /// Latency of acknowledged orders, µs.
    pub latency: Histogram<u64>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            counts: Counts::default(),
            latency: latency_histogram(),
        }
    }
}

impl Tally {
    /// Counts one order; its latency is recorded if it was acknowledged.
    pub fn record(&mut self, outcome: Outcome, latency: Duration) {
        self.counts.add(outcome, 1);
        if let Outcome::Acknowledged { .. } = outcome {
            self.latency.saturating_record(latency_us(latency));
        }
    }

    /// Adds `other` into this tally.
    pub fn merge(&mut self, other: &Tally) {
        self.counts.merge(&other.counts);
        // Both histograms have the same bounds, so adding cannot fail.
        self.latency
            .add(&other.latency)
            .expect("histograms of equal bounds add");
    }

    /// Empties the tally (the progress line's per-second tally, once printed).
    pub fn reset(&mut self) {
        self.counts = Counts::default();
        self.latency.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quorder_proto::OrderStatus;

    const COMMITTED: Outcome = Outcome::Acknowledged {
        status: OrderStatus::Committed,
        total_cents: 100,
    };

    #[test]
    fn counts_split_by_outcome() {
        let mut tally = Tally::default();
        tally.record(COMMITTED, Duration::from_micros(100));
        tally.record(
            Outcome::Acknowledged {
                status: OrderStatus::Queued,
                total_cents: 100,
            },
            Duration::from_micros(200),
        );
        tally.record(
            Outcome::Acknowledged {
                status: OrderStatus::Rejected,
                total_cents: 0,
            },
            Duration::from_micros(300),
        );
        tally.record(
            Outcome::Failed { kind: "overloaded" },
            Duration::from_secs(9),
        );
        assert_eq!(tally.counts.committed, 2);
        assert_eq!(tally.counts.queued, 1);
        assert_eq!(tally.counts.rejected, 1);
        assert_eq!(tally.counts.errors.get("overloaded"), Some(&1));
        tally.counts.add(Outcome::Failed { kind: "timeout" }, 0);
        assert!(!tally.counts.errors.contains_key("timeout"));
        // The failure's 9 s are not a latency.
        assert_eq!(tally.latency.len(), 3);
        assert!(tally.latency.max() < 1000);
    }

    #[test]
    fn merge_and_reset() {
        let mut total = Tally::default();
        let mut part = Tally::default();
        part.record(COMMITTED, Duration::from_millis(2));
        part.record(Outcome::Failed { kind: "timeout" }, Duration::ZERO);
        total.merge(&part);
        total.merge(&part);
        assert_eq!(total.counts.committed, 2);
        assert_eq!(total.counts.errors_total(), 2);
        assert_eq!(total.latency.len(), 2);
        part.reset();
        assert_eq!(part.counts, Counts::default());
        assert!(part.latency.is_empty());
    }

    #[test]
    fn huge_latencies_are_clamped() {
        assert_eq!(latency_us(Duration::from_secs(1_000_000)), LATENCY_US_MAX);
        let mut tally = Tally::default();
        tally.record(COMMITTED, Duration::from_secs(1_000_000));
        assert!(tally.latency.max() >= LATENCY_US_MAX);
    }
}
