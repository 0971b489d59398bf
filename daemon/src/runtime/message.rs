//! What cores send each other over the bounded channel mesh.

use crate::txn::message::{ParticipantReply, ParticipantRequest};
use quorder_proto::Reply;
use rkyv::util::AlignedVec;

/// One message between two cores of a node.
#[derive(Debug)]
pub enum CoreMessage {
    /// A client operation for a shard owned by the receiving core. The payload is the
    /// validated `Operation` archive as it came off the wire.
    Request {
        /// Core waiting for the answer.
        origin_core: u32,
        /// Matches the answer to the waiting request on the origin core.
        token: u64,
        /// Shard addressed.
        shard: u32,
        /// The operation.
        payload: AlignedVec,
    },
    /// Answer to a `Request`.
    Response {
        /// The request's token.
        token: u64,
        /// The answer.
        reply: Reply,
    },
    /// Two-phase commit: coordinator → participant.
    ToParticipant(ParticipantRequest),
    /// Two-phase commit: participant → coordinator.
    ToCoordinator {
        /// Coordinating shard.
        coordinator: u32,
        /// The answer.
        reply: ParticipantReply,
    },
    /// A greeted peer connection from node `from` for the receiving core: a file
    /// descriptor this core now owns (duplicated by the accepting core, which closed its own).
    PeerConnection {
        /// The socket.
        fd: std::os::fd::RawFd,
        /// The dialing node.
        from: u64,
    },
    /// Asks a core for the status of its mirrors (and, with `include_peers`, of the
    /// same-numbered core's mirrors on every peer).
    Status {
        /// Core waiting for the answer.
        origin_core: u32,
        /// Matches the answer.
        token: u64,
        /// Ask the peers too.
        include_peers: bool,
    },
    /// Answer to `Status`.
    StatusResponse {
        /// The request's token.
        token: u64,
        /// One entry per mirror.
        shards: Vec<quorder_proto::status::ShardStatus>,
        /// Peers that answered.
        reachable: Vec<u64>,
    },
}

/// How a shard answers a client request.
#[derive(Debug)]
pub enum ReplySink {
    /// The client's connection is on this core.
    Local(futures_channel::oneshot::Sender<Reply>),
    /// The client's connection is on another core.
    Remote {
        /// That core.
        core: u32,
        /// The request's token there.
        token: u64,
    },
    /// The request was forwarded by another node (same core number there).
    Peer {
        /// That node.
        node: u64,
        /// The forward's token there.
        token: u64,
    },
}
