//! Crash-point injection for tests: `QUORDER_CRASH_POINT=NAME:N` makes the process abort
//! (no unwinding, no sync, like kill -9) the Nth time it reaches point NAME. Read from
//! the environment once at start-up; not reachable from any protocol.
//!
//! Points:
//! - `prepared`: a participant applied a prepare (stock reserved), before its vote leaves.
//! - `decided`: a coordinator's decision is durable and applied, before any participant
//!   is told.
//! - `committed`: a participant applied a commit, before its acknowledgement leaves.

use std::cell::Cell;
use std::sync::OnceLock;

/// Named points of the write path where a test may crash the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// See the module doc.
    Prepared,
    /// See the module doc.
    Decided,
    /// See the module doc.
    Committed,
}

impl CrashPoint {
    fn name(self) -> &'static str {
        match self {
            CrashPoint::Prepared => "prepared",
            CrashPoint::Decided => "decided",
            CrashPoint::Committed => "committed",
        }
    }
}

fn configured() -> Option<&'static (String, u64)> {
    static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let text = std::env::var("QUORDER_CRASH_POINT").ok()?;
            let (name, count) = text.split_once(':').unwrap_or((text.as_str(), "1"));
            Some((name.to_string(), count.parse().unwrap_or(1)))
        })
        .as_ref()
}

thread_local! {
    static HITS: Cell<u64> = const { Cell::new(0) };
}

/// Aborts the process if `point` is configured and reached for the configured time.
/// Each core counts its own hits.
pub fn reached(point: CrashPoint) {
    let Some((name, count)) = configured() else {
        return;
    };
    if name != point.name() {
        return;
    }
    let hits = HITS.with(|hits| {
        hits.set(hits.get() + 1);
        hits.get()
    });
    if hits >= *count {
        eprintln!("quorderd: crash point `{name}` reached; aborting");
        std::process::abort();
    }
}
