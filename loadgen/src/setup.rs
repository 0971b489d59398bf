//! Setup before the load: reach every node, learn the shard count from `Ping`, create the
//! run's items with `PutItem`. Any failure here ends the run before it starts.
//!
//! Items are written without `expected_version`, so setup sets (not adds) each SKU's
//! available stock and price: a rerun against the same cluster refills the stock.
//! Requests that fail with a retryable error (connection lost, `overloaded`,
//! `unavailable`, `not_primary`, timeout) are retried up to `SETUP_ATTEMPTS_MAX` times;
//! `PutItem` without a version guard is idempotent, so a retry is always safe.

use crate::config::Config;
use crate::limits::{
    CONNECT_TIMEOUT_MAX, SETUP_ATTEMPTS_MAX, SETUP_BATCH_ITEMS, SETUP_RETRY_BACKOFF,
};
use quorder_client::{ClientError, Connection};
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

/// Pings every node, checks they agree on the shard count, and creates the items
/// through the first node.
pub fn prepare(config: &Config) -> Result<Cluster, SetupError> {
    let mut shard_count = None;
    let mut first_connection = None;
    for address in &config.addresses {
        let connection = Connection::connect(address, connect_timeout(config))
            .map_err(|error| SetupError(format!("cannot connect to {address}: {error}")))?;
        let count = ping(&connection, config.timeout)
            .map_err(|error| SetupError(format!("ping of {address} failed: {error}")))?;
        match shard_count {
            None => shard_count = Some(count),
            Some(known) if known != count => {
                return Err(SetupError(format!(
                    "nodes disagree on the shard count: {} says {known}, {address} says {count}",
                    config.addresses[0]
                )));
            }
            Some(_) => {}
        }
        first_connection.get_or_insert(connection);
    }
    let (Some(shard_count), Some(connection)) = (shard_count, first_connection) else {
        return Err(SetupError("no --addr given".to_string()));
    };
    put_items(connection, config)?;
    Ok(Cluster { shard_count })
}

fn ping(connection: &Connection, timeout: Duration) -> Result<u32, String> {
    let nonce = 0x71_0de7;
    let mut last_error = String::new();
    for attempt in 0..SETUP_ATTEMPTS_MAX {
        backoff(attempt);
        match connection.call(&Operation::Ping { nonce }, timeout) {
            Ok(Reply::Pong {
                nonce: echoed,
                shard_count,
            }) if echoed == nonce && shard_count > 0 => return Ok(shard_count),
            Ok(Reply::Error(error)) if retryable_reply(&error) => last_error = format!("{error:?}"),
            Ok(other) => return Err(format!("unexpected reply {other:?}")),
            Err(error) if error.is_retryable() && !connection.is_closed() => {
                last_error = error.to_string();
            }
            Err(error) => return Err(error.to_string()),
        }
    }
    Err(format!(
        "{last_error} (after {SETUP_ATTEMPTS_MAX} attempts)"
    ))
}

/// Writes every SKU of the run, a batch of `SETUP_BATCH_ITEMS` at a time.
fn put_items(mut connection: Connection, config: &Config) -> Result<(), SetupError> {
    let end = config.skus.first + config.skus.count;
    let mut chunk_first = config.skus.first;
    while chunk_first < end {
        let chunk_end = end.min(chunk_first + SETUP_BATCH_ITEMS as u64);
        let mut pending: Vec<u64> = (chunk_first..chunk_end).collect();
        chunk_first = chunk_end;
        let mut attempt = 0;
        while !pending.is_empty() {
            if attempt == SETUP_ATTEMPTS_MAX {
                return Err(SetupError(format!(
                    "creating items failed after {SETUP_ATTEMPTS_MAX} attempts; first \
                     unfinished sku {}",
                    pending[0]
                )));
            }
            backoff(attempt);
            attempt += 1;
            if connection.is_closed() {
                let address = connection.peer_address().to_string();
                connection = Connection::connect(&address, connect_timeout(config))
                    .map_err(|error| SetupError(format!("reconnecting to {address}: {error}")))?;
            }
            pending = put_batch(&connection, &pending, config)?;
        }
    }
    Ok(())
}

/// Sends one batch; returns the SKUs to retry.
fn put_batch(
    connection: &Connection,
    skus: &[u64],
    config: &Config,
) -> Result<Vec<u64>, SetupError> {
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
    let replies = match connection.call_batch(&operations, config.timeout) {
        Ok(replies) => replies,
        Err(error) if retryable(&error) => return Ok(skus.to_vec()),
        Err(error) => return Err(SetupError(format!("creating items failed: {error}"))),
    };
    let mut retry = Vec::new();
    for (&sku, reply) in skus.iter().zip(&replies) {
        match reply {
            Reply::Item(item) if item.sku == sku => {}
            Reply::Error(error) if retryable_reply(error) => retry.push(sku),
            other => {
                return Err(SetupError(format!(
                    "creating item {sku} failed: {}",
                    describe_reply(other)
                )))
            }
        }
    }
    Ok(retry)
}

fn retryable(error: &ClientError) -> bool {
    error.is_retryable()
}

fn retryable_reply(error: &ErrorReply) -> bool {
    matches!(
        error,
        ErrorReply::Overloaded | ErrorReply::Unavailable | ErrorReply::NotPrimary { .. }
    )
}

fn describe_reply(reply: &Reply) -> String {
    match reply {
        Reply::Error(error) => ClientError::Server(error.clone()).to_string(),
        other => format!("unexpected reply {other:?}"),
    }
}

fn backoff(attempt: u32) {
    if attempt > 0 {
        std::thread::sleep(SETUP_RETRY_BACKOFF * attempt);
    }
}
