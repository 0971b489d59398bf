//! What nodes say to each other inside `Peer` frames (after the hello).

use crate::raft::message::Message;
use crate::raft::wire::{from_wire, ArchivedWireMessage, WireMessage};
use crate::txn::message::{ParticipantReply, ParticipantRequest};
use quorder_proto::status::ShardStatus;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// A peer message. The sender is the node at the other end of the connection.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum PeerMessage {
    /// Raft messages for the groups of this core's shards, gathered over one turn of the
    /// sending core: the heartbeats of all groups towards a peer travel as one message.
    Raft {
        /// (shard, message) pairs, in the order they were produced.
        messages: Vec<RaftEnvelope>,
    },
    /// Two-phase commit: to the primary of the participant shard.
    ToParticipant(ParticipantRequest),
    /// Two-phase commit: to the primary of the coordinator shard.
    ToCoordinator {
        /// Coordinating shard.
        coordinator: u32,
        /// The answer.
        reply: ParticipantReply,
    },
    /// A client operation for a shard whose primary is the receiving node. The receiver
    /// answers it (or refuses it) but never forwards it again.
    Forward {
        /// Matches the answer.
        token: u64,
        /// The shard.
        shard: u32,
        /// The validated operation archive, as the client sent it.
        payload: Vec<u8>,
    },
    /// Answer to `Forward`.
    ForwardReply {
        /// The forward's token.
        token: u64,
        /// The answer for the client.
        reply: quorder_proto::Reply,
    },
    /// Asks for the status of the receiving node's mirrors on the receiving core.
    StatusRequest {
        /// Echoed in the reply.
        token: u64,
    },
    /// Status of the sending node's mirrors on one core.
    StatusReply {
        /// The request's token.
        token: u64,
        /// One entry per mirror, each with one mirror.
        shards: Vec<ShardStatus>,
    },
}

/// One Raft message inside `PeerMessage::Raft`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct RaftEnvelope {
    /// The shard whose group it belongs to.
    pub shard: u32,
    /// The message.
    pub message: WireMessage,
}

/// A received peer message, with Raft messages already checked and converted.
#[derive(Debug)]
pub enum Received {
    /// Raft messages, by shard, in order.
    Raft(Vec<(u32, Message)>),
    /// Anything else, owned.
    Other(PeerMessage),
}

/// Serializes a peer message.
pub fn encode(message: &PeerMessage) -> AlignedVec {
    // Only allocation failure can fail here, which aborts anyway.
    rkyv::to_bytes::<rancor::Error>(message).expect("peer message serialization cannot fail")
}

/// Validates and converts a received body; the error says what was wrong.
pub fn decode(body: &[u8]) -> Result<Received, String> {
    let archived = rkyv::access::<ArchivedPeerMessage, rancor::Error>(body)
        .map_err(|_| "peer message is not a valid archive".to_string())?;
    if let ArchivedPeerMessage::Raft { messages } = archived {
        let mut converted = Vec::with_capacity(messages.len());
        for envelope in messages.iter() {
            let message = from_wire(&envelope.message as &ArchivedWireMessage)
                .map_err(|error| error.to_string())?;
            converted.push((envelope.shard.to_native(), message));
        }
        return Ok(Received::Raft(converted));
    }
    rkyv::deserialize::<PeerMessage, rancor::Error>(archived)
        .map(Received::Other)
        .map_err(|_| "peer message does not deserialize".to_string())
}
