//! `--max`: each connection keeps its window full for the duration, then stops.

mod common;

use common::{assert_accounting, config};
use quorder_client::testing::FakeNode;
use std::time::{Duration, Instant};

#[test]
fn saturation_runs_for_its_duration() {
    let node = FakeNode::start_store(2).expect("fake node");
    let line = format!(
        "--addr {} --max --window 4 --batch 4 --duration 0.5 --connections 2 --skus 100 \
         --lines 3 --quiet",
        node.address()
    );
    let started = Instant::now();
    let report = quorder_loadgen::run(&config(&line))
        .expect("run completes")
        .report;
    let took = started.elapsed();
    assert_accounting(&report);
    assert!(report.committed > 100, "{report:?}");
    assert_eq!(report.committed, report.orders);
    assert_eq!(report.committed % 4, 0, "whole batches of 4");
    assert_eq!(report.run.mode, "saturation");
    assert_eq!(report.run.rate_per_s, None);
    assert_eq!(report.run.window, 4);
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(5),
        "{took:?}"
    );
}
