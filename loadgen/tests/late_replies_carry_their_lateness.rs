//! No coordinated omission: when the node stalls, the orders scheduled during the stall
//! are charged the time they waited, measured from their intended send time.

mod common;

use common::{assert_accounting, config, node_with};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[test]
fn a_stall_shows_in_the_percentiles() {
    let stalled = AtomicBool::new(false);
    let node = node_with(1, move |_order| {
        // The first order stalls the connection for 300 ms; the rest queue behind it.
        if !stalled.swap(true, Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(300));
        }
        None
    });
    let line = format!(
        "--addr {} --rate 1000 --duration 1 --connections 1 --skus 10 --quiet",
        node.address()
    );
    let report = quorder_loadgen::run(&config(&line))
        .expect("run completes")
        .report;
    assert_accounting(&report);
    assert_eq!(report.committed, 1000, "{report:?}");
    // About 300 orders were due during the stall, waiting up to 300 ms: 30 % of the run.
    // Measured from the actual send they would all look fast.
    assert!(report.latency_us.max >= 280_000, "{:?}", report.latency_us);
    assert!(report.latency_us.p90 >= 100_000, "{:?}", report.latency_us);
    assert!(report.latency_us.p50 < 100_000, "{:?}", report.latency_us);
}
