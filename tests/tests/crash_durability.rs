//! kill -9 under concurrent load at many points: every acknowledged order survives, and
//! per SKU `available + reserved + sold` equals the stock put plus the restocks applied,
//! with `sold` equal to the units of the committed orders.

use quorder_tests::process::{scratch_dir, Node};
use quorder_tests::rng::Rng;
use quorder_tests::workload::{
    check_acknowledged, check_stock, write_until_stopped, Ledger, Workload,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SKUS: u64 = 40;
const INITIAL_STOCK: u64 = 300;
const KILL_POINTS: u64 = 20;
const WRITERS: u64 = 4;

const WORKLOAD: Workload = Workload {
    skus: SKUS,
    restock_percent: 10,
    two_line_percent: 40,
    request_timeout: Duration::from_millis(800),
};

#[test]
fn acknowledged_orders_survive_kill_nine_under_load() {
    let dir = scratch_dir("crash-durability");
    let mut node = Node::start(&dir, 8, 2);
    let mut setup = node.client();
    for sku in 0..SKUS {
        setup
            .put_item(sku, INITIAL_STOCK, 100 + sku, None)
            .expect("create item");
    }
    let mut rng = Rng::new(0xC0FFEE);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for point in 0..KILL_POINTS {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let (addresses, stop, ledger) = (
                    vec![node.addr.clone()],
                    Arc::clone(&stop),
                    Arc::clone(&ledger),
                );
                let seed = point * 100 + writer + 1;
                std::thread::spawn(move || {
                    write_until_stopped(&addresses, WORKLOAD, seed, &stop, &ledger)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        node.kill();
        stop.store(true, Ordering::SeqCst);
        for writer in writers {
            writer.join().expect("writer thread");
        }
        let restarted = Instant::now();
        node.restart();
        let ready = restarted.elapsed();
        let ledger = ledger.lock().expect("ledger");
        let mut client = node.client();
        let stored = check_acknowledged(&mut client, &ledger);
        check_stock(&mut client, &ledger, &stored, SKUS, INITIAL_STOCK);
        eprintln!(
            "kill point {point}: ready in {ready:?}, verified in {:?}",
            restarted.elapsed() - ready
        );
    }
    let ledger = ledger.lock().expect("ledger");
    assert!(
        ledger.acknowledged.len() > 100,
        "too little load to mean anything: {}",
        ledger.acknowledged.len()
    );
    eprintln!(
        "{} kill points, {} acknowledged orders, {} in doubt",
        KILL_POINTS,
        ledger.acknowledged.len(),
        ledger.in_doubt_orders.len()
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}
