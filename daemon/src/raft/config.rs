//! Configuration of one member of one shard's group, and its validation.
//!
//! Every size and count has an upper bound in `crate::limits`; `validate` names the field
//! and the reason for each mistake, so a bad configuration is refused at start-up rather
//! than discovered as a stall.

use crate::limits::{
    RAFT_APPEND_BYTES_MAX, RAFT_APPEND_ENTRIES_MAX, RAFT_ELECTION_TICKS_MAX,
    RAFT_INFLIGHT_BYTES_MAX, RAFT_SNAPSHOT_CHUNK_BYTES, RAFT_VOTERS_MAX,
};

/// Identity of a member (a node of the cluster; each node holds one mirror per shard).
pub type NodeId = u64;

/// How one member of a group behaves. Time is counted in ticks of the shell's timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// This member. Never 0 (0 means "nobody" on the wire).
    pub id: NodeId,
    /// Every voter of the group, this member included; no duplicates.
    pub voters: Vec<NodeId>,
    /// A leader sends heartbeats every this many ticks.
    pub heartbeat_ticks: u64,
    /// Lower bound of the randomized election timeout; also the leader's check-quorum
    /// period, the leader-stickiness window and the leadership-transfer deadline.
    pub election_ticks_min: u64,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_ticks_max: u64,
    /// Bytes of entries a leader may have sent to one follower and not yet seen acknowledged.
    pub max_inflight_bytes: usize,
    /// Most entries in one AppendEntries message.
    pub max_entries_per_append: usize,
    /// Most entry bytes in one AppendEntries message (one entry is always sent, even if larger).
    pub max_bytes_per_append: usize,
    /// Bytes of snapshot body per InstallSnapshot chunk.
    pub max_snapshot_chunk_bytes: usize,
    /// Ask whether an election could be won before bumping the term (no disruption by a
    /// member that was partitioned away).
    pub pre_vote: bool,
    /// A leader that has not heard from a majority within `election_ticks_min` steps down;
    /// members that heard from a leader within that window refuse to vote (stickiness).
    pub check_quorum: bool,
    /// Seed of the election-timeout randomness.
    pub seed: u64,
}

/// A configuration mistake: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("raft config: {field}: {reason}")]
pub struct RaftConfigError {
    /// The offending field of [`RaftConfig`].
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl RaftConfig {
    /// A configuration with default timing (in ticks of the shell's Raft timer) and sizes.
    pub fn with_defaults(id: NodeId, voters: Vec<NodeId>, seed: u64) -> RaftConfig {
        RaftConfig {
            id,
            voters,
            heartbeat_ticks: 2,
            election_ticks_min: 20,
            election_ticks_max: 40,
            max_inflight_bytes: 16 * 1024 * 1024,
            max_entries_per_append: 1024,
            max_bytes_per_append: 1024 * 1024,
            max_snapshot_chunk_bytes: RAFT_SNAPSHOT_CHUNK_BYTES,
            pre_vote: true,
            check_quorum: true,
            seed,
        }
    }

    /// Checks every field against its bound and the others.
    pub fn validate(&self) -> Result<(), RaftConfigError> {
        self.validate_members()?;
        self.validate_timing()?;
        self.validate_sizes()
    }

    fn validate_members(&self) -> Result<(), RaftConfigError> {
        if self.id == 0 {
            return Err(error("id", "0 is reserved for \"no member\"".into()));
        }
        if self.voters.is_empty() || self.voters.len() > RAFT_VOTERS_MAX {
            let reason = format!(
                "{} voters; 1 to {RAFT_VOTERS_MAX} allowed",
                self.voters.len()
            );
            return Err(error("voters", reason));
        }
        if !self.voters.contains(&self.id) {
            return Err(error(
                "voters",
                format!("does not contain this member {}", self.id),
            ));
        }
        let mut sorted = self.voters.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|pair| pair[0] == pair[1]) || sorted.first() == Some(&0) {
            return Err(error("voters", "duplicate member or member 0".into()));
        }
        Ok(())
    }

    fn validate_timing(&self) -> Result<(), RaftConfigError> {
        if self.heartbeat_ticks == 0 {
            return Err(error("heartbeat_ticks", "must be at least 1".into()));
        }
        // Several heartbeats per election timeout, or one lost heartbeat starts an election.
        if self.election_ticks_min < 2 * self.heartbeat_ticks + 1 {
            let reason = format!(
                "{} must exceed twice heartbeat_ticks ({})",
                self.election_ticks_min, self.heartbeat_ticks
            );
            return Err(error("election_ticks_min", reason));
        }
        // Timeouts are drawn from min..max: a single value would let candidates collide forever.
        if self.election_ticks_max < self.election_ticks_min + 2 {
            let reason = format!(
                "{} must exceed election_ticks_min ({}) by 2 or more so timeouts are randomized",
                self.election_ticks_max, self.election_ticks_min
            );
            return Err(error("election_ticks_max", reason));
        }
        if self.election_ticks_max > RAFT_ELECTION_TICKS_MAX {
            let reason = format!(
                "{} exceeds {RAFT_ELECTION_TICKS_MAX}",
                self.election_ticks_max
            );
            return Err(error("election_ticks_max", reason));
        }
        Ok(())
    }

    fn validate_sizes(&self) -> Result<(), RaftConfigError> {
        let bounded = [
            (
                "max_entries_per_append",
                self.max_entries_per_append,
                RAFT_APPEND_ENTRIES_MAX,
            ),
            (
                "max_bytes_per_append",
                self.max_bytes_per_append,
                RAFT_APPEND_BYTES_MAX,
            ),
            (
                "max_inflight_bytes",
                self.max_inflight_bytes,
                RAFT_INFLIGHT_BYTES_MAX,
            ),
            (
                "max_snapshot_chunk_bytes",
                self.max_snapshot_chunk_bytes,
                RAFT_SNAPSHOT_CHUNK_BYTES,
            ),
        ];
        for (field, value, max) in bounded {
            if value == 0 || value > max {
                return Err(error(field, format!("{value}; 1 to {max} allowed")));
            }
        }
        // A window smaller than one message would stall a follower behind one large append.
        if self.max_inflight_bytes < self.max_bytes_per_append {
            let reason = format!(
                "{} is below max_bytes_per_append ({})",
                self.max_inflight_bytes, self.max_bytes_per_append
            );
            return Err(error("max_inflight_bytes", reason));
        }
        Ok(())
    }

    /// Votes needed to win an election or commit an entry.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

fn error(field: &'static str, reason: String) -> RaftConfigError {
    RaftConfigError { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> RaftConfig {
        RaftConfig::with_defaults(1, vec![1, 2, 3], 9)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(valid().validate(), Ok(()));
        assert_eq!(valid().quorum(), 2);
    }

    #[test]
    fn each_mistake_names_its_field() {
        type Mistake = Box<dyn Fn(&mut RaftConfig)>;
        let cases: Vec<(&str, Mistake)> = vec![
            ("id", Box::new(|config| config.id = 0)),
            ("voters", Box::new(|config| config.voters = vec![2, 3])),
            ("voters", Box::new(|config| config.voters = vec![1, 2, 2])),
            (
                "voters",
                Box::new(|config| config.voters = (1..=10).collect()),
            ),
            (
                "heartbeat_ticks",
                Box::new(|config| config.heartbeat_ticks = 0),
            ),
            (
                "election_ticks_min",
                Box::new(|config| config.election_ticks_min = 4),
            ),
            (
                "election_ticks_max",
                Box::new(|config| config.election_ticks_max = 20),
            ),
            (
                "max_entries_per_append",
                Box::new(|config| config.max_entries_per_append = 0),
            ),
            (
                "max_bytes_per_append",
                Box::new(|config| config.max_bytes_per_append = usize::MAX),
            ),
            (
                "max_inflight_bytes",
                Box::new(|config| config.max_inflight_bytes = 1024),
            ),
            (
                "max_snapshot_chunk_bytes",
                Box::new(|config| config.max_snapshot_chunk_bytes = 0),
            ),
        ];
        for (field, mistake) in cases {
            let mut config = valid();
            mistake(&mut config);
            let result = config.validate();
            assert_eq!(result.map_err(|error| error.field), Err(field));
        }
    }
}
