//! A lost connection fails its outstanding orders, and the lane reconnects and goes on.

mod common;

use common::{assert_accounting, config};
use quorder_client::testing::FakeNode;
use std::time::Duration;

#[test]
fn the_run_survives_a_disconnect() {
    let node = FakeNode::start_store(4).expect("fake node");
    let line = format!(
        "--addr {} --rate 1000 --duration 1.5 --connections 2 --quiet",
        node.address()
    );
    let config = config(&line);
    let report = std::thread::scope(|scope| {
        let run = scope.spawn(|| quorder_loadgen::run(&config));
        std::thread::sleep(Duration::from_millis(500));
        node.disconnect_all();
        run.join()
            .expect("run thread")
            .expect("run completes")
            .report
    });
    assert_accounting(&report);
    assert_eq!(report.orders, 1500);
    // Orders in flight at the disconnect fail; after reconnecting the rest commit.
    assert!(report.committed >= 1300, "{report:?}");
    let allowed = ["connection_closed", "io"];
    assert!(
        report.errors.keys().all(|kind| allowed.contains(kind)),
        "{:?}",
        report.errors
    );
}
