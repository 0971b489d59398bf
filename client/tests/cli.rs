//! The `quorder` CLI end to end: the real binary against a fake node with store semantics.

use quorder_client::testing::FakeNode;
use serde_json::Value;
use std::net::TcpListener;
use std::process::{Command, Output};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn quorder(address: &str, args: &[&str]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_quorder"))
        .args(["--addr", address, "--timeout-ms", "2000"])
        .args(args)
        .output()
        .expect("the quorder binary runs");
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn json(run: &Run) -> Value {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "one JSON object: {}",
        run.stdout
    );
    serde_json::from_str(&run.stdout).expect("valid JSON")
}

#[test]
fn items_and_orders_through_the_cli() {
    let node = FakeNode::start_store(8).expect("node");
    let address = node.address();

    let pong = json(&quorder(address, &["--json", "ping"]));
    assert_eq!(pong["shard_count"], 8);
    let human = quorder(address, &["ping"]);
    assert!(human
        .stdout
        .starts_with(&format!("pong from {address}: 8 shards")));

    let put = [
        "item",
        "put",
        "--sku",
        "5",
        "--available",
        "3",
        "--price-cents",
        "250",
    ];
    let item = json(&quorder(address, &[&["--json"], &put[..]].concat()));
    assert_eq!(
        item,
        serde_json::json!({"sku": 5, "available": 3, "reserved": 0, "sold": 0,
                           "price_cents": 250, "version": 1})
    );
    let conflict = quorder(address, &[&put[..], &["--expected-version", "7"]].concat());
    assert_eq!(conflict.code, 1);
    assert_eq!(
        conflict.stderr,
        "error: version conflict: current version is 1\n"
    );
    assert!(conflict.stdout.is_empty());

    let restocked = quorder(address, &["item", "restock", "--sku", "5", "--qty", "2"]);
    assert_eq!(
        restocked.stdout,
        "item 5: available 5, reserved 0, sold 0, price 250 cents, version 2\n"
    );

    let placed = json(&quorder(
        address,
        &[
            "--json",
            "order",
            "place",
            "--customer",
            "9",
            "--line",
            "5:2",
        ],
    ));
    assert_eq!(placed["status"], "committed");
    assert_eq!(placed["total_cents"], 500);
    assert_eq!(
        placed["lines"],
        serde_json::json!([{"sku": 5, "quantity": 2, "unit_price_cents": 250}])
    );
    let order_id = placed["order_id"].as_str().expect("hex id").to_string();
    assert_eq!(order_id.len(), 32);
    assert!(order_id
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));

    let again = json(&quorder(
        address,
        &[
            "--json",
            "order",
            "place",
            "--id",
            &order_id,
            "--customer",
            "9",
            "--line",
            "5:2",
        ],
    ));
    assert_eq!(again, placed, "same id, same outcome");

    let rejected = quorder(
        address,
        &["order", "place", "--customer", "9", "--line", "5:99"],
    );
    assert_eq!(rejected.code, 0, "a rejection is an outcome");
    assert!(rejected
        .stdout
        .contains("rejected: insufficient stock for sku 5 (available 3)"));
    let rejected_json = json(&quorder(
        address,
        &[
            "--json",
            "order",
            "place",
            "--customer",
            "9",
            "--line",
            "77:1",
        ],
    ));
    assert_eq!(rejected_json["status"], "rejected");
    assert_eq!(rejected_json["reason_kind"], "unknown_sku");

    let cancelled = json(&quorder(
        address,
        &[
            "--json",
            "order",
            "cancel",
            "--id",
            &order_id,
            "--expected-version",
            "1",
        ],
    ));
    assert_eq!(cancelled["status"], "cancelled");
    let fetched = json(&quorder(
        address,
        &["--json", "order", "get", "--id", &order_id],
    ));
    assert_eq!(fetched["version"], 2);

    let missing = quorder(address, &["order", "get", "--id", "ff"]);
    assert_eq!(
        (missing.code, missing.stderr.as_str()),
        (1, "error: not found\n")
    );
}

#[test]
fn unreachable_nodes_and_bad_arguments_fail_clearly() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let address = format!("127.0.0.1:{port}");
    let unreachable = quorder(&address, &["ping"]);
    assert_eq!(unreachable.code, 3);
    assert_eq!(
        unreachable.stderr,
        format!("error: cannot reach any node ({address}: connection refused)\n")
    );

    let bad_id = quorder(&address, &["order", "get", "--id", "not-hex"]);
    assert_eq!(bad_id.code, 2);
    assert!(bad_id.stderr.contains("--id"), "{}", bad_id.stderr);
    let bad_line = quorder(
        &address,
        &["order", "place", "--customer", "1", "--line", "5-2"],
    );
    assert_eq!(bad_line.code, 2);
    assert!(bad_line.stderr.contains("--line"), "{}", bad_line.stderr);
    assert!(bad_line.stderr.contains("SKU:QTY"), "{}", bad_line.stderr);
}
