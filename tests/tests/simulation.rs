//! Seeded simulation of one node's shards under crashes and message loss.
//!
//! `QUORDER_SIM_SEEDS=N` runs seeds 1..=N (default 2000); `QUORDER_SIM_SEED=S` replays one.

use quorder_tests::sim::{Sim, SimOptions};

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("QUORDER_SIM_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var("QUORDER_SIM_SEEDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(2000);
    (1..=count).collect()
}

#[test]
fn shards_keep_their_invariants_under_crashes() {
    let mut crashes = 0;
    let mut committed = 0;
    for seed in seeds() {
        let result = std::panic::catch_unwind(|| Sim::new(seed, SimOptions::default()).run());
        match result {
            Ok(report) => {
                crashes += report.crashes;
                committed += report.committed;
            }
            Err(panic) => {
                eprintln!("simulation failed; replay with QUORDER_SIM_SEED={seed} cargo test -p quorder-tests --test simulation");
                std::panic::resume_unwind(panic);
            }
        }
    }
    assert!(crashes > 0, "the faulty phase never crashed the node");
    assert!(committed > 0, "no order ever committed");
}
