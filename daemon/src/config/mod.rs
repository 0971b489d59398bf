//! Node configuration: a TOML file and command-line flags; flags override the file.
//!
//! The embedded default (no file, no flags) is one node serving clients on
//! 127.0.0.1:7400 with its data in `./quorder-data`, 8 shards over all cores: a cluster of
//! one node (id 1, region `local`) whose every shard is a Raft group of one mirror.

pub mod cluster;

use crate::limits::{SHARDS_MAX, SNAPSHOT_INTERVAL_ENTRIES, SNAPSHOT_INTERVAL_ENTRIES_MIN};
use cluster::{NodeEntry, NodeId, NodeInfo, RaftSection, RaftTiming, WanSection};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default client listener.
pub const DEFAULT_CLIENT_ADDR: &str = "127.0.0.1:7400";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "quorder-data";
/// Default shard count.
pub const DEFAULT_SHARDS: u32 = 8;

/// A configuration mistake, naming the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key).
        message: String,
    },
    /// A value is out of range.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Keys of the TOML file; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Client listener address.
    pub client_addr: Option<String>,
    /// Number of cores (executors) to use.
    pub cores: Option<u32>,
    /// Number of shards (fixed when the data directory is created).
    pub shards: Option<u32>,
    /// This node's id (default 1).
    pub node_id: Option<NodeId>,
    /// Peer listener address (default: this node's `peer_addr` in `[[nodes]]`).
    pub peer_addr: Option<String>,
    /// Admin (HTTP) listener address.
    pub admin_addr: Option<String>,
    /// The cluster's nodes (default: this node alone).
    pub nodes: Option<Vec<NodeEntry>>,
    /// Raft timing.
    pub raft: Option<RaftSection>,
    /// Simulated inter-region delay (tests and benchmarks).
    pub wan: Option<WanSection>,
    /// Entries a mirror applies between two snapshots (default 200,000).
    pub snapshot_interval_entries: Option<u64>,
}

/// Values given on the command line; each overrides the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--client-addr`.
    pub client_addr: Option<String>,
    /// `--cores`.
    pub cores: Option<u32>,
    /// `--shards`.
    pub shards: Option<u32>,
    /// `--node-id`.
    pub node_id: Option<NodeId>,
}

/// Default admin listener.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:7402";

/// The validated configuration of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Client listener address.
    pub client_addr: SocketAddr,
    /// Number of executors, each pinned to one core.
    pub cores: u32,
    /// Number of shards.
    pub shards: u32,
    /// This node.
    pub node_id: NodeId,
    /// Peer listener address (none in a one-node cluster without one).
    pub peer_addr: Option<SocketAddr>,
    /// Admin listener address.
    pub admin_addr: SocketAddr,
    /// Every node of the cluster, by id.
    pub nodes: Vec<NodeInfo>,
    /// Raft timing.
    pub raft: RaftTiming,
    /// Delay added to peer messages towards other regions (0: none).
    pub wan_delay_ms: u64,
    /// Entries a mirror applies between two snapshots.
    pub snapshot_interval_entries: u64,
}

impl Config {
    /// This node's entry.
    pub fn this_node(&self) -> &NodeInfo {
        self.nodes
            .iter()
            .find(|node| node.id == self.node_id)
            .expect("validated: this node is listed")
    }
}

impl FileConfig {
    /// Parses TOML text (`path` is for messages only).
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|error: toml::de::Error| {
            // The parser's message may not name the key; the offending line does.
            let line = error.span().map(|span| {
                let start = text[..span.start].rfind('\n').map_or(0, |at| at + 1);
                let number = text[..span.start].matches('\n').count() + 1;
                let end = text[start..].find('\n').map_or(text.len(), |at| start + at);
                format!("line {number} `{}`: ", text[start..end].trim())
            });
            ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("{}{}", line.unwrap_or_default(), error.message()),
            }
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        FileConfig::parse(&text, path)
    }
}

impl Config {
    /// Merges file and flags over the defaults and validates. `available_cores` is the
    /// number of cores this process may run on.
    pub fn resolve(
        file: FileConfig,
        flags: Overrides,
        available_cores: u32,
    ) -> Result<Config, ConfigError> {
        let data_dir = flags
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        if data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let client_addr_override = flags.client_addr.or(file.client_addr);
        let client_addr: Option<SocketAddr> = match &client_addr_override {
            Some(text) => Some(text.parse().map_err(|_| {
                invalid("client_addr", format!("`{text}` is not an IP:PORT address"))
            })?),
            None => None,
        };
        let cores = flags.cores.or(file.cores).unwrap_or(available_cores);
        if cores == 0 || cores > available_cores {
            return Err(invalid(
                "cores",
                format!("must be in 1..={available_cores} (cores available here), got {cores}"),
            ));
        }
        let shards = flags.shards.or(file.shards).unwrap_or(DEFAULT_SHARDS);
        if shards == 0 || shards > SHARDS_MAX {
            return Err(invalid(
                "shards",
                format!("must be in 1..={SHARDS_MAX}, got {shards}"),
            ));
        }
        let node_id = flags.node_id.or(file.node_id).unwrap_or(1);
        let default_client_addr: SocketAddr = DEFAULT_CLIENT_ADDR
            .parse()
            .expect("the default client address parses");
        let nodes = match &file.nodes {
            Some(entries) => cluster::resolve_nodes(entries, node_id)?,
            None => vec![NodeInfo {
                id: node_id,
                region: "local".to_string(),
                client_addr: client_addr.unwrap_or(default_client_addr),
                peer_addr: None,
            }],
        };
        let this_node = nodes
            .iter()
            .find(|node| node.id == node_id)
            .expect("resolve_nodes checks it");
        // Listen where asked, else where the cluster map says clients find this node.
        let client_addr = client_addr.unwrap_or(this_node.client_addr);
        let peer_addr = match &file.peer_addr {
            Some(text) => Some(text.parse().map_err(|_| {
                invalid("peer_addr", format!("`{text}` is not an IP:PORT address"))
            })?),
            None => this_node.peer_addr,
        };
        let admin_text = file
            .admin_addr
            .clone()
            .unwrap_or_else(|| DEFAULT_ADMIN_ADDR.to_string());
        let admin_addr = admin_text.parse().map_err(|_| {
            invalid(
                "admin_addr",
                format!("`{admin_text}` is not an IP:PORT address"),
            )
        })?;
        let raft = cluster::resolve_raft(file.raft)?;
        let wan_delay_ms = file.wan.and_then(|wan| wan.delay_ms).unwrap_or(0);
        let snapshot_interval_entries = file
            .snapshot_interval_entries
            .unwrap_or(SNAPSHOT_INTERVAL_ENTRIES);
        if snapshot_interval_entries < SNAPSHOT_INTERVAL_ENTRIES_MIN {
            return Err(invalid(
                "snapshot_interval_entries",
                format!("must be at least {SNAPSHOT_INTERVAL_ENTRIES_MIN}, got {snapshot_interval_entries}"),
            ));
        }
        Ok(Config {
            data_dir,
            client_addr,
            cores,
            shards,
            node_id,
            peer_addr,
            admin_addr,
            nodes,
            raft,
            wan_delay_ms,
            snapshot_interval_entries,
        })
    }
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::cluster::RaftTiming;
    use super::*;

    fn resolve(text: &str, flags: Overrides) -> Result<Config, ConfigError> {
        Config::resolve(FileConfig::parse(text, Path::new("test.toml"))?, flags, 2)
    }

    #[test]
    fn defaults_are_the_embedded_single_node() {
        let config = resolve("", Overrides::default()).expect("valid");
        assert_eq!(config.client_addr.to_string(), DEFAULT_CLIENT_ADDR);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!((config.cores, config.shards), (2, DEFAULT_SHARDS));
    }

    #[test]
    fn flags_override_the_file() {
        let flags = Overrides {
            shards: Some(4),
            ..Overrides::default()
        };
        let config = resolve("shards = 16\ncores = 1\n", flags).expect("valid");
        assert_eq!((config.cores, config.shards), (1, 4));
    }

    #[test]
    fn cluster_of_three() {
        let text = "node_id = 2\n\
            [[nodes]]\nid = 1\nregion = \"r1\"\nclient_addr = \"127.0.0.1:7400\"\npeer_addr = \"127.0.0.1:7401\"\n\
            [[nodes]]\nid = 2\nregion = \"r2\"\nclient_addr = \"127.0.0.1:7410\"\npeer_addr = \"127.0.0.1:7411\"\n\
            [[nodes]]\nid = 3\nregion = \"r3\"\nclient_addr = \"127.0.0.1:7420\"\npeer_addr = \"127.0.0.1:7421\"\n\
            [raft]\nheartbeat_interval_ms = 50\n";
        let config = resolve(text, Overrides::default()).expect("valid cluster");
        assert_eq!(config.node_id, 2);
        assert_eq!(config.client_addr.to_string(), "127.0.0.1:7410");
        assert_eq!(
            config.peer_addr.map(|addr| addr.to_string()).as_deref(),
            Some("127.0.0.1:7411")
        );
        assert_eq!(config.nodes.len(), 3);
        assert_eq!(
            config.raft,
            RaftTiming {
                heartbeat_interval_ms: 50,
                ..RaftTiming::default()
            }
        );
        let missing = resolve(
            &text.replace("node_id = 2", "node_id = 4"),
            Overrides::default(),
        );
        assert!(missing
            .expect_err("unknown node")
            .to_string()
            .contains("`node_id`"));
        let twice = resolve(&text.replace("id = 3", "id = 1"), Overrides::default());
        assert!(twice
            .expect_err("duplicate")
            .to_string()
            .contains("`nodes.id`"));
        let timing = resolve(
            &format!("{text}election_timeout_min_ms = 60\n"),
            Overrides::default(),
        );
        assert!(timing
            .expect_err("timing")
            .to_string()
            .contains("`raft.election_timeout_min_ms`"));
    }

    #[test]
    fn mistakes_name_the_key() {
        let unknown = resolve("shard = 3\n", Overrides::default()).expect_err("unknown key");
        assert!(unknown.to_string().contains("shard"), "{unknown}");
        let wrong_type = resolve("cores = \"two\"\n", Overrides::default()).expect_err("type");
        assert!(
            wrong_type.to_string().contains("cores = \"two\""),
            "{wrong_type}"
        );
        let range = resolve("cores = 3\n", Overrides::default()).expect_err("range");
        assert!(range.to_string().contains("`cores`"), "{range}");
        let address =
            resolve("client_addr = \"nowhere\"\n", Overrides::default()).expect_err("addr");
        assert!(address.to_string().contains("`client_addr`"), "{address}");
        let zero = resolve("shards = 0\n", Overrides::default()).expect_err("zero");
        assert!(zero.to_string().contains("`shards`"), "{zero}");
    }
}
