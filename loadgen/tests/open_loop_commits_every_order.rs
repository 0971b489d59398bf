//! Against a healthy node every scheduled order is committed, recorded once, and counted.

mod common;

use common::{assert_accounting, config, read_record, temp_path, PRICE_CENTS};
use quorder_client::testing::FakeNode;
use std::collections::BTreeSet;

fn run_and_check(extra: &str, name: &str) {
    let node = FakeNode::start_store(4).expect("fake node");
    let record = temp_path(name);
    let line = format!(
        "--addr {} --rate 2000 --duration 1 --connections 3 --skus 50 --lines 2 --quiet \
         --record {} {extra}",
        node.address(),
        record.display()
    );
    let outcome = quorder_loadgen::run(&config(&line)).expect("run completes");
    let report = &outcome.report;
    assert!(
        outcome.output_errors.is_empty(),
        "{:?}",
        outcome.output_errors
    );
    assert_accounting(report);
    assert_eq!(report.orders, 2000);
    assert_eq!(report.committed, 2000, "{report:?}");
    assert_eq!(report.rejected, 0);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.run.shard_count, 4);
    assert!(report.throughput_per_s > 1000.0, "{report:?}");
    assert!(report.latency_us.p50 > 0);
    assert!(report.latency_us.p50 <= report.latency_us.p99);
    assert!(report.latency_us.p99 <= report.latency_us.max);

    let lines = read_record(&record);
    assert_eq!(lines.len(), 2000);
    let ids: BTreeSet<&str> = lines
        .iter()
        .map(|line| line["order_id"].as_str().expect("hex id"))
        .collect();
    assert_eq!(ids.len(), 2000, "an order was recorded twice");
    assert!(ids.iter().all(|id| id.len() == 32));
    for line in &lines {
        assert_eq!(line["status"], "committed");
        assert_eq!(line["total_cents"], 2 * PRICE_CENTS);
    }
    // Setup created the items and the orders sold two units each.
    assert!(node.requests_received() >= 2000 + 50);
    let _ = std::fs::remove_file(&record);
}

#[test]
fn single_order_frames() {
    run_and_check("", "single");
}

#[test]
fn batch_frames() {
    run_and_check("--batch 8", "batch");
}
