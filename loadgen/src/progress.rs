//! The progress line printed on stderr every second:
//!
//! ```text
//! [    3s] 10002 orders/s  committed 29990  rejected 0  errors 10  p50 412us  p99 1510us
//! ```
//!
//! `orders/s` and the percentiles are of the orders answered during that second
//! (acknowledged ones); committed, rejected and errors are totals since the start, warmup
//! included. During the warmup the line ends with `(warmup)`; while the last replies are
//! waited for, with `(draining)`.

use crate::report::LatencySummary;
use crate::stats::{Counts, Tally};
use std::time::Duration;

/// Phase of the run, shown at the end of the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before measuring.
    Warmup,
    /// Measuring.
    Measuring,
    /// Sending is over; waiting for outstanding replies.
    Draining,
}

/// The line for one interval (no newline).
pub fn progress_line(
    elapsed: Duration,
    interval: &Tally,
    interval_length: Duration,
    totals: &Counts,
    phase: Phase,
) -> String {
    let seconds = interval_length.as_secs_f64();
    let rate = if seconds > 0.0 {
        interval.counts.acknowledged() as f64 / seconds
    } else {
        0.0
    };
    let latency = LatencySummary::of(&interval.latency);
    let suffix = match phase {
        Phase::Warmup => "  (warmup)",
        Phase::Measuring => "",
        Phase::Draining => "  (draining)",
    };
    format!(
        "[{:>5}s] {:.0} orders/s  committed {}  rejected {}  errors {}  p50 {}us  p99 {}us{}",
        elapsed.as_secs(),
        rate,
        totals.committed,
        totals.rejected,
        totals.errors_total(),
        latency.p50,
        latency.p99,
        suffix
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use quorder_proto::OrderStatus;

    #[test]
    fn line_shows_rate_totals_and_percentiles() {
        let mut interval = Tally::default();
        for micros in [100u64, 200, 300, 400] {
            interval.record(
                Outcome::Acknowledged {
                    status: OrderStatus::Committed,
                    total_cents: 1,
                },
                Duration::from_micros(micros),
            );
        }
        let mut totals = interval.counts.clone();
        totals.add(Outcome::Failed { kind: "timeout" }, 2);
        let line = progress_line(
            Duration::from_secs(3),
            &interval,
            Duration::from_millis(500),
            &totals,
            Phase::Warmup,
        );
        assert_eq!(
            line,
            "[    3s] 8 orders/s  committed 4  rejected 0  errors 2  p50 200us  p99 400us  \
             (warmup)"
        );
    }
}
