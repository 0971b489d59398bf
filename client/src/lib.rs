//! quorder's Rust client library.
//!
//! - [`Connection`]: one pipelined TCP connection to one node; many requests in flight,
//!   replies matched by request id, callbacks run on the connection's reader thread.
//!   The load generator builds on it.
//! - [`Client`]: a blocking client over a list of node addresses, with failover,
//!   `NotPrimary` redirects, and retries with backoff inside each request's deadline.
//! - [`json`]: serde views of items and orders, as the `quorder` CLI prints them.
//! - [`testing`]: a small fake node speaking the real framing, for tests of code that
//!   uses this library. It is not the daemon.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod client;
pub mod connection;
pub mod error;
pub mod json;
pub mod limits;
mod random;
pub mod testing;

pub use client::{Client, ClientOptions, PingReply};
pub use connection::Connection;
pub use error::ClientError;
pub use quorder_proto;
