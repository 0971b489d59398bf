//! The final JSON report.
//!
//! ```json
//! {
//!   "committed": 29990, "rejected": 0, "errors": {"timeout": 10},
//!   "throughput_per_s": 9996.7,
//!   "latency_us": {"p50": 410, "p90": 690, "p99": 1510, "p999": 4700, "max": 9100},
//!   "queued": 0, "orders": 30000, "warmup_orders": 0, "elapsed_s": 3.0,
//!   "mode": "open_loop", "rate_per_s": 10000, "duration_s": 3.0, "warmup_s": 0.0,
//!   "connections": 4, "batch": 1, "window": 1024, "lines": 1, "sku_first": 1,
//!   "skus": 1000, "shard_count": 8, "seed": 24301, "timeout_ms": 5000
//! }
//! ```
//!
//! The first five keys are the contract; the rest describe the run. Every measured order
//! (warmup excluded) is counted exactly once: `orders = committed + rejected + sum(errors)`.
//! `committed` includes `queued`. `throughput_per_s` is acknowledged orders (committed +
//! rejected) per second of `elapsed_s`, the time from the end of warmup to the last
//! measured reply (at least to the end of the schedule). Latencies are of acknowledged
//! orders only, in µs, from intended send time (open loop) or actual send time (`--max`).

use crate::stats::Tally;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct LatencySummary {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value (to the histogram's precision).
    pub max: u64,
}

impl LatencySummary {
    /// Summary of `histogram`; all zero when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// How the run was configured, copied into the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDescription {
    /// `open_loop` or `saturation`.
    pub mode: &'static str,
    /// Intended orders per second (open loop only).
    pub rate_per_s: Option<u64>,
    /// Measured duration asked for.
    pub duration_s: f64,
    /// Warmup before it.
    pub warmup_s: f64,
    /// Connections opened.
    pub connections: usize,
    /// Orders per frame.
    pub batch: usize,
    /// Frames in flight per connection at most.
    pub window: usize,
    /// Lines per order.
    pub lines: usize,
    /// First SKU of the range.
    pub sku_first: u64,
    /// SKUs in the range.
    pub skus: u64,
    /// Shards of the cluster, from its `Pong`.
    pub shard_count: u32,
    /// PRNG seed.
    pub seed: u64,
    /// End-of-run grace for outstanding requests.
    pub timeout_ms: u64,
}

/// The report. Field order is the JSON key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Orders committed (queued included).
    pub committed: u64,
    /// Orders rejected.
    pub rejected: u64,
    /// Failed orders by error kind.
    pub errors: BTreeMap<&'static str, u64>,
    /// Acknowledged orders per second.
    pub throughput_per_s: f64,
    /// Latency of acknowledged orders.
    pub latency_us: LatencySummary,
    /// Orders acknowledged as queued (part of `committed`).
    pub queued: u64,
    /// Measured orders: committed + rejected + errors.
    pub orders: u64,
    /// Orders of the warmup (sent and recorded, not counted above).
    pub warmup_orders: u64,
    /// Seconds the throughput is computed over.
    pub elapsed_s: f64,
    /// The run's configuration.
    #[serde(flatten)]
    pub run: RunDescription,
}

impl Report {
    /// Report of the measured `tally` collected over `elapsed`.
    pub fn build(
        run: RunDescription,
        tally: &Tally,
        warmup_orders: u64,
        elapsed: Duration,
    ) -> Report {
        let counts = &tally.counts;
        let elapsed_s = elapsed.as_secs_f64();
        let throughput_per_s = if elapsed_s > 0.0 {
            counts.acknowledged() as f64 / elapsed_s
        } else {
            0.0
        };
        Report {
            committed: counts.committed,
            rejected: counts.rejected,
            errors: counts.errors.clone(),
            throughput_per_s: round_to_tenths(throughput_per_s),
            latency_us: LatencySummary::of(&tally.latency),
            queued: counts.queued,
            orders: counts.acknowledged() + counts.errors_total(),
            warmup_orders,
            elapsed_s: round_to_thousandths(elapsed_s),
            run,
        }
    }

    /// Pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .expect("a report of plain numbers and strings serializes");
        text.push('\n');
        text
    }
}

fn round_to_tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn round_to_thousandths(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use quorder_proto::OrderStatus;

    fn description() -> RunDescription {
        RunDescription {
            mode: "open_loop",
            rate_per_s: Some(100),
            duration_s: 2.0,
            warmup_s: 0.0,
            connections: 1,
            batch: 1,
            window: 1024,
            lines: 1,
            sku_first: 1,
            skus: 10,
            shard_count: 8,
            seed: 1,
            timeout_ms: 1000,
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut tally = Tally::default();
        let committed = Outcome::Acknowledged {
            status: OrderStatus::Committed,
            total_cents: 100,
        };
        for micros in 1..=1000u64 {
            tally.record(committed, Duration::from_micros(micros));
        }
        tally.record(Outcome::Failed { kind: "timeout" }, Duration::ZERO);
        let report = Report::build(description(), &tally, 7, Duration::from_secs(2));
        assert_eq!(report.committed, 1000);
        assert_eq!(report.orders, 1001);
        assert_eq!(report.warmup_orders, 7);
        assert_eq!(report.throughput_per_s, 500.0);
        assert_eq!(report.latency_us.p50, 500);
        assert_eq!(report.latency_us.p90, 900);
        assert_eq!(report.latency_us.p99, 990);
        assert_eq!(report.latency_us.p999, 999);
        assert_eq!(report.latency_us.max, 1000);
    }

    #[test]
    fn json_has_the_contract_keys_first() {
        let mut tally = Tally::default();
        tally.record(Outcome::Failed { kind: "overloaded" }, Duration::ZERO);
        let report = Report::build(description(), &tally, 0, Duration::ZERO);
        let json = report.to_json();
        let positions: Vec<usize> = [
            "committed",
            "rejected",
            "errors",
            "throughput_per_s",
            "latency_us",
            "queued",
        ]
        .iter()
        .map(|key| json.find(&format!("\"{key}\":")).expect("key present"))
        .collect();
        assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "{json}");
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(value["errors"]["overloaded"], 1);
        assert_eq!(value["throughput_per_s"], 0.0);
        assert_eq!(value["latency_us"]["p999"], 0);
        assert_eq!(value["rate_per_s"], 100);
        assert_eq!(value["mode"], "open_loop");
    }
}
