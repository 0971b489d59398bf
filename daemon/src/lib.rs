//! quorderd, the replicated order-processing daemon.
//!
//! The deterministic core (`raft`, `store`, `txn`, `shard`) is sans-IO; the glommio shell
//! (`runtime`, `ingress`, `wal`, `snapshot`) performs the IO. See DESIGN.md for the map.
#![deny(missing_docs)]

// rkyv's archived twins carry no docs of their own; the originals do.
pub mod config;
pub mod crashpoint;
#[allow(missing_docs)]
pub mod entry;
pub mod ingress;
pub mod limits;
pub mod peer;
pub mod raft;
pub mod recovery;
pub mod runtime;
pub mod shard;
pub mod snapshot;
pub mod startup;
#[allow(missing_docs)]
pub mod store;
pub mod txn;
pub mod wal;
