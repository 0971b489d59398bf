//! A lane is one connection of the run: its sender thread, its `Connection`, and the tally
//! its reply callbacks write.
//!
//! Threads: the lane's sender thread generates orders, paces them (open-loop schedule or
//! saturation window) and submits them; the connection's reader thread (owned by the
//! client library) runs the reply callbacks, which classify each order and record it;
//! the run's main thread reads the per-second tally for the progress line and, at the
//! end, finishes the lane. All three meet only at the lane's one lock.
//!
//! Accounting: every order is counted exactly once, as warmup or measured, by outcome.
//! An order is either failed at once (not sent: no connection, or `submit` refused it),
//! or in flight until its callback runs, or — if it is still in flight when the lane is
//! finished — a `timeout`; a callback that runs after that is ignored.

use crate::config::Config;
use crate::limits::RECONNECT_BACKOFF;
use crate::orders::OrderGenerator;
use crate::outcome::{classify_reply, client_error_kind, Outcome, KIND_NOT_SENT, KIND_TIMEOUT};
use crate::record::{RecordLine, RecordSender};
use crate::schedule::OpenLoopSchedule;
use crate::setup::connect_timeout;
use crate::stats::{Counts, Tally};
use quorder_client::{ClientError, Connection};
use quorder_proto::{Operation, PlaceOrder, Reply};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// What the lane's lock protects.
#[derive(Debug, Default)]
struct LaneState {
    measured: Tally,
    warmup: Counts,
    // Everything completed since the progress line last took it, warmup included.
    interval: Tally,
    frames_in_flight: usize,
    measured_in_flight: u64,
    warmup_in_flight: u64,
    last_measured_reply: Option<Instant>,
    finished: bool,
}

impl LaneState {
    fn count(&mut self, outcome: Outcome, latency: Duration, warmup: bool) {
        if warmup {
            self.warmup.add(outcome, 1);
        } else {
            self.measured.record(outcome, latency);
        }
        self.interval.record(outcome, latency);
    }

    fn count_failures(&mut self, kind: &'static str, orders: u64, warmup: bool) {
        let outcome = Outcome::Failed { kind };
        if warmup {
            self.warmup.add(outcome, orders);
        } else {
            self.measured.counts.add(outcome, orders);
        }
        self.interval.counts.add(outcome, orders);
    }

    fn end_frame(&mut self, orders: u64, warmup: bool) {
        assert!(self.frames_in_flight > 0, "frame completed twice");
        self.frames_in_flight -= 1;
        let in_flight = if warmup {
            &mut self.warmup_in_flight
        } else {
            &mut self.measured_in_flight
        };
        assert!(*in_flight >= orders, "more orders completed than sent");
        *in_flight -= orders;
    }
}

/// What a finished lane hands to the report.
#[derive(Debug)]
pub struct LaneResult {
    /// Measured orders.
    pub measured: Tally,
    /// Warmup orders.
    pub warmup: Counts,
    /// When the last measured order was answered.
    pub last_measured_reply: Option<Instant>,
}

/// The shared half of a lane: the tally and the in-flight window.
#[derive(Debug)]
pub struct Lane {
    state: Mutex<LaneState>,
    frame_done: Condvar,
    record: Option<RecordSender>,
}

/// The orders of one frame in flight, carried by its reply callback.
struct FrameInFlight {
    order_ids: Vec<u128>,
    // Intended send time (open loop) or actual send time (saturation).
    start: Instant,
    warmup: bool,
}

impl Lane {
    /// A lane that writes acknowledged orders to `record`, if given.
    pub fn new(record: Option<RecordSender>) -> Lane {
        Lane {
            state: Mutex::new(LaneState::default()),
            frame_done: Condvar::new(),
            record,
        }
    }

    fn lock(&self) -> MutexGuard<'_, LaneState> {
        // Callbacks hold this lock only for bookkeeping that keeps the state consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until fewer than `window` frames are in flight; false if `deadline` came first.
    fn wait_for_window(&self, window: usize, deadline: Instant) -> bool {
        let mut state = self.lock();
        while state.frames_in_flight >= window {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = match self.frame_done.wait_timeout(state, deadline - now) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    fn begin_frame(&self, orders: u64, warmup: bool) {
        let mut state = self.lock();
        state.frames_in_flight += 1;
        if warmup {
            state.warmup_in_flight += orders;
        } else {
            state.measured_in_flight += orders;
        }
    }

    /// `submit` refused a frame begun with `begin_frame`: its callback will never run.
    fn abort_frame(&self, orders: u64, warmup: bool, kind: &'static str) {
        let mut state = self.lock();
        state.end_frame(orders, warmup);
        state.count_failures(kind, orders, warmup);
        drop(state);
        self.frame_done.notify_all();
    }

    /// Counts orders that were never handed to a connection.
    fn count_unsent(&self, orders: u64, warmup: bool, kind: &'static str) {
        self.lock().count_failures(kind, orders, warmup);
    }

    /// The reply callback: classifies and records every order of the frame.
    fn complete_frame(&self, frame: &FrameInFlight, result: Result<&[Reply], &ClientError>) {
        let now = Instant::now();
        let latency = now.saturating_duration_since(frame.start);
        let mut state = self.lock();
        if state.finished {
            // Already counted as a timeout.
            return;
        }
        for (position, &order_id) in frame.order_ids.iter().enumerate() {
            let outcome = match result {
                Ok(replies) => match replies.get(position) {
                    Some(reply) => classify_reply(order_id, reply),
                    None => Outcome::Failed {
                        kind: crate::outcome::KIND_UNEXPECTED_REPLY,
                    },
                },
                Err(error) => Outcome::Failed {
                    kind: client_error_kind(error),
                },
            };
            state.count(outcome, latency, frame.warmup);
            if let (
                Outcome::Acknowledged {
                    status,
                    total_cents,
                },
                Some(record),
            ) = (outcome, &self.record)
            {
                // Sent under the lock: no line can follow the lane's finish.
                record.send(RecordLine {
                    order_id,
                    status,
                    total_cents,
                });
            }
        }
        if !frame.warmup {
            state.last_measured_reply = Some(now);
        }
        state.end_frame(frame.order_ids.len() as u64, frame.warmup);
        drop(state);
        self.frame_done.notify_all();
    }

    /// Moves what completed since the last call into `interval`.
    pub fn take_interval(&self, interval: &mut Tally) {
        let mut state = self.lock();
        interval.merge(&state.interval);
        state.interval.reset();
    }

    /// Orders sent and not yet answered.
    pub fn orders_in_flight(&self) -> u64 {
        let state = self.lock();
        state.measured_in_flight + state.warmup_in_flight
    }

    /// Ends the lane: orders still in flight become timeouts, later replies are ignored.
    pub fn finish(&self) -> LaneResult {
        let mut state = self.lock();
        state.finished = true;
        let measured = std::mem::take(&mut state.measured_in_flight);
        let warmup = std::mem::take(&mut state.warmup_in_flight);
        state.count_failures(KIND_TIMEOUT, measured, false);
        state.count_failures(KIND_TIMEOUT, warmup, true);
        LaneResult {
            measured: std::mem::take(&mut state.measured),
            warmup: std::mem::take(&mut state.warmup),
            last_measured_reply: state.last_measured_reply,
        }
    }
}

/// The sending half of a lane, owned by its thread.
pub struct LaneSender<'a> {
    index: usize,
    lane: Arc<Lane>,
    config: &'a Config,
    generator: OrderGenerator,
    connection: Option<Connection>,
    // Connection attempts made, to rotate over the addresses on reconnection.
    connect_attempts: usize,
    reconnect_at: Instant,
    connect_error_kind: &'static str,
}

impl<'a> LaneSender<'a> {
    /// Sender of lane `index` over an established `connection`.
    pub fn new(
        index: usize,
        lane: Arc<Lane>,
        config: &'a Config,
        generator: OrderGenerator,
        connection: Connection,
    ) -> LaneSender<'a> {
        LaneSender {
            index,
            lane,
            config,
            generator,
            connection: Some(connection),
            connect_attempts: 1,
            reconnect_at: Instant::now(),
            connect_error_kind: "connection_closed",
        }
    }

    /// Sends this lane's frames of `schedule`, each at its intended time from `start`.
    /// Frames that cannot be sent before `deadline` (the system stalled so long that the
    /// in-flight window never freed) are counted as `not_sent`. Returns the connection,
    /// which must stay open until the outstanding replies have been waited for.
    pub fn run_open_loop(
        mut self,
        schedule: &OpenLoopSchedule,
        start: Instant,
        deadline: Instant,
    ) -> Option<Connection> {
        let window = self.config.window_frames();
        let mut stalled = false;
        for slot in schedule.frames_of_connection(self.index, self.config.connections) {
            if stalled {
                self.lane
                    .count_unsent(slot.operations as u64, slot.warmup, KIND_NOT_SENT);
                continue;
            }
            let orders = self.generate(slot.operations);
            let intended = start + slot.offset;
            sleep_until(intended);
            if !self.lane.wait_for_window(window, deadline) {
                stalled = true;
                self.lane
                    .count_unsent(slot.operations as u64, slot.warmup, KIND_NOT_SENT);
                continue;
            }
            self.send(orders, intended, slot.warmup);
        }
        self.connection
    }

    /// Keeps `window` frames in flight until `end`; latency counts from the actual send.
    /// Frames sent before `warmup_end` are warmup. Returns the connection (see above).
    pub fn run_saturation(
        mut self,
        window: usize,
        warmup_end: Instant,
        end: Instant,
    ) -> Option<Connection> {
        while Instant::now() < end {
            if !self.lane.wait_for_window(window, end) {
                break;
            }
            if !self.ensure_connected() {
                // Nothing to measure without a connection: wait for the next attempt.
                sleep_until(self.reconnect_at.min(end));
                continue;
            }
            let orders = self.generate(self.config.batch);
            let now = Instant::now();
            self.send(orders, now, now < warmup_end);
        }
        self.connection
    }

    fn generate(&mut self, count: usize) -> Vec<PlaceOrder> {
        (0..count).map(|_| self.generator.next_order()).collect()
    }

    /// Submits one frame; failures to send are counted at once.
    fn send(&mut self, orders: Vec<PlaceOrder>, start: Instant, warmup: bool) {
        let count = orders.len() as u64;
        if !self.ensure_connected() {
            self.lane
                .count_unsent(count, warmup, self.connect_error_kind);
            return;
        }
        let Some(connection) = &self.connection else {
            return;
        };
        let frame = FrameInFlight {
            order_ids: orders.iter().map(|order| order.order_id).collect(),
            start,
            warmup,
        };
        let lane = Arc::clone(&self.lane);
        let mut operations: Vec<Operation> =
            orders.into_iter().map(Operation::PlaceOrder).collect();
        self.lane.begin_frame(count, warmup);
        let submitted = if operations.len() == 1 {
            let operation = operations.remove(0);
            connection.submit(&operation, move |result| {
                lane.complete_frame(&frame, result.as_ref().map(std::slice::from_ref));
            })
        } else {
            connection.submit_batch(&operations, move |result| {
                lane.complete_frame(&frame, result.as_deref());
            })
        };
        if let Err(error) = submitted {
            self.lane
                .abort_frame(count, warmup, client_error_kind(&error));
        }
    }

    /// Whether a live connection is at hand, reconnecting (rotating over the addresses,
    /// at most once per `RECONNECT_BACKOFF` after a failure) if the last one was lost.
    fn ensure_connected(&mut self) -> bool {
        if let Some(connection) = &self.connection {
            if !connection.is_closed() {
                return true;
            }
            // Dropping it joins its reader thread, which has failed every pending request.
            self.connection = None;
        }
        if Instant::now() < self.reconnect_at {
            return false;
        }
        let addresses = &self.config.addresses;
        let address = &addresses[(self.index + self.connect_attempts) % addresses.len()];
        self.connect_attempts += 1;
        match Connection::connect(address, connect_timeout(self.config)) {
            Ok(connection) => {
                self.connection = Some(connection);
                true
            }
            Err(error) => {
                self.connect_error_kind = client_error_kind(&error);
                self.reconnect_at = Instant::now() + RECONNECT_BACKOFF;
                false
            }
        }
    }
}

fn sleep_until(instant: Instant) {
    let now = Instant::now();
    if instant > now {
        std::thread::sleep(instant - now);
    }
}
