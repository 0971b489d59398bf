//! The wire forms of [`Message`]: rkyv twins the peer transport frames, and the checked
//! conversions both ways.
//!
//! `from_wire` takes an archive already validated by bytecheck and checks what bytecheck
//! cannot (entries contiguous and within bounds, chunk ranges inside the body), so the core
//! can assert on those properties instead of re-checking them. Payload bytes are copied
//! once, from the received frame into the entry's `AlignedVec`; nothing is re-encoded.

use super::log::{LogEntry, SnapshotMeta};
use super::message::{AppendResult, Message, SnapshotOutcome};
use crate::limits::{
    RAFT_APPEND_ENTRIES_MAX, RAFT_ENTRY_PAYLOAD_BYTES_MAX, RAFT_SNAPSHOT_BODY_BYTES_MAX,
    RAFT_SNAPSHOT_CHUNK_BYTES,
};
use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};
use std::rc::Rc;

/// Wire form of a [`LogEntry`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct WireEntry {
    /// Term of the leader that proposed it.
    pub term: u64,
    /// Position in the log.
    pub index: u64,
    /// `EntryKind` byte.
    pub kind: u8,
    /// Leader-assigned time of the proposal.
    pub timestamp_ms: u64,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// Wire form of [`AppendResult`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireAppendResult {
    /// See [`AppendResult::Accepted`].
    Accepted {
        /// Last index known to match.
        match_index: u64,
    },
    /// See [`AppendResult::Rejected`].
    Rejected {
        /// The `prev_index` of the rejected append.
        rejected_index: u64,
        /// Where the leader may try next.
        hint_index: u64,
        /// The follower's term of `hint_index`.
        hint_term: u64,
    },
}

/// Wire form of [`SnapshotOutcome`].
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireSnapshotOutcome {
    /// See [`SnapshotOutcome::Received`].
    Received {
        /// Bytes held so far.
        next_offset: u64,
    },
    /// See [`SnapshotOutcome::Installed`].
    Installed,
    /// See [`SnapshotOutcome::Refused`].
    Refused,
}

/// Wire form of [`Message`]; field meanings are those of the matching variant there.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum WireMessage {
    /// [`Message::PreVote`].
    PreVote {
        term: u64,
        last_index: u64,
        last_term: u64,
    },
    /// [`Message::PreVoteResponse`].
    PreVoteResponse { term: u64, granted: bool },
    /// [`Message::Vote`].
    Vote {
        term: u64,
        last_index: u64,
        last_term: u64,
        leadership_transfer: bool,
    },
    /// [`Message::VoteResponse`].
    VoteResponse { term: u64, granted: bool },
    /// [`Message::Append`].
    Append {
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<WireEntry>,
        commit: u64,
    },
    /// [`Message::AppendResponse`].
    AppendResponse { term: u64, result: WireAppendResult },
    /// [`Message::Heartbeat`].
    Heartbeat {
        term: u64,
        commit: u64,
        read_round: u64,
    },
    /// [`Message::HeartbeatResponse`].
    HeartbeatResponse { term: u64, read_round: u64 },
    /// [`Message::InstallSnapshotChunk`].
    InstallSnapshotChunk {
        term: u64,
        snapshot_index: u64,
        snapshot_term: u64,
        total_bytes: u64,
        offset: u64,
        data: Vec<u8>,
        last: bool,
    },
    /// [`Message::InstallSnapshotResponse`].
    InstallSnapshotResponse {
        term: u64,
        snapshot_index: u64,
        outcome: WireSnapshotOutcome,
    },
    /// [`Message::TimeoutNow`].
    TimeoutNow { term: u64 },
}

/// A validated archive that still breaks a rule of the protocol.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes are not a valid archive of a [`WireMessage`].
    #[error("invalid raft message archive")]
    InvalidArchive,
    /// An append carries more entries than any member sends.
    #[error("append of {count} entries exceeds the bound")]
    TooManyEntries {
        /// Entries in the message.
        count: usize,
    },
    /// An entry's index is not the one after the previous.
    #[error("entry index {got} where {expected} was due")]
    EntryOutOfPlace {
        /// Index in the message.
        got: u64,
        /// Index that follows the previous one.
        expected: u64,
    },
    /// An entry's term is below the previous entry's or above the leader's term.
    #[error("entry term {got} outside {low}..={high}")]
    EntryTermOutOfRange {
        /// Term in the message.
        got: u64,
        /// The previous entry's term.
        low: u64,
        /// The leader's term.
        high: u64,
    },
    /// An entry's payload exceeds the bound.
    #[error("entry payload of {bytes} bytes exceeds the bound")]
    PayloadTooLarge {
        /// Payload size.
        bytes: usize,
    },
    /// A snapshot chunk's range does not fit its body, or its body exceeds the bound.
    #[error("snapshot chunk at {offset}+{bytes} of a {total_bytes}-byte body (last: {last})")]
    ChunkOutOfRange {
        /// Where the chunk starts.
        offset: u64,
        /// Chunk size.
        bytes: usize,
        /// Announced body size.
        total_bytes: u64,
        /// Whether it claims to end the body.
        last: bool,
    },
}

/// The wire form of a message (payloads copied once into plain byte vectors).
pub fn to_wire(message: &Message) -> WireMessage {
    match message.clone() {
        Message::PreVote {
            term,
            last_index,
            last_term,
        } => WireMessage::PreVote {
            term,
            last_index,
            last_term,
        },
        Message::PreVoteResponse { term, granted } => {
            WireMessage::PreVoteResponse { term, granted }
        }
        Message::Vote {
            term,
            last_index,
            last_term,
            leadership_transfer,
        } => WireMessage::Vote {
            term,
            last_index,
            last_term,
            leadership_transfer,
        },
        Message::VoteResponse { term, granted } => WireMessage::VoteResponse { term, granted },
        Message::Append {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
        } => WireMessage::Append {
            term,
            prev_index,
            prev_term,
            entries: entries.iter().map(entry_to_wire).collect(),
            commit,
        },
        Message::AppendResponse { term, result } => WireMessage::AppendResponse {
            term,
            result: result.into(),
        },
        Message::Heartbeat {
            term,
            commit,
            read_round,
        } => WireMessage::Heartbeat {
            term,
            commit,
            read_round,
        },
        Message::HeartbeatResponse { term, read_round } => {
            WireMessage::HeartbeatResponse { term, read_round }
        }
        Message::InstallSnapshotChunk {
            term,
            meta,
            total_bytes,
            offset,
            data,
            last,
        } => WireMessage::InstallSnapshotChunk {
            term,
            snapshot_index: meta.index,
            snapshot_term: meta.term,
            total_bytes,
            offset,
            data,
            last,
        },
        Message::InstallSnapshotResponse {
            term,
            snapshot_index,
            outcome,
        } => WireMessage::InstallSnapshotResponse {
            term,
            snapshot_index,
            outcome: outcome.into(),
        },
        Message::TimeoutNow { term } => WireMessage::TimeoutNow { term },
    }
}

impl From<AppendResult> for WireAppendResult {
    fn from(result: AppendResult) -> WireAppendResult {
        match result {
            AppendResult::Accepted { match_index } => WireAppendResult::Accepted { match_index },
            AppendResult::Rejected {
                rejected_index,
                hint_index,
                hint_term,
            } => WireAppendResult::Rejected {
                rejected_index,
                hint_index,
                hint_term,
            },
        }
    }
}

impl From<SnapshotOutcome> for WireSnapshotOutcome {
    fn from(outcome: SnapshotOutcome) -> WireSnapshotOutcome {
        match outcome {
            SnapshotOutcome::Received { next_offset } => {
                WireSnapshotOutcome::Received { next_offset }
            }
            SnapshotOutcome::Installed => WireSnapshotOutcome::Installed,
            SnapshotOutcome::Refused => WireSnapshotOutcome::Refused,
        }
    }
}

fn entry_to_wire(entry: &LogEntry) -> WireEntry {
    WireEntry {
        term: entry.term,
        index: entry.index,
        kind: entry.kind,
        timestamp_ms: entry.timestamp_ms,
        payload: entry.payload.as_slice().to_vec(),
    }
}

/// The message of a validated archive, after checking the rules bytecheck cannot.
pub fn from_wire(archived: &ArchivedWireMessage) -> Result<Message, WireError> {
    Ok(match archived {
        ArchivedWireMessage::PreVote {
            term,
            last_index,
            last_term,
        } => Message::PreVote {
            term: term.to_native(),
            last_index: last_index.to_native(),
            last_term: last_term.to_native(),
        },
        ArchivedWireMessage::PreVoteResponse { term, granted } => Message::PreVoteResponse {
            term: term.to_native(),
            granted: *granted,
        },
        ArchivedWireMessage::Vote {
            term,
            last_index,
            last_term,
            leadership_transfer,
        } => Message::Vote {
            term: term.to_native(),
            last_index: last_index.to_native(),
            last_term: last_term.to_native(),
            leadership_transfer: *leadership_transfer,
        },
        ArchivedWireMessage::VoteResponse { term, granted } => Message::VoteResponse {
            term: term.to_native(),
            granted: *granted,
        },
        ArchivedWireMessage::Append {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
        } => {
            let (term, prev_index, prev_term) = (
                term.to_native(),
                prev_index.to_native(),
                prev_term.to_native(),
            );
            Message::Append {
                term,
                prev_index,
                prev_term,
                entries: entries_from_wire(term, prev_index, prev_term, entries.as_slice())?,
                commit: commit.to_native(),
            }
        }
        ArchivedWireMessage::AppendResponse { term, result } => Message::AppendResponse {
            term: term.to_native(),
            result: append_result_from_wire(result),
        },
        ArchivedWireMessage::Heartbeat {
            term,
            commit,
            read_round,
        } => Message::Heartbeat {
            term: term.to_native(),
            commit: commit.to_native(),
            read_round: read_round.to_native(),
        },
        ArchivedWireMessage::HeartbeatResponse { term, read_round } => Message::HeartbeatResponse {
            term: term.to_native(),
            read_round: read_round.to_native(),
        },
        ArchivedWireMessage::InstallSnapshotChunk { .. } => chunk_from_wire(archived)?,
        ArchivedWireMessage::InstallSnapshotResponse {
            term,
            snapshot_index,
            outcome,
        } => Message::InstallSnapshotResponse {
            term: term.to_native(),
            snapshot_index: snapshot_index.to_native(),
            outcome: outcome_from_wire(outcome),
        },
        ArchivedWireMessage::TimeoutNow { term } => Message::TimeoutNow {
            term: term.to_native(),
        },
    })
}

fn append_result_from_wire(result: &ArchivedWireAppendResult) -> AppendResult {
    match result {
        ArchivedWireAppendResult::Accepted { match_index } => AppendResult::Accepted {
            match_index: match_index.to_native(),
        },
        ArchivedWireAppendResult::Rejected {
            rejected_index,
            hint_index,
            hint_term,
        } => AppendResult::Rejected {
            rejected_index: rejected_index.to_native(),
            hint_index: hint_index.to_native(),
            hint_term: hint_term.to_native(),
        },
    }
}

fn outcome_from_wire(outcome: &ArchivedWireSnapshotOutcome) -> SnapshotOutcome {
    match outcome {
        ArchivedWireSnapshotOutcome::Received { next_offset } => SnapshotOutcome::Received {
            next_offset: next_offset.to_native(),
        },
        ArchivedWireSnapshotOutcome::Installed => SnapshotOutcome::Installed,
        ArchivedWireSnapshotOutcome::Refused => SnapshotOutcome::Refused,
    }
}

fn entries_from_wire(
    term: u64,
    prev_index: u64,
    prev_term: u64,
    archived: &[ArchivedWireEntry],
) -> Result<Vec<LogEntry>, WireError> {
    if archived.len() > RAFT_APPEND_ENTRIES_MAX {
        return Err(WireError::TooManyEntries {
            count: archived.len(),
        });
    }
    let mut entries = Vec::with_capacity(archived.len());
    let mut previous_term = prev_term;
    for (offset, wire) in archived.iter().enumerate() {
        let expected = prev_index.saturating_add(1 + offset as u64);
        let index = wire.index.to_native();
        if index != expected {
            return Err(WireError::EntryOutOfPlace {
                got: index,
                expected,
            });
        }
        let entry_term = wire.term.to_native();
        if entry_term < previous_term || entry_term > term {
            return Err(WireError::EntryTermOutOfRange {
                got: entry_term,
                low: previous_term,
                high: term,
            });
        }
        if wire.payload.len() > RAFT_ENTRY_PAYLOAD_BYTES_MAX {
            return Err(WireError::PayloadTooLarge {
                bytes: wire.payload.len(),
            });
        }
        let mut payload = AlignedVec::with_capacity(wire.payload.len());
        payload.extend_from_slice(wire.payload.as_slice());
        entries.push(LogEntry {
            term: entry_term,
            index,
            kind: wire.kind,
            timestamp_ms: wire.timestamp_ms.to_native(),
            payload: Rc::new(payload),
        });
        previous_term = entry_term;
    }
    Ok(entries)
}

fn chunk_from_wire(archived: &ArchivedWireMessage) -> Result<Message, WireError> {
    let ArchivedWireMessage::InstallSnapshotChunk {
        term,
        snapshot_index,
        snapshot_term,
        total_bytes,
        offset,
        data,
        last,
    } = archived
    else {
        return Err(WireError::InvalidArchive);
    };
    let (offset, total_bytes, last) = (offset.to_native(), total_bytes.to_native(), *last);
    let end = offset.checked_add(data.len() as u64);
    let fits = end.is_some_and(|end| end <= total_bytes && (!last || end == total_bytes));
    let bounded =
        data.len() <= RAFT_SNAPSHOT_CHUNK_BYTES && total_bytes <= RAFT_SNAPSHOT_BODY_BYTES_MAX;
    if !fits || !bounded {
        return Err(WireError::ChunkOutOfRange {
            offset,
            bytes: data.len(),
            total_bytes,
            last,
        });
    }
    Ok(Message::InstallSnapshotChunk {
        term: term.to_native(),
        meta: SnapshotMeta {
            index: snapshot_index.to_native(),
            term: snapshot_term.to_native(),
        },
        total_bytes,
        offset,
        data: data.as_slice().to_vec(),
        last,
    })
}

/// Encodes a message for the wire.
pub fn encode(message: &Message) -> AlignedVec {
    // Only allocation failure can fail here, which aborts anyway.
    rkyv::to_bytes::<rancor::Error>(&to_wire(message))
        .expect("raft message serialization cannot fail")
}

/// Validates and decodes a message off the wire (`bytes` aligned as rkyv requires).
pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
    let archived = rkyv::access::<ArchivedWireMessage, rancor::Error>(bytes)
        .map_err(|_| WireError::InvalidArchive)?;
    from_wire(archived)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: u64, index: u64, bytes: &[u8]) -> LogEntry {
        let mut payload = AlignedVec::new();
        payload.extend_from_slice(bytes);
        LogEntry {
            term,
            index,
            kind: 1,
            timestamp_ms: 77,
            payload: Rc::new(payload),
        }
    }

    fn every_variant() -> Vec<Message> {
        let meta = SnapshotMeta { index: 9, term: 2 };
        vec![
            Message::PreVote {
                term: 3,
                last_index: 4,
                last_term: 2,
            },
            Message::PreVoteResponse {
                term: 3,
                granted: true,
            },
            Message::Vote {
                term: 3,
                last_index: 4,
                last_term: 2,
                leadership_transfer: true,
            },
            Message::VoteResponse {
                term: 3,
                granted: false,
            },
            Message::Append {
                term: 3,
                prev_index: 4,
                prev_term: 2,
                entries: vec![entry(2, 5, b"order"), entry(3, 6, b"")],
                commit: 4,
            },
            Message::AppendResponse {
                term: 3,
                result: AppendResult::Accepted { match_index: 6 },
            },
            Message::AppendResponse {
                term: 3,
                result: AppendResult::Rejected {
                    rejected_index: 4,
                    hint_index: 2,
                    hint_term: 1,
                },
            },
            Message::Heartbeat {
                term: 3,
                commit: 4,
                read_round: 8,
            },
            Message::HeartbeatResponse {
                term: 3,
                read_round: 8,
            },
            Message::InstallSnapshotChunk {
                term: 3,
                meta,
                total_bytes: 10,
                offset: 6,
                data: vec![1, 2, 3, 4],
                last: true,
            },
            Message::InstallSnapshotResponse {
                term: 3,
                snapshot_index: 9,
                outcome: SnapshotOutcome::Received { next_offset: 6 },
            },
            Message::InstallSnapshotResponse {
                term: 3,
                snapshot_index: 9,
                outcome: SnapshotOutcome::Installed,
            },
            Message::InstallSnapshotResponse {
                term: 3,
                snapshot_index: 9,
                outcome: SnapshotOutcome::Refused,
            },
            Message::TimeoutNow { term: 3 },
        ]
    }

    #[test]
    fn every_message_survives_the_wire() {
        for message in every_variant() {
            assert_eq!(decode(&encode(&message)), Ok(message));
        }
    }

    #[test]
    fn appends_with_gaps_or_terms_out_of_order_are_refused() {
        let gap = Message::Append {
            term: 3,
            prev_index: 4,
            prev_term: 2,
            entries: vec![entry(2, 5, b""), entry(2, 7, b"")],
            commit: 0,
        };
        assert_eq!(
            decode(&encode(&gap)),
            Err(WireError::EntryOutOfPlace {
                got: 7,
                expected: 6
            })
        );
        let future = Message::Append {
            term: 3,
            prev_index: 4,
            prev_term: 2,
            entries: vec![entry(4, 5, b"")],
            commit: 0,
        };
        assert!(matches!(
            decode(&encode(&future)),
            Err(WireError::EntryTermOutOfRange { got: 4, .. })
        ));
        let backwards = Message::Append {
            term: 3,
            prev_index: 4,
            prev_term: 3,
            entries: vec![entry(2, 5, b"")],
            commit: 0,
        };
        assert!(matches!(
            decode(&encode(&backwards)),
            Err(WireError::EntryTermOutOfRange { .. })
        ));
    }

    #[test]
    fn chunks_outside_their_body_are_refused() {
        let chunk = |offset, total_bytes, last| Message::InstallSnapshotChunk {
            term: 1,
            meta: SnapshotMeta { index: 1, term: 1 },
            total_bytes,
            offset,
            data: vec![0; 4],
            last,
        };
        for (offset, total, last) in [
            (8, 10, false),
            (0, 10, true),
            (u64::MAX - 1, u64::MAX, false),
        ] {
            let result = decode(&encode(&chunk(offset, total, last)));
            assert!(
                matches!(result, Err(WireError::ChunkOutOfRange { .. })),
                "{offset} {total} {last}"
            );
        }
        let oversized = chunk(0, RAFT_SNAPSHOT_BODY_BYTES_MAX + 1, false);
        assert!(matches!(
            decode(&encode(&oversized)),
            Err(WireError::ChunkOutOfRange { .. })
        ));
    }

    #[test]
    fn garbage_is_not_a_message() {
        let mut bytes: AlignedVec = AlignedVec::new();
        bytes.extend_from_slice(&[0xff; 64]);
        assert_eq!(decode(&bytes), Err(WireError::InvalidArchive));
        let message = encode(&every_variant()[4]);
        let mut truncated: AlignedVec = AlignedVec::new();
        truncated.extend_from_slice(&message[..message.len() / 2]);
        assert!(decode(&truncated).is_err());
    }
}
