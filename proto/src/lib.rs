//! quorder's wire protocol: frames, message bodies, validation, limits and errors.
//!
//! This crate does no IO. The daemon, the client library, the load generator and the
//! payment simulator all speak through it, so a change here is a protocol change:
//! `proto/PROTOCOL.md` documents every byte and must change with it.
#![deny(missing_docs)]

pub mod codec;
pub mod frame;
pub mod limits;
// The archived twins that rkyv generates carry no docs of their own; the originals do.
#[allow(missing_docs)]
pub mod message;
#[allow(missing_docs)]
pub mod peer;
pub mod shard;
#[allow(missing_docs)]
pub mod status;
pub mod validate;

pub use frame::{FrameError, FrameKind, Header, PROTOCOL_VERSION};
pub use message::*;
