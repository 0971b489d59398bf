//! Error replies and unanswered requests are counted by kind; only acknowledged orders
//! reach the record file; unanswered ones become timeouts after the grace period.

mod common;

use common::{assert_accounting, config, node_with, read_record, temp_path};
use quorder_client::testing::Action;
use quorder_proto::{ErrorReply, Reply};

#[test]
fn overloaded_unanswered_and_rejected() {
    // Order ids are pseudo-random, so a residue picks a stable fraction of them.
    let node = node_with(4, |order| match order.order_id % 10 {
        0 => Some(Action::Reply(Reply::Error(ErrorReply::Overloaded))),
        1 => Some(Action::NoReply),
        _ => None,
    });
    let record = temp_path("failures");
    // Every item has no stock: every answered order is rejected.
    let line = format!(
        "--addr {} --rate 1000 --duration 1 --connections 2 --skus 20 --stock 0 \
         --timeout-ms 300 --quiet --record {}",
        node.address(),
        record.display()
    );
    let report = quorder_loadgen::run(&config(&line))
        .expect("run completes")
        .report;
    assert_accounting(&report);
    assert_eq!(report.orders, 1000);
    let overloaded = report.errors.get("overloaded").copied().unwrap_or(0);
    let timeouts = report.errors.get("timeout").copied().unwrap_or(0);
    assert!((50..=150).contains(&overloaded), "{report:?}");
    assert!((50..=150).contains(&timeouts), "{report:?}");
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    assert_eq!(report.committed, 0);
    assert_eq!(report.rejected, 1000 - overloaded - timeouts);
    let lines = read_record(&record);
    assert_eq!(lines.len() as u64, report.rejected);
    assert!(lines.iter().all(|line| line["status"] == "rejected"));
    let _ = std::fs::remove_file(&record);
}
