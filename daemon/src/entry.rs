//! Log entries of a shard: what the write path proposes, persists, commits and applies.
//!
//! An entry is `(term, index, kind, timestamp, payload)`. For `Operation` entries the
//! payload is the client's validated `Operation` archive byte for byte (zero-copy: the
//! front door's buffer becomes the WAL record and, in M2, the replication payload). For
//! `Command` entries the payload is an archived [`Command`] made by the shard itself.

use crate::store::TxnPhase;
use crate::txn::message::{LinePrice, ParticipantRequest};
use quorder_proto::RejectReason;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// What an entry's payload holds (the WAL record's `kind` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EntryKind {
    /// An archived client `Operation`.
    Operation = 1,
    /// An archived [`Command`].
    Command = 2,
    /// No payload; a new leader's first entry of its term (used from M2 on).
    Noop = 3,
}

impl EntryKind {
    /// Kind for a stored byte.
    pub fn from_byte(byte: u8) -> Option<EntryKind> {
        match byte {
            1 => Some(EntryKind::Operation),
            2 => Some(EntryKind::Command),
            3 => Some(EntryKind::Noop),
            _ => None,
        }
    }
}

/// Outcome of a two-phase commit, decided by the coordinator.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Decision {
    /// Every participant prepared; the prices of all remote lines.
    Commit {
        /// Prices reported by the participants.
        prices: Vec<LinePrice>,
    },
    /// A participant refused (or the transaction was abandoned).
    Abort {
        /// The reason the order is rejected with.
        reason: RejectReason,
    },
}

/// Entries a shard writes for itself.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum Command {
    /// This shard as a participant acts on a coordinator's request.
    Participant(ParticipantRequest),
    /// This shard as coordinator records the decision of a transaction. Nothing is told
    /// to any participant before this entry is durable.
    Decide {
        /// The order.
        order_id: u128,
        /// The decision.
        decision: Decision,
    },
    /// Every participant has acknowledged the decision (or the release): the coordinator
    /// stops re-driving the transaction.
    Complete {
        /// The order.
        order_id: u128,
        /// The phase whose acknowledgements are all in; a completion proposed for an
        /// earlier phase (say, committing, before a cancel moved it to releasing) is void.
        phase: TxnPhase,
    },
}

/// Serializes a command into an entry payload.
pub fn encode_command(command: &Command) -> AlignedVec {
    // Only allocation failure can fail here, which aborts anyway.
    rkyv::to_bytes::<rancor::Error>(command).expect("command serialization cannot fail")
}

/// Validated view of a command payload.
pub fn access_command(payload: &[u8]) -> Result<&ArchivedCommand, rancor::Error> {
    rkyv::access::<ArchivedCommand, rancor::Error>(payload)
}
