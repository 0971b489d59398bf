//! The binary: JSON on stdout and in --json, exit status 0 after a run, 1 with one line on
//! stderr when setup fails, 2 on a bad command line.

mod common;

use common::{config, node_with, temp_path};
use quorder_client::testing::FakeNode;
use std::net::TcpListener;
use std::process::Command;

fn loadgen(arguments: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_quorder-loadgen"))
        .args(arguments)
        .output()
        .expect("binary runs")
}

#[test]
fn a_run_prints_the_report_and_writes_the_json_file() {
    let node = FakeNode::start_store(4).expect("fake node");
    let json = temp_path("report.json");
    let json_text = json.display().to_string();
    let output = loadgen(&[
        "--addr",
        node.address(),
        "--rate",
        "200",
        "--duration",
        "1.2",
        "--json",
        &json_text,
    ]);
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is the JSON report");
    for key in [
        "committed",
        "rejected",
        "errors",
        "throughput_per_s",
        "latency_us",
    ] {
        assert!(report.get(key).is_some(), "missing {key}: {report}");
    }
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(report["latency_us"][key].is_u64(), "missing latency {key}");
    }
    assert_eq!(report["committed"], 240);
    let errors = report["errors"].as_object();
    assert!(errors.is_some_and(|errors| errors.is_empty()), "{report}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json file")).expect("json");
    assert_eq!(file, report);
    // One progress line per second on stderr.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("orders/s"), "{stderr}");
    let _ = std::fs::remove_file(&json);
}

#[test]
fn an_unreachable_node_fails_setup_with_one_line() {
    // A port that was free a moment ago: nothing listens there.
    let address = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").to_string()
    };
    let output = loadgen(&["--addr", &address, "--rate", "10", "--duration", "1"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&address), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn a_bad_command_line_exits_2() {
    let output = loadgen(&["--addr", "127.0.0.1:1", "--rate", "10", "--lines", "0"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--lines"));
}

#[test]
fn nodes_that_disagree_on_the_shard_count_fail_setup() {
    let four = FakeNode::start_store(4).expect("fake node");
    let eight = node_with(8, |_| None);
    let line = format!(
        "--addr {},{} --rate 10 --quiet",
        four.address(),
        eight.address()
    );
    let error = quorder_loadgen::run(&config(&line)).expect_err("setup must fail");
    assert!(error.to_string().contains("disagree"), "{error}");
}
