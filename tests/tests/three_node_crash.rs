//! kill -9 of one node of three under concurrent load, at several points (DESIGN.md §9.2,
//! §9.3, §9.4): after each restart every acknowledged order is there with its outcome,
//! and per SKU `available + reserved + sold` equals the stock put plus the restocks applied
//! (within the restocks in doubt), with `sold` equal to the units of the committed orders;
//! the mirrors converge to equal digests. Then bad frames at one node of the cluster get
//! their error replies and change nothing.

use quorder_proto::codec::{decode_reply, encode_operation};
use quorder_proto::frame::Header;
use quorder_proto::limits::FRAME_HEADER_BYTES;
use quorder_proto::{
    ErrorReply, FrameKind, Operation, OrderLine, Payment, PlaceOrder, PutItem, Reply,
};
use quorder_tests::cluster::{
    check_acknowledged, spawn_writers, Cluster, Ledger, Workload, FAST_RAFT_TOML,
};
use quorder_tests::rng::Rng;
use quorder_tests::workload::check_stock;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: u32 = 3;
const SHARDS: u32 = 8;
const SKUS: u64 = 40;
const INITIAL_STOCK: u64 = 300;
const KILL_POINTS: u64 = 5;
const WRITERS: u64 = 4;
const SEED: u64 = 0x3C0D_E5EE;
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(30);

const WORKLOAD: Workload = Workload {
    skus: SKUS,
    restock_percent: 10,
    two_line_percent: 40,
    request_timeout: Duration::from_secs(10),
};

#[test]
fn acknowledged_orders_survive_kill_nine_of_one_node_under_load() {
    let mut cluster = Cluster::start("three-node-crash", NODES, SHARDS, FAST_RAFT_TOML);
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
    let mut setup = cluster.client();
    for sku in 0..SKUS {
        setup
            .put_item(sku, INITIAL_STOCK, 100 + sku, None)
            .expect("create item");
    }
    let mut rng = Rng::new(SEED);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for point in 0..KILL_POINTS {
        // The first victim is the node with the most primaries; then any node.
        let victim = if point == 0 {
            cluster.node_with_most_primaries()
        } else {
            1 + rng.below(u64::from(NODES))
        };
        let stop = Arc::new(AtomicBool::new(false));
        let writers = spawn_writers(&cluster, WORKLOAD, WRITERS, point + 1, &stop, &ledger);
        std::thread::sleep(Duration::from_millis(300 + rng.below(700)));
        cluster.kill(victim);
        let killed = Instant::now();
        // Load goes on while the node is down and its primaries move, and while it
        // restarts and catches up.
        std::thread::sleep(Duration::from_millis(300 + rng.below(500)));
        cluster.restart(victim);
        let restarted = killed.elapsed();
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().expect("writer thread");
        }
        let stopped = killed.elapsed();
        cluster.wait_until_converged(CONVERGE_TIMEOUT);
        let converged = killed.elapsed();
        let ledger = ledger.lock().expect("ledger");
        let mut client = cluster.client();
        let stored = check_acknowledged(&mut client, &ledger);
        check_stock(&mut client, &ledger, &stored, SKUS, INITIAL_STOCK);
        eprintln!(
            "kill point {point} (seed {SEED:#x}): node {victim} killed; since the kill: \
             restarted {restarted:?}, writers stopped {stopped:?}, converged {converged:?}, \
             verified {:?}",
            killed.elapsed()
        );
    }
    let ledger = ledger.lock().expect("ledger");
    assert!(
        ledger.acknowledged.len() > 100,
        "too little load to mean anything: {}",
        ledger.acknowledged.len()
    );
    eprintln!(
        "{KILL_POINTS} kill points, {} acknowledged orders (slowest {:?}), {} in doubt, \
         errors {:?}",
        ledger.acknowledged.len(),
        ledger.slowest_acknowledgement(),
        ledger.in_doubt_orders.len(),
        ledger.errors
    );
    drop(ledger);
    bad_frames_change_nothing(&mut cluster);
}

fn frame(kind: FrameKind, request_id: u64, body: &[u8]) -> Vec<u8> {
    let mut bytes = Header::for_body(kind, request_id, body).encode().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to quorderd");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set read timeout");
    stream
}

/// Reads one reply frame and checks its request id.
fn read_reply(stream: &mut TcpStream, request_id: u64, case: &str) -> Reply {
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    stream
        .read_exact(&mut header_bytes)
        .unwrap_or_else(|error| panic!("{case}: no reply: {error}"));
    let header = Header::decode(&header_bytes)
        .unwrap_or_else(|error| panic!("{case}: bad reply header: {error}"));
    let mut body = vec![0u8; header.body_length as usize];
    stream.read_exact(&mut body).expect("reply body");
    header.check_body(&body).expect("reply body checksum");
    assert_eq!(header.request_id, request_id, "{case}: reply request id");
    decode_reply(&body).unwrap_or_else(|error| panic!("{case}: undecodable reply: {error}"))
}

/// One `BadFrame` reply with `request_id`, then a closed connection.
fn expect_bad_frame(addr: &str, bytes: &[u8], request_id: u64, case: &str) {
    let mut stream = connect(addr);
    stream.write_all(bytes).expect("send the bad frame");
    match read_reply(&mut stream, request_id, case) {
        Reply::Error(ErrorReply::BadFrame { .. }) => {}
        other => panic!("{case}: expected BadFrame, got {other:?}"),
    }
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("{case}: connection not closed after BadFrame: {other:?}"),
    }
}

/// A couple of malformed frames at node 2: each gets its error reply, the node keeps
/// serving, and the item they try to overwrite is unchanged.
fn bad_frames_change_nothing(cluster: &mut Cluster) {
    let target = cluster.node(2).addr.clone();
    let mut client = cluster.client();
    let watched = client.get_item(0).expect("read the watched item");
    let overwrite = encode_operation(&Operation::PutItem(PutItem {
        sku: 0,
        available: 7,
        price_cents: 1,
        expected_version: None,
    }))
    .expect("encode");

    let mut corrupt_body = frame(FrameKind::Request, 41, &overwrite);
    *corrupt_body.last_mut().expect("a body") ^= 0x40;
    expect_bad_frame(&target, &corrupt_body, 41, "body checksum mismatch");

    let mut corrupt_header = frame(FrameKind::Request, 42, &overwrite);
    corrupt_header[16] ^= 0x01;
    // A header that fails its checksum is not believed, request id included.
    expect_bad_frame(&target, &corrupt_header, 0, "header checksum mismatch");

    // A range error is refused by type and the connection stays usable.
    let zero_quantity = encode_operation(&Operation::PlaceOrder(PlaceOrder {
        order_id: client.new_order_id(0),
        customer: 1,
        lines: vec![OrderLine {
            sku: 0,
            quantity: 0,
        }],
        payment: Payment::None,
    }))
    .expect("encode");
    let mut stream = connect(&target);
    stream
        .write_all(&frame(FrameKind::Request, 43, &zero_quantity))
        .expect("send");
    match read_reply(&mut stream, 43, "zero quantity") {
        Reply::Error(ErrorReply::Invalid { .. }) => {}
        other => panic!("zero quantity: expected Invalid, got {other:?}"),
    }
    let ping = encode_operation(&Operation::Ping { nonce: 9 }).expect("encode");
    stream
        .write_all(&frame(FrameKind::Request, 44, &ping))
        .expect("send");
    assert!(
        matches!(
            read_reply(&mut stream, 44, "ping after Invalid"),
            Reply::Pong { nonce: 9, .. }
        ),
        "the connection stays usable after a range error"
    );

    assert!(cluster.is_running(2), "node 2 died of bad input");
    assert_eq!(
        client.get_item(0).expect("read the watched item"),
        watched,
        "bad frames changed the watched item"
    );
    cluster.wait_until_converged(CONVERGE_TIMEOUT);
}
