//! `quorder ping`.

use super::{Context, Failure};
use quorder_client::json::PingView;

/// Pings the first reachable node.
pub fn run(context: &Context) -> Result<(), Failure> {
    let mut client = context.connect()?;
    let pong = client.ping()?;
    let view = PingView {
        address: pong.address,
        shard_count: pong.shard_count,
        round_trip_ms: pong.round_trip.as_secs_f64() * 1000.0,
    };
    context.output.print(&view, || {
        format!(
            "pong from {}: {} shards, round trip {:.3} ms",
            view.address, view.shard_count, view.round_trip_ms
        )
    })
}
