//! The open-loop schedule: when each frame is meant to be sent, fixed before the run starts
//! and independent of how fast the system answers (no coordinated omission).
//!
//! The run sends `orders_total = floor(rate × (warmup + duration))` orders in
//! `ceil(orders_total / batch)` frames. Frame `f` (counted across all connections) holds
//! orders `f × batch ..` (the last frame may hold fewer) and is meant to leave at
//! `f × batch / rate` seconds after the start, so orders go out at `rate` per second on
//! average. Frames are dealt round-robin: connection `c` of `C` sends frames
//! `c, c + C, c + 2C, ...`. Every order of a frame has the frame's intended send time;
//! its latency is measured from that time, so a sender that falls behind charges its
//! lateness to the orders it sends late. Frames meant to leave before `warmup` are warmup
//! frames: sent and recorded, but left out of the report.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// One frame of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSlot {
    /// Position of the frame in the whole run.
    pub index: u64,
    /// Intended send time, from the start of the run.
    pub offset: Duration,
    /// Orders in the frame, `1..=batch`.
    pub operations: usize,
    /// Whether the frame belongs to the warmup.
    pub warmup: bool,
}

/// The fixed plan of an open-loop run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenLoopSchedule {
    rate_per_s: u64,
    batch: usize,
    orders_total: u64,
    warmup: Duration,
}

impl OpenLoopSchedule {
    /// Plan for `rate_per_s` orders per second in frames of `batch` orders over `warmup`
    /// followed by `duration`.
    pub fn new(
        rate_per_s: u64,
        batch: usize,
        warmup: Duration,
        duration: Duration,
    ) -> OpenLoopSchedule {
        assert!(rate_per_s > 0);
        assert!(batch > 0);
        let run_nanos = (warmup + duration).as_nanos();
        let orders_total = u128::from(rate_per_s) * run_nanos / NANOS_PER_SECOND;
        OpenLoopSchedule {
            rate_per_s,
            batch,
            orders_total: u64::try_from(orders_total).unwrap_or(u64::MAX),
            warmup,
        }
    }

    /// Orders in the whole run, warmup included.
    pub fn orders_total(&self) -> u64 {
        self.orders_total
    }

    /// Frames in the whole run, warmup included.
    pub fn frames_total(&self) -> u64 {
        self.orders_total.div_ceil(self.batch as u64)
    }

    /// Frame `index`, which must be below `frames_total()`.
    pub fn frame(&self, index: u64) -> FrameSlot {
        assert!(index < self.frames_total());
        let first_order = u128::from(index) * self.batch as u128;
        let offset_nanos = first_order * NANOS_PER_SECOND / u128::from(self.rate_per_s);
        let offset = nanos_to_duration(offset_nanos);
        let remaining = u128::from(self.orders_total) - first_order;
        FrameSlot {
            index,
            offset,
            operations: remaining.min(self.batch as u128) as usize,
            warmup: offset < self.warmup,
        }
    }

    /// The frames connection `connection` of `connections` sends, in send order.
    pub fn frames_of_connection(
        &self,
        connection: usize,
        connections: usize,
    ) -> impl Iterator<Item = FrameSlot> + '_ {
        assert!(connection < connections);
        (connection as u64..self.frames_total())
            .step_by(connections)
            .map(move |index| self.frame(index))
    }
}

fn nanos_to_duration(nanos: u128) -> Duration {
    let seconds = nanos / NANOS_PER_SECOND;
    let subsec = (nanos % NANOS_PER_SECOND) as u32;
    Duration::new(u64::try_from(seconds).unwrap_or(u64::MAX), subsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_offsets_follow_the_rate() {
        let schedule = OpenLoopSchedule::new(1000, 1, Duration::ZERO, Duration::from_secs(2));
        assert_eq!(schedule.orders_total(), 2000);
        assert_eq!(schedule.frames_total(), 2000);
        assert_eq!(schedule.frame(0).offset, Duration::ZERO);
        assert_eq!(schedule.frame(1).offset, Duration::from_millis(1));
        assert_eq!(schedule.frame(1999).offset, Duration::from_millis(1999));
    }

    #[test]
    fn batches_space_frames_by_batch_over_rate_and_keep_the_remainder() {
        let schedule = OpenLoopSchedule::new(300, 7, Duration::ZERO, Duration::from_millis(1000));
        assert_eq!(schedule.orders_total(), 300);
        assert_eq!(schedule.frames_total(), 43);
        let total: u64 = (0..43)
            .map(|index| schedule.frame(index).operations as u64)
            .sum();
        assert_eq!(total, 300);
        assert_eq!(schedule.frame(42).operations, 300 - 42 * 7);
        // 7 orders at 300/s: a frame every 23.333 ms, no drift from rounding.
        assert_eq!(schedule.frame(3).offset, Duration::from_millis(70));
        assert_eq!(schedule.frame(42).offset, Duration::from_nanos(980_000_000));
    }

    #[test]
    fn frames_are_dealt_round_robin_without_loss() {
        let schedule = OpenLoopSchedule::new(1000, 3, Duration::ZERO, Duration::from_secs(1));
        let mut seen = Vec::new();
        for connection in 0..4 {
            let frames: Vec<FrameSlot> = schedule.frames_of_connection(connection, 4).collect();
            assert!(frames
                .iter()
                .all(|slot| slot.index % 4 == connection as u64));
            assert!(frames
                .windows(2)
                .all(|pair| pair[0].offset < pair[1].offset));
            seen.extend(frames.iter().map(|slot| slot.index));
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..schedule.frames_total()).collect::<Vec<u64>>());
    }

    #[test]
    fn warmup_frames_come_first() {
        let schedule =
            OpenLoopSchedule::new(100, 1, Duration::from_secs(1), Duration::from_secs(2));
        assert_eq!(schedule.orders_total(), 300);
        assert!(schedule.frame(99).warmup);
        assert!(!schedule.frame(100).warmup);
        let warm = (0..300)
            .filter(|index| schedule.frame(*index).warmup)
            .count();
        assert_eq!(warm, 100);
    }

    #[test]
    fn too_short_a_run_has_no_orders() {
        let schedule = OpenLoopSchedule::new(1, 1, Duration::ZERO, Duration::from_millis(500));
        assert_eq!(schedule.frames_total(), 0);
        assert_eq!(schedule.frames_of_connection(0, 1).count(), 0);
    }
}
