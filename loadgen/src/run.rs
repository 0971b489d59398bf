//! One run from start to report: setup, the lanes, the progress line, the drain of
//! outstanding requests, the report and the output files.
//!
//! Time bounds: the senders stop at `warmup + duration` (open loop: frames that could not
//! be sent by `warmup + duration + timeout` are `not_sent`); outstanding requests then get
//! `--timeout-ms` to complete before they count as `timeout`. Count bound: the open-loop
//! schedule is fixed in advance; saturation is bounded by time and the window.

use crate::config::{Config, Pacing};
use crate::lane::{Lane, LaneResult, LaneSender};
use crate::limits::PROGRESS_INTERVAL;
use crate::orders::OrderGenerator;
use crate::prng::SplitMix64;
use crate::progress::{progress_line, Phase};
use crate::record::RecordWriter;
use crate::report::{Report, RunDescription};
use crate::schedule::OpenLoopSchedule;
use crate::setup::{self, connect_timeout, Cluster, SetupError};
use crate::stats::{Counts, Tally};
use quorder_client::Connection;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

/// What a completed run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The report (already written to `--json`, if given and possible).
    pub report: Report,
    /// Problems writing `--json` or `--record`; the run itself completed.
    pub output_errors: Vec<String>,
}

/// Runs the load described by `config`. `Err` only if the run could not start.
pub fn run(config: &Config) -> Result<RunOutcome, SetupError> {
    // Output files are opened first, so that a bad path fails before any load is sent.
    let json_file =
        match &config.json_path {
            Some(path) => Some(File::create(path).map_err(|error| {
                SetupError(format!("cannot create {}: {error}", path.display()))
            })?),
            None => None,
        };
    let record =
        match &config.record_path {
            Some(path) => Some(RecordWriter::create(path).map_err(|error| {
                SetupError(format!("cannot create {}: {error}", path.display()))
            })?),
            None => None,
        };
    let cluster = setup::prepare(config)?;
    let connections = connect_lanes(config)?;
    let lanes: Vec<Arc<Lane>> = (0..config.connections)
        .map(|_| Arc::new(Lane::new(record.as_ref().map(RecordWriter::sender))))
        .collect();

    let start = Instant::now();
    let results = drive(config, cluster, &lanes, connections, start);
    let measure_start = start + config.warmup;
    let send_end = measure_start + config.duration;

    let mut measured = Tally::default();
    let mut warmup = Counts::default();
    let mut last_reply = send_end;
    for result in &results {
        measured.merge(&result.measured);
        warmup.merge(&result.warmup);
        if let Some(reply) = result.last_measured_reply {
            last_reply = last_reply.max(reply);
        }
    }
    let warmup_orders = warmup.acknowledged() + warmup.errors_total();
    let elapsed = last_reply.saturating_duration_since(measure_start);
    let report = Report::build(describe(config, cluster), &measured, warmup_orders, elapsed);

    let mut output_errors = Vec::new();
    if let Some(writer) = record {
        if let Err(error) = writer.finish() {
            output_errors.push(format!("writing the record file failed: {error}"));
        }
    }
    if let Some(mut file) = json_file {
        if let Err(error) = file.write_all(report.to_json().as_bytes()) {
            output_errors.push(format!("writing the report file failed: {error}"));
        }
    }
    Ok(RunOutcome {
        report,
        output_errors,
    })
}

/// Opens every lane's connection before the clock starts; lane `i` uses address
/// `i mod addresses`.
fn connect_lanes(config: &Config) -> Result<Vec<Connection>, SetupError> {
    (0..config.connections)
        .map(|index| {
            let address = &config.addresses[index % config.addresses.len()];
            Connection::connect(address, connect_timeout(config)).map_err(|error| {
                SetupError(format!("connection {index} to {address} failed: {error}"))
            })
        })
        .collect()
}

/// Runs the senders, prints progress, waits for outstanding replies, finishes the lanes.
fn drive(
    config: &Config,
    cluster: Cluster,
    lanes: &[Arc<Lane>],
    connections: Vec<Connection>,
    start: Instant,
) -> Vec<LaneResult> {
    let schedule = match config.pacing {
        Pacing::Rate(rate) => Some(OpenLoopSchedule::new(
            rate,
            config.batch,
            config.warmup,
            config.duration,
        )),
        Pacing::Saturation { .. } => None,
    };
    let mut progress = Progress::new(config, start);
    let open_connections: Vec<Option<Connection>> = std::thread::scope(|scope| {
        let handles: Vec<ScopedJoinHandle<'_, Option<Connection>>> = connections
            .into_iter()
            .enumerate()
            .map(|(index, connection)| {
                let sender = LaneSender::new(
                    index,
                    Arc::clone(&lanes[index]),
                    config,
                    OrderGenerator::new(
                        SplitMix64::stream(config.seed, index as u64),
                        config.skus,
                        config.lines,
                        cluster.shard_count,
                    ),
                    connection,
                );
                let schedule = schedule.as_ref();
                scope.spawn(move || send_lane(sender, config, schedule, start))
            })
            .collect();
        while !handles.iter().all(ScopedJoinHandle::is_finished) {
            progress.tick(lanes, Phase::Measuring);
        }
        handles
            .into_iter()
            .map(|handle| match handle.join() {
                Ok(connection) => connection,
                // A sender's panic is a bug of this program: let it surface.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let drain_deadline = Instant::now() + config.timeout;
    while Instant::now() < drain_deadline && lanes.iter().any(|lane| lane.orders_in_flight() > 0) {
        progress.tick(lanes, Phase::Draining);
    }
    let results = lanes.iter().map(|lane| lane.finish()).collect();
    // Closing now fails what is still pending; the finished lanes ignore it.
    drop(open_connections);
    results
}

fn send_lane(
    sender: LaneSender<'_>,
    config: &Config,
    schedule: Option<&OpenLoopSchedule>,
    start: Instant,
) -> Option<Connection> {
    let warmup_end = start + config.warmup;
    let end = warmup_end + config.duration;
    match schedule {
        Some(schedule) => sender.run_open_loop(schedule, start, end + config.timeout),
        None => sender.run_saturation(config.window_frames(), warmup_end, end),
    }
}

/// The once-a-second progress line.
struct Progress {
    enabled: bool,
    start: Instant,
    warmup_end: Instant,
    last_tick: Instant,
    interval: Tally,
    totals: Counts,
}

impl Progress {
    fn new(config: &Config, start: Instant) -> Progress {
        Progress {
            enabled: config.progress,
            start,
            warmup_end: start + config.warmup,
            last_tick: start,
            interval: Tally::default(),
            totals: Counts::default(),
        }
    }

    /// Sleeps a little; prints a line when a second has passed since the last one.
    fn tick(&mut self, lanes: &[Arc<Lane>], phase: Phase) {
        std::thread::sleep(Duration::from_millis(10));
        let now = Instant::now();
        if now < self.last_tick + PROGRESS_INTERVAL {
            return;
        }
        for lane in lanes {
            lane.take_interval(&mut self.interval);
        }
        self.totals.merge(&self.interval.counts);
        let phase = match phase {
            Phase::Measuring if now < self.warmup_end => Phase::Warmup,
            other => other,
        };
        if self.enabled {
            eprintln!(
                "{}",
                progress_line(
                    now - self.start,
                    &self.interval,
                    now - self.last_tick,
                    &self.totals,
                    phase
                )
            );
        }
        self.interval.reset();
        self.last_tick = now;
    }
}

fn describe(config: &Config, cluster: Cluster) -> RunDescription {
    let (mode, rate_per_s) = match config.pacing {
        Pacing::Rate(rate) => ("open_loop", Some(rate)),
        Pacing::Saturation { .. } => ("saturation", None),
    };
    RunDescription {
        mode,
        rate_per_s,
        duration_s: config.duration.as_secs_f64(),
        warmup_s: config.warmup.as_secs_f64(),
        connections: config.connections,
        batch: config.batch,
        window: config.window_frames(),
        lines: config.lines,
        sku_first: config.skus.first,
        skus: config.skus.count,
        shard_count: cluster.shard_count,
        seed: config.seed,
        timeout_ms: config.timeout.as_millis() as u64,
    }
}
