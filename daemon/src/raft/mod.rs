//! The consensus layer of a shard (DESIGN.md §5), sans-IO: one Raft group per shard with
//! one member (mirror) on every node.
//!
//! [`node::RaftNode`] is one member: `tick`, `step`, `propose`, `read_index`,
//! `transfer_leadership`, then `ready()` hands out what to persist, what to send (now, or
//! only after the persist), what to apply and which reads to serve (raft-rs's RawNode
//! shape). Elections use pre-vote and check-quorum; replication is pipelined and batched
//! under an in-flight byte bound per follower; only current-term entries commit by count;
//! lagging followers get the snapshot in chunks. `shard::Shard` drives it; the simulator
//! drives the same code.

/// Position of an entry in a shard's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    /// Term of the leader that proposed it.
    pub term: u64,
    /// Index in the log, from 1.
    pub index: u64,
}

pub use error::ProposeError;
pub use state::Role;

pub mod config;
mod election;
pub mod error;
mod follower;
pub mod log;
pub mod message;
pub mod node;
#[cfg(test)]
mod node_tests;
mod outbox;
pub mod progress;
mod random;
pub mod read_index;
pub mod ready;
mod replication;
mod snapshot_transfer;
pub mod state;
// rkyv's archived twins carry no docs of their own; the originals do.
#[allow(missing_docs)]
pub mod wire;
