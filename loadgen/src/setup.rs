//! Setup before the load: reach every node, learn the shard count from `Ping`, create the
//! run's items with `PutItem`. Any failure here ends the run before it starts.
//!
//! Setup goes through `quorder_client::Client`, so it gets the library's failover,
//! `NotPrimary` redirects and retries (each request within `--timeout-ms`). Items are
//! written in batches without `expected_version`, so setup sets (not adds) each SKU's
//! available stock and price: a rerun against the same cluster refills the stock, and a
//! replayed batch is harmless. An item refused inside a batch with a retryable error
//! (`overloaded`, `unavailable`, `not_primary`) is sent again, up to
//! `SETUP_ATTEMPTS_MAX` rounds.

use crate::config::Config;
use crate::limits::{
    CONNECT_TIMEOUT_MAX, SETUP_ATTEMPTS_MAX, SETUP_BATCH_ITEMS, SETUP_RETRY_BACKOFF,
};
use quorder_client::{Client, ClientError, ClientOptions};
use quorder_proto::{ErrorReply, Operation, PutItem, Reply};
use std::fmt;
use std::time::Duration;

/// Why setup failed; one line for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupError(pub String);

impl fmt::Display for SetupError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for SetupError {}

/// What setup learned about the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    /// Number of shards, as every node reported it.
    pub shard_count: u32,
}

/// Time allowed to establish one TCP connection.
pub fn connect_timeout(config: &Config) -> Duration {
    config.timeout.min(CONNECT_TIMEOUT_MAX)
}

fn client_options(config: &Config) -> ClientOptions {
    ClientOptions {
        request_timeout: config.timeout,
        connect_timeout: connect_timeout(config),
    }
}

/// Pings every node, checks that they agree on the shard count, and creates the items.
pub fn prepare(config: &Config) -> Result<Cluster, SetupError> {
    let mut shard_count: Option<u32> = None;
    for address in &config.addresses {
        let count = ping_one(address, config)?;
        if let Some(known) = shard_count.filter(|known| *known != count) {
            return Err(SetupError(format!(
                "nodes disagree on the shard count: {} says {known}, {address} says {count}",
                config.addresses[0]
            )));
        }
        shard_count = Some(count);
    }
    let Some(shard_count) = shard_count else {
        return Err(SetupError("no --addr given".to_string()));
    };
    let mut client = Client::connect(&config.addresses, client_options(config))
        .map_err(|error| SetupError(format!("cannot connect: {error}")))?;
    put_items(&mut client, config)?;
    Ok(Cluster { shard_count })
}

fn ping_one(address: &str, config: &Config) -> Result<u32, SetupError> {
    let addresses = [address.to_string()];
    let mut client = Client::connect(&addresses, client_options(config))
        .map_err(|error| SetupError(format!("cannot connect to {address}: {error}")))?;
    client
        .ping()
        .map(|pong| pong.shard_count)
        .map_err(|error| SetupError(format!("ping of {address} failed: {error}")))
}

/// Writes every SKU of the run, `SETUP_BATCH_ITEMS` per frame.
fn put_items(client: &mut Client, config: &Config) -> Result<(), SetupError> {
    let end = config.skus.first + config.skus.count;
    let mut chunk_first = config.skus.first;
    while chunk_first < end {
        let chunk_end = end.min(chunk_first + SETUP_BATCH_ITEMS as u64);
        let mut pending: Vec<u64> = (chunk_first..chunk_end).collect();
        chunk_first = chunk_end;
        for attempt in 0..SETUP_ATTEMPTS_MAX {
            if attempt > 0 {
                std::thread::sleep(SETUP_RETRY_BACKOFF * attempt);
            }
            pending = put_batch(client, &pending, config)?;
            if pending.is_empty() {
                break;
            }
        }
        if let Some(sku) = pending.first() {
            return Err(SetupError(format!(
                "creating item {sku} still refused after {SETUP_ATTEMPTS_MAX} attempts"
            )));
        }
    }
    Ok(())
}

/// Sends one batch; returns the SKUs to send again.
fn put_batch(client: &mut Client, skus: &[u64], config: &Config) -> Result<Vec<u64>, SetupError> {
    let operations: Vec<Operation> = skus
        .iter()
        .map(|&sku| {
            Operation::PutItem(PutItem {
                sku,
                available: config.stock,
                price_cents: config.price_cents,
                expected_version: None,
            })
        })
        .collect();
    let replies = client
        .execute_batch(&operations)
        .map_err(|error| SetupError(format!("creating items failed: {error}")))?;
    let mut retry = Vec::new();
    for (&sku, reply) in skus.iter().zip(&replies) {
        match reply {
            Reply::Item(item) if item.sku == sku => {}
            Reply::Error(error) if retryable(error) => retry.push(sku),
            Reply::Error(error) => {
                return Err(SetupError(format!(
                    "creating item {sku} failed: {}",
                    ClientError::Server(error.clone())
                )))
            }
            other => {
                return Err(SetupError(format!(
                    "creating item {sku} failed: unexpected reply {other:?}"
                )))
            }
        }
    }
    Ok(retry)
}

fn retryable(error: &ErrorReply) -> bool {
    matches!(
        error,
        ErrorReply::Overloaded | ErrorReply::Unavailable | ErrorReply::NotPrimary { .. }
    )
}
