//! Warmup orders are sent and recorded but left out of the report.

mod common;

use common::{assert_accounting, config, read_record, temp_path};
use quorder_client::testing::FakeNode;

#[test]
fn warmup_orders_are_apart() {
    let node = FakeNode::start_store(8).expect("fake node");
    let record = temp_path("warmup");
    let line = format!(
        "--addr {} --rate 1000 --warmup 0.4 --duration 0.6 --connections 2 --quiet --record {}",
        node.address(),
        record.display()
    );
    let report = quorder_loadgen::run(&config(&line))
        .expect("run completes")
        .report;
    assert_accounting(&report);
    assert_eq!(report.warmup_orders, 400);
    assert_eq!(report.orders, 600);
    assert_eq!(report.committed, 600);
    assert_eq!(read_record(&record).len(), 1000);
    let _ = std::fs::remove_file(&record);
}
