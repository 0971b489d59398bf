//! Messages between the members of one group. Every message carries its sender's term.
//!
//! These are the in-memory forms the core consumes and produces; `wire` has their rkyv
//! twins for the peer transport. Messages may be lost, duplicated, delayed and reordered:
//! each handler in the core is written to be safe under all four.

use super::log::{LogEntry, SnapshotMeta};

/// A message of the consensus protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Could I win an election for `term` (the sender's term + 1), given my log? Changes
    /// nobody's term.
    PreVote {
        /// The term the sender would campaign in.
        term: u64,
        /// Index of the sender's last entry.
        last_index: u64,
        /// Term of the sender's last entry.
        last_term: u64,
    },
    /// Answer to `PreVote`. A grant echoes the asked term; a refusal carries the
    /// responder's own term.
    PreVoteResponse {
        /// The asked term (granted) or the responder's term (refused).
        term: u64,
        /// Whether the responder would vote for the sender.
        granted: bool,
    },
    /// Vote for me in `term`.
    Vote {
        /// The candidate's (new) term.
        term: u64,
        /// Index of the candidate's last entry.
        last_index: u64,
        /// Term of the candidate's last entry.
        last_term: u64,
        /// The current leader asked for this election (TimeoutNow): voters disregard
        /// their recent contact with that leader.
        leadership_transfer: bool,
    },
    /// Answer to `Vote`.
    VoteResponse {
        /// The responder's term.
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
    },
    /// Entries after (`prev_index`, `prev_term`), and the leader's commit index. With no
    /// entries it probes where the follower's log matches.
    Append {
        /// The leader's term.
        term: u64,
        /// Index of the entry just before `entries`.
        prev_index: u64,
        /// Term of that entry.
        prev_term: u64,
        /// Contiguous entries from `prev_index + 1`.
        entries: Vec<LogEntry>,
        /// The leader's commit index.
        commit: u64,
    },
    /// Answer to `Append`, sent only once what it acknowledges is durable.
    AppendResponse {
        /// The follower's term.
        term: u64,
        /// Whether the entries were accepted.
        result: AppendResult,
    },
    /// Leadership assertion, commit propagation, and read-index confirmation.
    Heartbeat {
        /// The leader's term.
        term: u64,
        /// The leader's commit index, at most the follower's known match index.
        commit: u64,
        /// The leader's latest read round; echoed in the response.
        read_round: u64,
    },
    /// Answer to `Heartbeat`.
    HeartbeatResponse {
        /// The follower's term.
        term: u64,
        /// The read round of the heartbeat answered.
        read_round: u64,
    },
    /// A piece of a snapshot body, for a follower whose needed entries were compacted.
    InstallSnapshotChunk {
        /// The leader's term.
        term: u64,
        /// The last entry the snapshot covers.
        meta: SnapshotMeta,
        /// Size of the whole body.
        total_bytes: u64,
        /// Where `data` starts in the body.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
        /// Whether this chunk ends the body.
        last: bool,
    },
    /// Answer to `InstallSnapshotChunk`.
    InstallSnapshotResponse {
        /// The follower's term.
        term: u64,
        /// Index of the snapshot answered about.
        snapshot_index: u64,
        /// How far the follower got.
        outcome: SnapshotOutcome,
    },
    /// Start an election now, skipping pre-vote (leadership transfer to the receiver).
    TimeoutNow {
        /// The leader's term.
        term: u64,
    },
}

/// What a follower did with an `Append`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index`, durably.
    Accepted {
        /// Last index known to match.
        match_index: u64,
    },
    /// No entry (`prev_index`, `prev_term`) here. The hint is the follower's last index at
    /// or below `rejected_index` whose term is at most the leader's `prev_term`.
    Rejected {
        /// The `prev_index` of the rejected append.
        rejected_index: u64,
        /// Where the leader may try next.
        hint_index: u64,
        /// The follower's term of `hint_index`.
        hint_term: u64,
    },
}

/// What a follower did with a snapshot chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// The body is assembled up to `next_offset`; send from there.
    Received {
        /// Bytes held so far.
        next_offset: u64,
    },
    /// The snapshot is durable here (or the follower's log already covered it).
    Installed,
    /// The announced body exceeds what this member accepts.
    Refused,
}

impl Message {
    /// The sender's term.
    pub fn term(&self) -> u64 {
        match self {
            Message::PreVote { term, .. }
            | Message::PreVoteResponse { term, .. }
            | Message::Vote { term, .. }
            | Message::VoteResponse { term, .. }
            | Message::Append { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::Heartbeat { term, .. }
            | Message::HeartbeatResponse { term, .. }
            | Message::InstallSnapshotChunk { term, .. }
            | Message::InstallSnapshotResponse { term, .. }
            | Message::TimeoutNow { term } => *term,
        }
    }

    /// Whether only the leader of `term()` sends this message.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            Message::Append { .. }
                | Message::Heartbeat { .. }
                | Message::InstallSnapshotChunk { .. }
                | Message::TimeoutNow { .. }
        )
    }
}
