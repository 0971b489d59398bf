//! Operating errors of the calls a shell makes on a group: typed, for the caller to handle
//! (redirect, retry later, reply `Overloaded`). Broken invariants are asserts instead.

use super::config::NodeId;

/// Why a proposal, a read or a leadership transfer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader proposes; `leader` is the one this member follows, if known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this member follows, if known.
        leader: Option<NodeId>,
    },
    /// Leadership is being handed to `to`; retry there (or here once the transfer ends).
    #[error("leadership is being transferred to {to}")]
    Transferring {
        /// The member taking over.
        to: NodeId,
    },
    /// Too many entries uncommitted or reads unconfirmed; retry later.
    #[error("overloaded")]
    Overloaded,
    /// The payload exceeds `RAFT_ENTRY_PAYLOAD_BYTES_MAX`.
    #[error("entry payload of {bytes} bytes is too large")]
    PayloadTooLarge {
        /// Size of the refused payload.
        bytes: usize,
    },
    /// The member named is not a voter of this group.
    #[error("{node} is not a voter of this group")]
    UnknownNode {
        /// The member named.
        node: NodeId,
    },
}
