//! quorder-loadgen: open-loop load for quorder, HDR latency, a JSON report
//! (DESIGN.md §10).
//!
//! The pure parts — PRNG, order generation, schedule, outcome classification, counters,
//! report, record lines — are modules of their own with unit tests; `lane`, `setup` and
//! `run` do the IO through `quorder_client::Connection`.
#![deny(missing_docs)]

pub mod config;
pub mod lane;
pub mod limits;
pub mod orders;
pub mod outcome;
pub mod prng;
pub mod progress;
pub mod record;
pub mod report;
pub mod run;
pub mod schedule;
pub mod setup;
pub mod stats;

pub use config::{Args, Config};
pub use report::Report;
pub use run::{run, RunOutcome};
