//! The cluster part of a node's configuration: its identity, its peers, Raft timing and
//! the simulated inter-region delay used by tests and benchmarks.
//!
//! ```toml
//! node_id = 2
//! [[nodes]]
//! id = 1
//! region = "us-east"
//! client_addr = "10.0.0.1:7400"
//! peer_addr = "10.0.0.1:7401"
//! [[nodes]]
//! id = 2
//! ...
//! [raft]
//! heartbeat_interval_ms = 100
//! election_timeout_min_ms = 1000
//! election_timeout_max_ms = 2000
//! [wan]
//! delay_ms = 40        # tests and benchmarks only: delay to nodes of other regions
//! ```
//!
//! Every node holds a mirror of every shard. Node ids identify mirrors in the Raft log,
//! so an id is never reused for another machine or another data directory (the data
//! directory records its node id and refuses to start under another).

use super::ConfigError;
use crate::limits::NODES_MAX;
use serde::Deserialize;
use std::net::SocketAddr;

/// Identity of a node in the cluster.
pub type NodeId = u64;

/// One `[[nodes]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Node id, unique, non-zero.
    pub id: NodeId,
    /// Failure-domain label.
    pub region: String,
    /// Address clients use.
    pub client_addr: String,
    /// Address peers use.
    pub peer_addr: Option<String>,
}

/// The `[raft]` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSection {
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: Option<u64>,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: Option<u64>,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_max_ms: Option<u64>,
}

/// The `[wan]` section as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WanSection {
    /// Delay added to every peer message towards a node of another region.
    pub delay_ms: Option<u64>,
}

/// A validated node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Node id.
    pub id: NodeId,
    /// Region.
    pub region: String,
    /// Client address.
    pub client_addr: SocketAddr,
    /// Peer address (absent only in a one-node cluster).
    pub peer_addr: Option<SocketAddr>,
}

/// Raft timing, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    /// Leader heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Election timeout lower bound.
    pub election_timeout_min_ms: u64,
    /// Election timeout upper bound (exclusive).
    pub election_timeout_max_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> RaftTiming {
        RaftTiming {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 1000,
            election_timeout_max_ms: 2000,
        }
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

fn parse_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    text.parse()
        .map_err(|_| invalid(key, format!("`{text}` is not an IP:PORT address")))
}

/// Validates the `[[nodes]]` list; `node_id` must be one of them.
pub fn resolve_nodes(entries: &[NodeEntry], node_id: NodeId) -> Result<Vec<NodeInfo>, ConfigError> {
    if entries.is_empty() || entries.len() > NODES_MAX {
        return Err(invalid(
            "nodes",
            format!("must list 1..={NODES_MAX} nodes, got {}", entries.len()),
        ));
    }
    let mut nodes: Vec<NodeInfo> = Vec::with_capacity(entries.len());
    for entry in entries {
        if entry.id == 0 {
            return Err(invalid("nodes.id", "node ids start at 1"));
        }
        if nodes.iter().any(|node| node.id == entry.id) {
            return Err(invalid(
                "nodes.id",
                format!("node id {} is listed twice", entry.id),
            ));
        }
        if entry.region.trim().is_empty() {
            return Err(invalid(
                "nodes.region",
                format!("node {} has an empty region", entry.id),
            ));
        }
        let peer_addr = match &entry.peer_addr {
            Some(text) => Some(parse_addr("nodes.peer_addr", text)?),
            None if entries.len() > 1 => {
                return Err(invalid(
                    "nodes.peer_addr",
                    format!(
                        "node {} needs a peer_addr in a cluster of several nodes",
                        entry.id
                    ),
                ))
            }
            None => None,
        };
        nodes.push(NodeInfo {
            id: entry.id,
            region: entry.region.clone(),
            client_addr: parse_addr("nodes.client_addr", &entry.client_addr)?,
            peer_addr,
        });
    }
    if !nodes.iter().any(|node| node.id == node_id) {
        return Err(invalid(
            "node_id",
            format!("node {node_id} is not in [[nodes]]"),
        ));
    }
    nodes.sort_by_key(|node| node.id);
    Ok(nodes)
}

/// Validates the `[raft]` section over the defaults.
pub fn resolve_raft(section: Option<RaftSection>) -> Result<RaftTiming, ConfigError> {
    let section = section.unwrap_or_default();
    let defaults = RaftTiming::default();
    let timing = RaftTiming {
        heartbeat_interval_ms: section
            .heartbeat_interval_ms
            .unwrap_or(defaults.heartbeat_interval_ms),
        election_timeout_min_ms: section
            .election_timeout_min_ms
            .unwrap_or(defaults.election_timeout_min_ms),
        election_timeout_max_ms: section
            .election_timeout_max_ms
            .unwrap_or(defaults.election_timeout_max_ms),
    };
    if timing.heartbeat_interval_ms < 10 {
        return Err(invalid("raft.heartbeat_interval_ms", "must be at least 10"));
    }
    if timing.election_timeout_min_ms < 3 * timing.heartbeat_interval_ms {
        return Err(invalid(
            "raft.election_timeout_min_ms",
            "must be at least 3 heartbeat intervals",
        ));
    }
    // At least two Raft ticks of spread, or the timeouts would not be randomized.
    let spread_min_ms = 2 * crate::limits::RAFT_TICK_INTERVAL_MS;
    if timing.election_timeout_max_ms < timing.election_timeout_min_ms + spread_min_ms {
        return Err(invalid(
            "raft.election_timeout_max_ms",
            format!("must be at least election_timeout_min_ms + {spread_min_ms}"),
        ));
    }
    Ok(timing)
}
