//! Cluster status (`quorder status`): what every node says about itself and about its
//! mirror of every shard. Any reachable node answers for the whole cluster: it asks its
//! peers and marks those that do not answer in time as unreachable.

use rkyv::{Archive, Deserialize, Serialize};

/// Asks a node for the cluster's status.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct StatusRequest {
    /// Also ask the peers (`quorder status` sets it); without it the node reports only
    /// its own mirrors.
    pub include_peers: bool,
}

/// A node of the cluster map.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct NodeStatus {
    /// Node id.
    pub id: u64,
    /// Region label.
    pub region: String,
    /// Client address.
    pub addr: String,
    /// Whether the answering node heard from it for this status.
    pub reachable: bool,
}

/// Role of a mirror in its shard's group.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[rkyv(derive(Debug))]
#[repr(u8)]
pub enum MirrorRole {
    /// The primary.
    Leader = 0,
    /// A backup.
    Follower = 1,
    /// Standing for election.
    Candidate = 2,
    /// Asking whether it could win an election.
    PreCandidate = 3,
    /// Its node did not answer.
    Unknown = 4,
}

impl MirrorRole {
    /// Lower-case name for output.
    pub fn name(self) -> &'static str {
        match self {
            MirrorRole::Leader => "leader",
            MirrorRole::Follower => "follower",
            MirrorRole::Candidate => "candidate",
            MirrorRole::PreCandidate => "pre_candidate",
            MirrorRole::Unknown => "unknown",
        }
    }
}

/// One mirror of a shard, as its node reports it.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct MirrorStatus {
    /// The node holding the mirror.
    pub node: u64,
    /// Its role.
    pub role: MirrorRole,
    /// Its current term.
    pub term: u64,
    /// Highest index it knows committed.
    pub commit_index: u64,
    /// Highest index it applied.
    pub applied_index: u64,
    /// Digest of its state at `applied_index`.
    pub digest: u64,
}

/// One shard.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ShardStatus {
    /// The shard.
    pub shard: u32,
    /// Node of the primary, if one is known.
    pub primary: Option<u64>,
    /// Highest term any mirror reported.
    pub term: u64,
    /// The mirrors, by node id.
    pub mirrors: Vec<MirrorStatus>,
}

/// The answer to a `StatusRequest`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub struct ClusterStatus {
    /// Node that answered.
    pub answered_by: u64,
    /// Every node of the cluster map.
    pub nodes: Vec<NodeStatus>,
    /// Every shard.
    pub shards: Vec<ShardStatus>,
}

impl ClusterStatus {
    /// Merges what several nodes reported about their own mirrors into one view: for each
    /// shard, the mirrors sorted by node, the highest term, and the primary of that term.
    pub fn merge(
        answered_by: u64,
        nodes: Vec<NodeStatus>,
        reports: Vec<ShardStatus>,
    ) -> ClusterStatus {
        let mut shards: std::collections::BTreeMap<u32, ShardStatus> =
            std::collections::BTreeMap::new();
        for report in reports {
            let entry = shards.entry(report.shard).or_insert_with(|| ShardStatus {
                shard: report.shard,
                primary: None,
                term: 0,
                mirrors: Vec::new(),
            });
            entry.mirrors.extend(report.mirrors);
            // The primary is the one named in the highest term; a term has at most one,
            // so the order of the reports does not matter.
            if report.term > entry.term {
                entry.term = report.term;
                entry.primary = report.primary;
            } else if report.term == entry.term && entry.primary.is_none() {
                entry.primary = report.primary;
            }
        }
        let shards = shards
            .into_values()
            .map(|mut shard| {
                shard.mirrors.sort_by_key(|mirror| mirror.node);
                shard.mirrors.dedup_by_key(|mirror| mirror.node);
                shard
            })
            .collect();
        ClusterStatus {
            answered_by,
            nodes,
            shards,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(shard: u32, node: u64, term: u64, primary: Option<u64>) -> ShardStatus {
        let mirror = MirrorStatus {
            node,
            role: MirrorRole::Follower,
            term,
            commit_index: 1,
            applied_index: 1,
            digest: 7,
        };
        ShardStatus {
            shard,
            primary,
            term,
            mirrors: vec![mirror],
        }
    }

    #[test]
    fn merge_takes_the_primary_of_the_highest_term_in_any_order() {
        let reports = [
            report(0, 1, 5, Some(1)),
            report(0, 2, 6, None),
            report(0, 3, 6, Some(3)),
        ];
        for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [1, 2, 0]] {
            let shuffled = order.iter().map(|at| reports[*at].clone()).collect();
            let merged = ClusterStatus::merge(1, Vec::new(), shuffled);
            assert_eq!(
                (merged.shards[0].term, merged.shards[0].primary),
                (6, Some(3)),
                "{order:?}"
            );
            assert_eq!(merged.shards[0].mirrors.len(), 3);
        }
    }
}
