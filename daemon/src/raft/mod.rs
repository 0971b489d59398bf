//! The consensus layer of a shard (DESIGN.md §5), sans-IO.
//!
//! Every write goes propose → persist → commit → apply over a log of (term, index)
//! entries. In this milestone a group has exactly one member, so an entry is committed
//! as soon as it is durable on that member; M2 grows this struct into full Raft (votes,
//! replication, majority commit) without changing how the shard drives it.

/// Position of an entry in a shard's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    /// Term of the leader that proposed it.
    pub term: u64,
    /// Index in the log, from 1.
    pub index: u64,
}

/// Role of this member of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Orders and proposes entries (the primary).
    Leader,
    /// Accepts entries from the leader (a backup).
    Follower,
}

/// Error of a proposal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// Only the leader proposes.
    #[error("not the leader of shard {shard}")]
    NotLeader {
        /// The shard.
        shard: u32,
    },
}

/// Log positions of one member of a shard's group.
#[derive(Debug)]
pub struct Group {
    shard: u32,
    role: Role,
    term: u64,
    last: EntryId,
    persisted_index: u64,
    commit_index: u64,
}

impl Group {
    /// A single-member group whose log ends at `last` (after recovery), leading in
    /// `last.term` (or term 1 for an empty log).
    pub fn single_member(shard: u32, last: EntryId) -> Group {
        let term = last.term.max(1);
        Group {
            shard,
            role: Role::Leader,
            term,
            last,
            persisted_index: last.index,
            commit_index: last.index,
        }
    }

    /// Role of this member.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Current term.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Last entry in the log.
    pub fn last(&self) -> EntryId {
        self.last
    }

    /// Highest committed index.
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// Assigns the next log position to a new entry.
    pub fn propose(&mut self) -> Result<EntryId, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { shard: self.shard });
        }
        self.last = EntryId {
            term: self.term,
            index: self.last.index + 1,
        };
        Ok(self.last)
    }

    /// The entries up to `index` are durable on this member. Returns the new commit index.
    pub fn persisted(&mut self, index: u64) -> u64 {
        assert!(
            index <= self.last.index,
            "shard {}: persisted beyond the log",
            self.shard
        );
        self.persisted_index = self.persisted_index.max(index);
        // One member: durable here is durable on a majority.
        self.commit_index = self.persisted_index;
        self.commit_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_member_commits_what_is_persisted() {
        let mut group = Group::single_member(3, EntryId { term: 0, index: 0 });
        let first = group.propose().expect("leader");
        let second = group.propose().expect("leader");
        assert_eq!((first.index, second.index), (1, 2));
        assert_eq!(group.commit_index(), 0);
        assert_eq!(group.persisted(1), 1);
        assert_eq!(group.persisted(2), 2);
        assert_eq!(group.persisted(1), 2, "commit index never goes back");
    }

    #[test]
    fn recovered_log_continues_after_last_entry() {
        let mut group = Group::single_member(0, EntryId { term: 4, index: 90 });
        assert_eq!(group.propose(), Ok(EntryId { term: 4, index: 91 }));
    }
}

// The consensus core of M2 (full Raft per shard); `Group` above gives way to `RaftNode`.
pub mod config;
mod election;
pub mod error;
mod follower;
pub mod log;
pub mod message;
pub mod node;
mod outbox;
pub mod progress;
mod random;
pub mod read_index;
pub mod ready;
mod replication;
mod snapshot_transfer;
pub mod state;
#[cfg(test)]
mod node_tests;
// rkyv's archived twins carry no docs of their own; the originals do.
#[allow(missing_docs)]
pub mod wire;
