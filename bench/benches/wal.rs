//! WAL group commit: append a batch of 200-byte records, then one sync (one O_DIRECT
//! write + one fdatasync). Criterion reports the time per sync and, through the
//! throughput setting, records per second; the sync latency percentiles are printed
//! at the end because the tail matters more than the mean for commit latency.
//!
//! The WAL lives on one glommio executor driven from criterion's thread, in a fresh
//! directory under `QUORDER_BENCH_DIR` (default: the system temp dir), removed at the end.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use quorder_daemon::wal::{RecordHeader, Wal, WalOptions};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

const RECORD_PAYLOAD_BYTES: usize = 200;
const BATCH_RECORDS: [usize; 4] = [1, 8, 64, 256];
/// Bound on the latency samples kept per batch size.
const LATENCY_SAMPLES_MAX: usize = 1_000_000;

struct Fixture {
    executor: LocalExecutor,
    wal: Rc<Wal>,
    directory: PathBuf,
    next_index: u64,
}

impl Fixture {
    fn new() -> Self {
        let base =
            std::env::var_os("QUORDER_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let directory = base.join(format!("quorder-bench-wal-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("create bench directory");
        let executor = LocalExecutorBuilder::new(Placement::Unbound)
            .make()
            .expect("executor");
        let wal = executor.run(async {
            Wal::open(&directory, 0, WalOptions::default(), |_, _| Ok(()))
                .await
                .expect("open WAL")
        });
        Self {
            executor,
            wal: Rc::new(wal),
            directory,
            next_index: 1,
        }
    }

    /// Runs `iterations` rounds of (append `batch` records, sync), returning the total
    /// time and noting each sync's latency.
    fn run(&mut self, iterations: u64, batch: usize, latencies: &mut Vec<Duration>) -> Duration {
        let wal = Rc::clone(&self.wal);
        let payload = [0x5Au8; RECORD_PAYLOAD_BYTES];
        let first_index = self.next_index;
        self.next_index += iterations * batch as u64;
        self.executor.run(async move {
            let started = Instant::now();
            let mut index = first_index;
            for _ in 0..iterations {
                let sync_started = Instant::now();
                for _ in 0..batch {
                    let header = RecordHeader {
                        shard: (index % 4) as u32,
                        kind: 1,
                        term: 1,
                        index,
                        timestamp_ms: 0,
                    };
                    wal.append(&header, &payload).expect("append");
                    index += 1;
                }
                let report = wal.sync().await.expect("sync");
                assert_eq!(report.records, batch);
                if latencies.len() < LATENCY_SAMPLES_MAX {
                    latencies.push(sync_started.elapsed());
                }
            }
            started.elapsed()
        })
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction) as usize]
}

fn wal_append_sync(c: &mut Criterion) {
    let mut fixture = Fixture::new();
    let mut group = c.benchmark_group("wal_append_sync_200B");
    let mut summaries = Vec::new();
    for batch in BATCH_RECORDS {
        let mut latencies = Vec::new();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, &batch| {
            b.iter_custom(|iterations| fixture.run(iterations, batch, &mut latencies));
        });
        latencies.sort_unstable();
        if !latencies.is_empty() {
            summaries.push((
                batch,
                latencies.len(),
                percentile(&latencies, 0.5),
                percentile(&latencies, 0.99),
            ));
        }
    }
    group.finish();
    for (batch, samples, p50, p99) in summaries {
        let records_per_second = batch as f64 / p50.as_secs_f64();
        println!(
            "wal sync, batch {batch:>3}: {samples} syncs, p50 {p50:?}, p99 {p99:?} \
             (≈ {records_per_second:.0} records/s at p50)"
        );
    }
}

criterion_group!(benches, wal_append_sync);
criterion_main!(benches);
