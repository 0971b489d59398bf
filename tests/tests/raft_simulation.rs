//! Seeded simulation of per-shard Raft groups (3 or 5 nodes, 1 to 3 groups) under network
//! faults, partitions, crashes with torn writes, compaction, reads and leadership
//! transfers; see `quorder_tests::raft_sim` for what is checked.
//!
//! `QUORDER_RAFT_SIM_SEEDS=N` runs seeds 1..=N; `QUORDER_RAFT_SIM_SEED=S` replays one seed
//! bit-identically. Run it in release: `cargo test --release -p quorder-tests --test
//! raft_simulation`.

use quorder_tests::raft_sim::{RaftSim, RaftSimReport};
use std::time::Instant;

/// Default seed count: 10 to 20 s in release on a 2-core machine.
const DEFAULT_SEEDS: u64 = 20_000;

fn seeds() -> Vec<u64> {
    if let Some(seed) = std::env::var("QUORDER_RAFT_SIM_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
    {
        return vec![seed];
    }
    let count = std::env::var("QUORDER_RAFT_SIM_SEEDS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_SEEDS);
    (1..=count).collect()
}

#[test]
fn raft_groups_stay_safe_under_faults_and_converge_after_healing() {
    let started = Instant::now();
    let seeds = seeds();
    let mut total = RaftSimReport::default();
    for seed in &seeds {
        let seed = *seed;
        let result = std::panic::catch_unwind(|| RaftSim::new(seed).run());
        let report = match result {
            Ok(report) => report,
            Err(panic) => {
                eprintln!(
                    "raft simulation failed; replay with QUORDER_RAFT_SIM_SEED={seed} cargo test \
                     --release -p quorder-tests --test raft_simulation"
                );
                std::panic::resume_unwind(panic);
            }
        };
        total.committed += report.committed;
        total.leader_terms += report.leader_terms;
        total.crashes += report.crashes;
        total.snapshots_installed += report.snapshots_installed;
        total.reads_served += report.reads_served;
        total.transfers += report.transfers;
        total.partitions += report.partitions;
        total.messages_delivered += report.messages_delivered;
        total.heal_ticks = total.heal_ticks.max(report.heal_ticks);
    }
    println!(
        "{} seeds in {:.1} s: {} entries committed, {} leader terms, {} crashes, {} partitions, \
         {} snapshots installed, {} reads confirmed, {} transfers, {} messages delivered, \
         slowest convergence after healing {} ticks",
        seeds.len(),
        started.elapsed().as_secs_f64(),
        total.committed,
        total.leader_terms,
        total.crashes,
        total.partitions,
        total.snapshots_installed,
        total.reads_served,
        total.transfers,
        total.messages_delivered,
        total.heal_ticks
    );
    if seeds.len() >= 100 {
        assert!(total.crashes > 0, "no node ever crashed");
        assert!(
            total.snapshots_installed > 0,
            "no snapshot was ever installed"
        );
        assert!(total.reads_served > 0, "no read was ever confirmed");
        assert!(total.committed > 0, "nothing was ever committed");
    }
}
