//! Helpers shared by the scenario tests. Each scenario file uses a subset of them.
#![allow(dead_code)]

use clap::Parser;
use quorder_client::testing::{Action, FakeNode, FakeStore};
use quorder_loadgen::{Args, Config, Report};
use quorder_proto::{Operation, PlaceOrder};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

/// Price the load generator gives every item by default.
pub const PRICE_CENTS: u64 = 100;

/// A checked configuration from a command line (without the program name).
pub fn config(line: &str) -> Config {
    let words = std::iter::once("quorder-loadgen").chain(line.split_whitespace());
    let args = Args::try_parse_from(words).expect("command line parses");
    Config::from_args(args).expect("command line is valid")
}

/// A fresh path in the temporary directory, unique to this process and `name`.
pub fn temp_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("quorder-loadgen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// The lines of a `--record` file, parsed.
pub fn read_record(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("record file exists")
        .lines()
        .map(|line| serde_json::from_str(line).expect("each record line is JSON"))
        .collect()
}

/// Every measured order is counted exactly once.
pub fn assert_accounting(report: &Report) {
    let errors: u64 = report.errors.values().sum();
    assert_eq!(
        report.orders,
        report.committed + report.rejected + errors,
        "orders are not counted exactly once: {report:?}"
    );
}

/// A fake node with item and order semantics, whose orders go through `on_order` first:
/// `None` lets the store answer, `Some(action)` answers instead.
pub fn node_with(
    shard_count: u32,
    on_order: impl Fn(&PlaceOrder) -> Option<Action> + Send + Sync + 'static,
) -> FakeNode {
    let store = Mutex::new(FakeStore::new(shard_count));
    FakeNode::start(move |operation| {
        if let Operation::PlaceOrder(order) = operation {
            if let Some(action) = on_order(order) {
                return action;
            }
        }
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        Action::Reply(store.apply(operation))
    })
    .expect("fake node starts")
}
