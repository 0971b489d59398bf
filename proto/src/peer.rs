//! The opening of a peer connection between two nodes (DESIGN.md §6): the dialing core
//! says who it is; the accepting node checks that both run the same cluster shape and
//! answers before anything else flows. Each connection joins the same-numbered cores of
//! two nodes, so a shard's replication traffic never crosses cores.

use rkyv::{Archive, Deserialize, Serialize};

/// First frame on a peer connection, dialer → acceptor.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct PeerHello {
    /// Dialing node.
    pub node_id: u64,
    /// Node the dialer believes it reached.
    pub to_node_id: u64,
    /// Dialing core; the acceptor serves the connection on its core of the same number.
    pub core: u32,
    /// Cores of the dialing node (must equal the acceptor's).
    pub cores: u32,
    /// Shards of the dialing node's cluster (must equal the acceptor's).
    pub shards: u32,
}

/// Acceptor → dialer.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum PeerHelloReply {
    /// The connection is open for peer frames.
    Accepted {
        /// The accepting node.
        node_id: u64,
    },
    /// The acceptor refuses; it closes the connection after this frame.
    Refused {
        /// Why (names the mismatch).
        reason: String,
    },
}
