//! quorder's test kit: the deterministic simulator and helpers that start real
//! `quorderd` processes for cluster, crash and bad-input tests.
#![deny(missing_docs)]

pub mod cluster;
pub mod process;
pub mod raft_sim;
pub mod rng;
pub mod sim;
pub mod workload;
