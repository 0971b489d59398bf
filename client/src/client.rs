//! A blocking client over a list of node addresses (DESIGN.md §7, the client side of the
//! traffic manager).
//!
//! It keeps one connection, to the first reachable address; on connection loss it fails
//! over to the next address; on `NotPrimary { hint }` it reconnects to the hint. Retryable
//! errors are retried with exponential backoff and jitter, always inside the request's
//! deadline (`ClientOptions::request_timeout`), never past it.
//!
//! Retries never apply a request twice. A request is *replayed* after an ambiguous failure
//! (sent, then timeout or connection loss: it may have been applied) only when replaying
//! it is harmless: reads, pings, `PlaceOrder` (the order id is the idempotency key: a
//! retry returns the original outcome) and `PutItem` without `expected_version` (it sets
//! absolute values). `Restock`, `CancelOrder` and a compare-and-set `PutItem` are retried
//! only after failures that prove they were not applied (not sent, `Overloaded`,
//! `NotPrimary`); after an ambiguous failure their error is returned to the caller.

use crate::connection::Connection;
use crate::error::{describe_io, ClientError};
use crate::limits::{BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, CLIENT_ADDRESSES_MAX};
use crate::random::Xorshift;
use quorder_proto::message::{Item, Operation, Order, PlaceOrder, PutItem, Reply};
use quorder_proto::shard::colocated_order_id;
use quorder_proto::ErrorReply;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Immediate (no backoff) redirects to a fresh `NotPrimary` hint within one request; past
/// this, two nodes that name each other cannot make the client spin.
const IMMEDIATE_REDIRECTS_MAX: u32 = 3;

/// Timeouts of a `Client`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Deadline of one request, retries included. Default 5 s.
    pub request_timeout: Duration,
    /// Most time one TCP connect may take. Default 1 s.
    pub connect_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

/// Answer of [`Client::ping`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingReply {
    /// Address of the node that answered.
    pub address: String,
    /// Shards of the cluster, as the node reports.
    pub shard_count: u32,
    /// Time from sending the ping to its answer, retries included.
    pub round_trip: Duration,
}

/// How one attempt failed.
enum Failure {
    /// Proven not applied: not sent, or refused before being applied.
    NotApplied(ClientError),
    /// Sent, and the outcome is unknown or an error the node reported after applying
    /// nothing it could not also apply again (the retry policy decides).
    Ambiguous(ClientError),
}

/// A blocking client over one or more node addresses. Not `Sync`: one thread drives it.
/// For many requests in flight, use [`Connection`] directly.
#[derive(Debug)]
pub struct Client {
    addresses: Vec<String>,
    options: ClientOptions,
    /// Index in `addresses` of the node to use (or to try first).
    current: usize,
    connection: Option<Connection>,
    shard_count: Option<u32>,
    random: Xorshift,
}

impl Client {
    /// Connects to the first reachable address of `addresses`, trying each once in order.
    /// Fails fast with `NoReachableNode` (listing each address's reason) when none answers;
    /// later requests retry connecting within their deadline.
    pub fn connect(addresses: &[String], options: ClientOptions) -> Result<Client, ClientError> {
        let mut unique: Vec<String> = Vec::new();
        for address in addresses {
            let address = address.trim();
            if !address.is_empty() && !unique.iter().any(|known| known == address) {
                unique.push(address.to_string());
            }
        }
        if unique.is_empty() {
            return Err(ClientError::InvalidRequest(
                "no node address given".to_string(),
            ));
        }
        if unique.len() > CLIENT_ADDRESSES_MAX {
            return Err(ClientError::InvalidRequest(format!(
                "{} node addresses given; at most {CLIENT_ADDRESSES_MAX}",
                unique.len()
            )));
        }
        let mut client = Client {
            addresses: unique,
            options,
            current: 0,
            connection: None,
            shard_count: None,
            random: Xorshift::from_entropy(),
        };
        let deadline = Instant::now() + options.connect_timeout * client.addresses.len() as u32;
        client.ensure_connected(deadline)?;
        Ok(client)
    }

    /// The addresses this client knows, including ones learned from `NotPrimary` hints.
    pub fn addresses(&self) -> &[String] {
        &self.addresses
    }

    /// Address of the open connection, if any.
    pub fn current_address(&self) -> Option<&str> {
        self.connection
            .as_ref()
            .filter(|connection| !connection.is_closed())
            .map(Connection::peer_address)
    }

    /// The options in force.
    pub fn options(&self) -> ClientOptions {
        self.options
    }

    /// Checks that a node answers; learns the shard count.
    pub fn ping(&mut self) -> Result<PingReply, ClientError> {
        let nonce = self.random.next_u64();
        let started = Instant::now();
        let reply = self.execute(&Operation::Ping { nonce })?;
        let round_trip = started.elapsed();
        match reply {
            Reply::Pong {
                nonce: echoed,
                shard_count,
            } => {
                if echoed != nonce {
                    return Err(ClientError::Unexpected(format!(
                        "pong carries nonce {echoed}, the ping sent {nonce}"
                    )));
                }
                if shard_count == 0 {
                    return Err(ClientError::Unexpected(
                        "node reports a cluster of zero shards".to_string(),
                    ));
                }
                self.shard_count = Some(shard_count);
                Ok(PingReply {
                    address: self.current_address().unwrap_or_default().to_string(),
                    shard_count,
                    round_trip,
                })
            }
            other => Err(unexpected("a pong", &other)),
        }
    }

    /// Shards of the cluster: learned from the last pong, or by pinging now.
    pub fn shard_count(&mut self) -> Result<u32, ClientError> {
        match self.shard_count {
            Some(count) => Ok(count),
            None => self.ping().map(|pong| pong.shard_count),
        }
    }

    /// A fresh non-zero order id on the shard of `first_sku`, so that an order whose lines
    /// all live there commits in one round. If the shard count cannot be learned (no node
    /// answers a ping) the id is random: any id still works, at the cost of a 2PC.
    pub fn new_order_id(&mut self, first_sku: u64) -> u128 {
        let shard_count = self.shard_count().ok();
        let random = &mut self.random;
        match shard_count {
            Some(count) => colocated_order_id(first_sku, count, || random.next_u128()),
            None => random.next_u128().max(1),
        }
    }

    /// Creates an item or replaces its stock and price; with `expected_version`, only if
    /// the item's version is that (a missing item has version 0).
    pub fn put_item(
        &mut self,
        sku: u64,
        available: u64,
        price_cents: u64,
        expected_version: Option<u64>,
    ) -> Result<Item, ClientError> {
        let operation = Operation::PutItem(PutItem {
            sku,
            available,
            price_cents,
            expected_version,
        });
        expect_item(self.execute(&operation)?)
    }

    /// Reads an item.
    pub fn get_item(&mut self, sku: u64) -> Result<Item, ClientError> {
        expect_item(self.execute(&Operation::GetItem { sku })?)
    }

    /// Adds `quantity` units to an item's available stock.
    pub fn restock(&mut self, sku: u64, quantity: u64) -> Result<Item, ClientError> {
        expect_item(self.execute(&Operation::Restock { sku, quantity })?)
    }

    /// Places an order. A rejected order is `Ok` with status `Rejected` and a reason: it is
    /// a recorded outcome, not an error. Retried with the same order id on any retryable
    /// failure, so the order is applied at most once.
    pub fn place_order(&mut self, order: &PlaceOrder) -> Result<Order, ClientError> {
        if order.order_id == 0 {
            return Err(ClientError::InvalidRequest(
                "order id 0 is not valid; use Client::new_order_id".to_string(),
            ));
        }
        expect_order(self.execute(&Operation::PlaceOrder(order.clone()))?)
    }

    /// Reads an order.
    pub fn get_order(&mut self, order_id: u128) -> Result<Order, ClientError> {
        expect_order(self.execute(&Operation::GetOrder { order_id })?)
    }

    /// Cancels a committed order, releasing its stock; with `expected_version`, only if
    /// the order's version is that.
    pub fn cancel_order(
        &mut self,
        order_id: u128,
        expected_version: Option<u64>,
    ) -> Result<Order, ClientError> {
        let operation = Operation::CancelOrder {
            order_id,
            expected_version,
        };
        expect_order(self.execute(&operation)?)
    }

    /// Sends one operation with failover and retries (see the module docs); an error reply
    /// becomes `Err(ClientError::Server(..))`.
    pub fn execute(&mut self, operation: &Operation) -> Result<Reply, ClientError> {
        let replay_safe = replay_is_safe(operation);
        self.run(replay_safe, |connection, deadline| {
            send_single(connection, operation, deadline)
        })
    }

    /// Sends `1..=BATCH_OPERATIONS_MAX` operations in one frame, with failover and retries
    /// of the whole batch. Per-operation error replies are returned as `Reply::Error` in
    /// their place; only an error for the whole frame is an `Err`. The batch is replayed
    /// after an ambiguous failure only if every operation in it may be.
    pub fn execute_batch(&mut self, operations: &[Operation]) -> Result<Vec<Reply>, ClientError> {
        let replay_safe = operations.iter().all(replay_is_safe);
        self.run(replay_safe, |connection, deadline| {
            send_batch(connection, operations, deadline)
        })
    }

    /// The retry loop shared by every request.
    fn run<T>(
        &mut self,
        replay_safe: bool,
        mut send: impl FnMut(&Connection, Instant) -> Result<T, Failure>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + self.options.request_timeout;
        let mut backoff_ms = BACKOFF_INITIAL_MS;
        let mut immediate_redirects = 0;
        loop {
            let failure = match self.ensure_connected(deadline) {
                Err(error) => Failure::NotApplied(error),
                Ok(connection) => match send(connection, deadline) {
                    Ok(value) => return Ok(value),
                    Err(failure) => failure,
                },
            };
            let (error, ambiguous) = match failure {
                Failure::NotApplied(error) => (error, false),
                Failure::Ambiguous(error) => (error, true),
            };
            if !error.is_retryable() || (ambiguous && !replay_safe) {
                return Err(error);
            }
            let redirected = self.recover_from(&error);
            let pause = if redirected && immediate_redirects < IMMEDIATE_REDIRECTS_MAX {
                immediate_redirects += 1;
                Duration::ZERO
            } else {
                self.jittered(&mut backoff_ms)
            };
            let now = Instant::now();
            if now + pause >= deadline {
                return Err(error);
            }
            thread::sleep(pause);
        }
    }

    /// Equal jitter: half the current backoff plus a random part of the other half; the
    /// backoff doubles up to `BACKOFF_MAX_MS`.
    fn jittered(&mut self, backoff_ms: &mut u64) -> Duration {
        let ceiling_ms = *backoff_ms;
        *backoff_ms = (ceiling_ms * 2).min(BACKOFF_MAX_MS);
        let half_ms = ceiling_ms / 2;
        Duration::from_millis(half_ms + self.random.below_or_equal(ceiling_ms - half_ms))
    }

    /// Adjusts the connection after a retryable error; true if it moved to a new hint.
    fn recover_from(&mut self, error: &ClientError) -> bool {
        match error {
            ClientError::Server(ErrorReply::NotPrimary { hint: Some(hint) }) => {
                self.follow_hint(hint)
            }
            // The node is alive and answering; it is the cluster that is busy or electing.
            ClientError::Server(_) | ClientError::Overloaded => false,
            // Every address was just tried; the next round starts where this one did.
            ClientError::NoReachableNode(_) => false,
            // The connection is lost or untrustworthy: fail over to the next address.
            _ => {
                self.connection = None;
                self.current = (self.current + 1) % self.addresses.len();
                false
            }
        }
    }

    fn follow_hint(&mut self, hint: &str) -> bool {
        let hint = hint.trim();
        if hint.is_empty() || self.current_address() == Some(hint) {
            return false;
        }
        let index = match self.addresses.iter().position(|known| known == hint) {
            Some(index) => index,
            None if self.addresses.len() < CLIENT_ADDRESSES_MAX => {
                self.addresses.push(hint.to_string());
                self.addresses.len() - 1
            }
            None => return false,
        };
        self.current = index;
        self.connection = None;
        true
    }

    /// The open connection, or a new one to the first reachable address starting at
    /// `current` (each tried once, within the deadline).
    fn ensure_connected(&mut self, deadline: Instant) -> Result<&Connection, ClientError> {
        if let Some(connection) = &self.connection {
            if connection.is_closed() {
                // Lost between requests: fail over like a loss in flight.
                self.connection = None;
                self.current = (self.current + 1) % self.addresses.len();
            }
        }
        if self.connection.is_none() {
            self.connection = Some(self.connect_any(deadline)?);
        }
        Ok(self
            .connection
            .as_ref()
            .expect("a connection was just stored"))
    }

    fn connect_any(&mut self, deadline: Instant) -> Result<Connection, ClientError> {
        let mut reasons = Vec::new();
        for step in 0..self.addresses.len() {
            let index = (self.current + step) % self.addresses.len();
            let address = &self.addresses[index];
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                reasons.push(format!("{address}: not tried before the deadline"));
                continue;
            }
            match Connection::connect(address, remaining.min(self.options.connect_timeout)) {
                Ok(connection) => {
                    self.current = index;
                    return Ok(connection);
                }
                Err(error) => reasons.push(format!("{address}: {}", describe_connect(&error))),
            }
        }
        Err(ClientError::NoReachableNode(reasons.join("; ")))
    }
}

fn describe_connect(error: &ClientError) -> String {
    match error {
        ClientError::Io(io) => describe_io(io),
        other => other.to_string(),
    }
}

/// Whether applying `operation` twice leaves the same state as applying it once.
fn replay_is_safe(operation: &Operation) -> bool {
    match operation {
        Operation::Ping { .. }
        | Operation::GetItem { .. }
        | Operation::GetOrder { .. }
        | Operation::PlaceOrder(_) => true,
        Operation::PutItem(put) => put.expected_version.is_none(),
        Operation::Restock { .. } | Operation::CancelOrder { .. } => false,
    }
}

/// Classifies an error seen after the request was written.
fn after_send(error: ClientError) -> Failure {
    match error {
        // The node refused before applying anything.
        ClientError::Server(ErrorReply::Overloaded | ErrorReply::NotPrimary { .. }) => {
            Failure::NotApplied(error)
        }
        other => Failure::Ambiguous(other),
    }
}

fn send_single(
    connection: &Connection,
    operation: &Operation,
    deadline: Instant,
) -> Result<Reply, Failure> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let request_id = connection
        .submit(operation, move |result| {
            let _ = sender.send(result);
        })
        .map_err(Failure::NotApplied)?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    match connection.wait(request_id, &receiver, remaining) {
        Ok(Reply::Error(reply)) => Err(after_send(ClientError::Server(reply))),
        Ok(reply) => Ok(reply),
        Err(error) => Err(after_send(error)),
    }
}

fn send_batch(
    connection: &Connection,
    operations: &[Operation],
    deadline: Instant,
) -> Result<Vec<Reply>, Failure> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let request_id = connection
        .submit_batch(operations, move |result| {
            let _ = sender.send(result);
        })
        .map_err(Failure::NotApplied)?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    connection
        .wait(request_id, &receiver, remaining)
        .map_err(after_send)
}

fn unexpected(wanted: &str, reply: &Reply) -> ClientError {
    ClientError::Unexpected(format!("expected {wanted}, got {reply:?}"))
}

fn expect_item(reply: Reply) -> Result<Item, ClientError> {
    match reply {
        Reply::Item(item) => Ok(item),
        other => Err(unexpected("an item", &other)),
    }
}

fn expect_order(reply: Reply) -> Result<Order, ClientError> {
    match reply {
        Reply::Order(order) => Ok(order),
        other => Err(unexpected("an order", &other)),
    }
}

#[cfg(test)]
mod tests;
