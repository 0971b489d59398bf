//! The shape of a local cluster, without any IO: which ports and directories node I gets,
//! the TOML text of its `quorderd.toml`, and whether a config already on disk belongs to
//! the cluster asked for.
//!
//! The keys written here are the daemon's (`daemon/src/config`), which refuses unknown
//! keys: a key renamed there must be renamed here.

use serde::Deserialize;
use std::fmt::{Display, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

/// Most nodes of a cluster: the daemon's `NODES_MAX`.
pub const NODES_MAX: u32 = 9;
/// Most shards of a cluster: the daemon's `SHARDS_MAX`.
pub const SHARDS_MAX: u32 = 4096;
/// Ports between the first ports of two consecutive nodes.
pub const PORT_STRIDE: u16 = 10;
/// Offset of the peer port from the node's client port.
pub const PEER_PORT_OFFSET: u16 = 1;
/// Offset of the admin port from the node's client port.
pub const ADMIN_PORT_OFFSET: u16 = 2;
/// Name of a node's config file in its data directory.
pub const CONFIG_FILE: &str = "quorderd.toml";
/// Name of a node's log (stdout and stderr, appended) in its data directory.
pub const LOG_FILE: &str = "quorderd.log";
/// Name of the daemon's lock file (it holds the PID) in a data directory.
pub const LOCK_FILE: &str = "quorderd.lock";
/// Name of the file the daemon writes when it creates a node's data (its `SHAPE_FILE`):
/// until it exists, a node directory holds nothing that a new shape could contradict.
pub const DATA_SHAPE_FILE: &str = "shape.toml";

const _: () = assert!(ADMIN_PORT_OFFSET < PORT_STRIDE && PEER_PORT_OFFSET < PORT_STRIDE);
const _: () = assert!(PEER_PORT_OFFSET != ADMIN_PORT_OFFSET && PEER_PORT_OFFSET > 0);

/// `[raft]` timing; each value is written only when given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RaftTiming {
    /// `heartbeat_interval_ms`.
    pub heartbeat_interval_ms: Option<u64>,
    /// `election_timeout_min_ms`.
    pub election_timeout_min_ms: Option<u64>,
    /// `election_timeout_max_ms`.
    pub election_timeout_max_ms: Option<u64>,
}

/// What `cluster local` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// Number of nodes, one region each.
    pub nodes: u32,
    /// Client port of node 1; node I uses `base_port + PORT_STRIDE·(I−1)` and the next two.
    pub base_port: u16,
    /// Shards of the cluster.
    pub shards: u32,
    /// Cores of each node.
    pub cores: u32,
    /// Raft timing.
    pub raft: RaftTiming,
    /// `[wan] delay_ms`, when given.
    pub wan_delay_ms: Option<u64>,
}

/// Where one node of the cluster lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLayout {
    /// Node id, 1-based.
    pub id: u32,
    /// Region label, `r<id>`.
    pub region: String,
    /// Client listener.
    pub client_addr: SocketAddr,
    /// Peer listener.
    pub peer_addr: SocketAddr,
    /// Admin listener.
    pub admin_addr: SocketAddr,
    /// Data directory, `<dir>/n<id>`; holds the config, the log and the lock file.
    pub data_dir: PathBuf,
}

impl NodeLayout {
    /// The node's config file.
    pub fn config_path(&self) -> PathBuf {
        self.data_dir.join(CONFIG_FILE)
    }

    /// The node's log file.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join(LOG_FILE)
    }

    /// The daemon's lock file.
    pub fn lock_path(&self) -> PathBuf {
        self.data_dir.join(LOCK_FILE)
    }

    /// The file whose presence says the daemon created data here.
    pub fn data_shape_path(&self) -> PathBuf {
        self.data_dir.join(DATA_SHAPE_FILE)
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The nodes of `shape` under `dir`, or why the shape does not fit (ports past 65535, a
/// node count or shard count out of range).
pub fn node_layouts(shape: &Shape, dir: &Path) -> Result<Vec<NodeLayout>, String> {
    if shape.nodes == 0 || shape.nodes > NODES_MAX {
        return Err(format!(
            "--nodes must be in 1..={NODES_MAX}, got {}",
            shape.nodes
        ));
    }
    if shape.shards == 0 || shape.shards > SHARDS_MAX {
        return Err(format!(
            "--shards must be in 1..={SHARDS_MAX}, got {}",
            shape.shards
        ));
    }
    if shape.cores == 0 {
        return Err("--cores must be at least 1".to_string());
    }
    if shape.base_port == 0 {
        return Err("--base-port must be at least 1".to_string());
    }
    let mut nodes = Vec::with_capacity(shape.nodes as usize);
    for id in 1..=shape.nodes {
        let client_port = u32::from(shape.base_port) + u32::from(PORT_STRIDE) * (id - 1);
        let last_port = client_port + u32::from(ADMIN_PORT_OFFSET);
        let client_port = u16::try_from(client_port)
            .ok()
            .filter(|_| last_port <= u32::from(u16::MAX))
            .ok_or_else(|| {
                format!(
                    "--base-port {} leaves no room for {} nodes: node {id} would need port {last_port}, \
                     past 65535",
                    shape.base_port, shape.nodes
                )
            })?;
        nodes.push(NodeLayout {
            id,
            region: format!("r{id}"),
            client_addr: loopback(client_port),
            peer_addr: loopback(client_port + PEER_PORT_OFFSET),
            admin_addr: loopback(client_port + ADMIN_PORT_OFFSET),
            data_dir: dir.join(format!("n{id}")),
        });
    }
    Ok(nodes)
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            // Every control character is in the basic plane, so four digits suffice.
            control if control.is_control() => {
                let _ = write!(quoted, "\\u{:04X}", u32::from(control));
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

fn data_dir_text(node: &NodeLayout) -> Result<&str, String> {
    node.data_dir.to_str().ok_or_else(|| {
        format!(
            "{} is not valid UTF-8 and cannot be written into a config; choose another --dir",
            node.data_dir.display()
        )
    })
}

/// The `quorderd.toml` of `node` in the cluster `nodes` of `shape`.
pub fn render_config(
    shape: &Shape,
    nodes: &[NodeLayout],
    node: &NodeLayout,
) -> Result<String, String> {
    let mut text = String::new();
    // Comments carry no paths: a path may hold characters that end a comment.
    let _ = writeln!(
        text,
        "# Node {} of a local quorder cluster of {} nodes, written by `quorder cluster local`.\n\
         # Restart this node alone with `quorderd --config <this file>`.",
        node.id, shape.nodes
    );
    let _ = writeln!(text, "node_id = {}", node.id);
    let _ = writeln!(text, "data_dir = {}", toml_string(data_dir_text(node)?));
    let _ = writeln!(text, "client_addr = \"{}\"", node.client_addr);
    let _ = writeln!(text, "peer_addr = \"{}\"", node.peer_addr);
    let _ = writeln!(text, "admin_addr = \"{}\"", node.admin_addr);
    let _ = writeln!(text, "shards = {}", shape.shards);
    let _ = writeln!(text, "cores = {}", shape.cores);
    for member in nodes {
        let _ = writeln!(
            text,
            "\n[[nodes]]\nid = {}\nregion = {}\nclient_addr = \"{}\"\npeer_addr = \"{}\"",
            member.id,
            toml_string(&member.region),
            member.client_addr,
            member.peer_addr
        );
    }
    let raft = [
        ("heartbeat_interval_ms", shape.raft.heartbeat_interval_ms),
        (
            "election_timeout_min_ms",
            shape.raft.election_timeout_min_ms,
        ),
        (
            "election_timeout_max_ms",
            shape.raft.election_timeout_max_ms,
        ),
    ];
    if raft.iter().any(|(_, value)| value.is_some()) {
        text.push_str("\n[raft]\n");
        for (key, value) in raft {
            if let Some(value) = value {
                let _ = writeln!(text, "{key} = {value}");
            }
        }
    }
    if let Some(delay_ms) = shape.wan_delay_ms {
        let _ = writeln!(text, "\n[wan]\ndelay_ms = {delay_ms}");
    }
    Ok(text)
}

/// The keys of an existing config that decide whether it belongs to the cluster asked
/// for. Other keys are ignored here (the daemon checks them when it reads the file).
#[derive(Debug, Deserialize)]
struct ExistingConfig {
    node_id: Option<u64>,
    data_dir: Option<PathBuf>,
    client_addr: Option<String>,
    peer_addr: Option<String>,
    admin_addr: Option<String>,
    shards: Option<u32>,
    cores: Option<u32>,
    #[serde(default)]
    nodes: Vec<ExistingNode>,
}

#[derive(Debug, Deserialize)]
struct ExistingNode {
    id: Option<u64>,
    region: Option<String>,
    client_addr: Option<String>,
    peer_addr: Option<String>,
}

/// `Ok` when `found` is `expected`; else a sentence naming `key`.
fn same<T: Display, U: Display>(key: &str, found: Option<T>, expected: U) -> Result<(), String> {
    let expected = expected.to_string();
    match found {
        Some(found) if found.to_string() == expected => Ok(()),
        Some(found) => Err(format!("has {key} = {found}, but {expected} was asked")),
        None => Err(format!("has no {key}, but {expected} was asked")),
    }
}

/// Checks that the config `text` already in `node`'s directory is that node's config in
/// the cluster `nodes` of `shape`: same node id, node list, ports, data directory, shard
/// and core counts. Raft and WAN settings may differ (they are rewritten). The message
/// names the file, the key and what to do.
pub fn check_existing(
    text: &str,
    shape: &Shape,
    nodes: &[NodeLayout],
    node: &NodeLayout,
) -> Result<(), String> {
    let path = node.config_path();
    let refuse = |reason: String| {
        format!(
            "{} already exists and {reason}; restart the cluster with the flags it was created \
             with (--nodes, --base-port, --shards, --cores), or use another --dir",
            path.display()
        )
    };
    let existing: ExistingConfig = toml::from_str(text)
        .map_err(|error| refuse(format!("cannot be read ({})", error.message())))?;
    same("node_id", existing.node_id, node.id).map_err(&refuse)?;
    if existing.nodes.len() != nodes.len() {
        return Err(refuse(format!(
            "lists {} nodes, but --nodes {} was asked",
            existing.nodes.len(),
            nodes.len()
        )));
    }
    for (found, expected) in existing.nodes.iter().zip(nodes) {
        let key = |name: &str| format!("node {}'s {name}", expected.id);
        same(&key("id"), found.id, expected.id).map_err(&refuse)?;
        same(&key("region"), found.region.as_deref(), &expected.region).map_err(&refuse)?;
        let client_addr = found.client_addr.as_deref();
        same(&key("client_addr"), client_addr, expected.client_addr).map_err(&refuse)?;
        let peer_addr = found.peer_addr.as_deref();
        same(&key("peer_addr"), peer_addr, expected.peer_addr).map_err(&refuse)?;
    }
    same("client_addr", existing.client_addr, node.client_addr).map_err(&refuse)?;
    same("peer_addr", existing.peer_addr, node.peer_addr).map_err(&refuse)?;
    same("admin_addr", existing.admin_addr, node.admin_addr).map_err(&refuse)?;
    same("shards", existing.shards, shape.shards).map_err(&refuse)?;
    same("cores", existing.cores, shape.cores).map_err(&refuse)?;
    let data_dir = existing.data_dir.as_ref().map(|dir| dir.display());
    same("data_dir", data_dir, node.data_dir.display()).map_err(&refuse)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daemon's file format (`daemon/src/config`), as strict as the daemon is.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct DaemonFile {
        data_dir: Option<PathBuf>,
        client_addr: Option<String>,
        cores: Option<u32>,
        shards: Option<u32>,
        node_id: Option<u64>,
        peer_addr: Option<String>,
        admin_addr: Option<String>,
        nodes: Option<Vec<DaemonNode>>,
        raft: Option<DaemonRaft>,
        wan: Option<DaemonWan>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct DaemonNode {
        id: u64,
        region: String,
        client_addr: String,
        peer_addr: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct DaemonRaft {
        heartbeat_interval_ms: Option<u64>,
        election_timeout_min_ms: Option<u64>,
        election_timeout_max_ms: Option<u64>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct DaemonWan {
        delay_ms: Option<u64>,
    }

    fn shape(nodes: u32) -> Shape {
        Shape {
            nodes,
            base_port: 7400,
            shards: 8,
            cores: 1,
            raft: RaftTiming::default(),
            wan_delay_ms: None,
        }
    }

    fn parse(text: &str) -> DaemonFile {
        toml::from_str(text).unwrap_or_else(|error| panic!("{error}\n{text}"))
    }

    #[test]
    fn ports_step_by_ten_from_the_base() {
        let nodes = node_layouts(&shape(3), Path::new("/tmp/c")).expect("fits");
        let ports: Vec<(u32, String, u16, u16, u16)> = nodes
            .iter()
            .map(|node| {
                let (client, peer, admin) = (node.client_addr, node.peer_addr, node.admin_addr);
                (
                    node.id,
                    node.region.clone(),
                    client.port(),
                    peer.port(),
                    admin.port(),
                )
            })
            .collect();
        assert_eq!(
            ports,
            [
                (1, "r1".to_string(), 7400, 7401, 7402),
                (2, "r2".to_string(), 7410, 7411, 7412),
                (3, "r3".to_string(), 7420, 7421, 7422),
            ]
        );
        assert!(nodes.iter().all(|node| node.client_addr.ip().is_loopback()));
        assert_eq!(nodes[1].data_dir, Path::new("/tmp/c/n2"));
        assert_eq!(nodes[1].config_path(), Path::new("/tmp/c/n2/quorderd.toml"));
        assert_eq!(nodes[1].lock_path(), Path::new("/tmp/c/n2/quorderd.lock"));
    }

    #[test]
    fn shapes_that_do_not_fit_say_why() {
        let mut high = shape(3);
        high.base_port = 65_515;
        let error = node_layouts(&high, Path::new("/c")).expect_err("past 65535");
        assert!(error.contains("node 3 would need port 65537"), "{error}");
        high.base_port = 65_513;
        let fits = node_layouts(&high, Path::new("/c")).expect("65533 is the last port");
        assert_eq!(fits[2].admin_addr.port(), 65_535);
        let too_many = node_layouts(&shape(NODES_MAX + 1), Path::new("/c"));
        assert!(too_many.is_err_and(|error| error.contains("--nodes")));
        let none = node_layouts(&shape(0), Path::new("/c"));
        assert!(none.is_err_and(|error| error.contains("--nodes")));
        let mut no_shards = shape(1);
        no_shards.shards = 0;
        let error = node_layouts(&no_shards, Path::new("/c")).expect_err("no shards");
        assert!(error.contains("--shards"), "{error}");
    }

    #[test]
    fn config_renders_in_the_daemon_format() {
        let mut asked = shape(3);
        asked.raft.heartbeat_interval_ms = Some(50);
        asked.raft.election_timeout_min_ms = Some(300);
        asked.wan_delay_ms = Some(20);
        let nodes = node_layouts(&asked, Path::new("/tmp/c")).expect("fits");
        let file = parse(&render_config(&asked, &nodes, &nodes[1]).expect("renders"));
        assert_eq!(file.node_id, Some(2));
        assert_eq!(file.data_dir, Some(PathBuf::from("/tmp/c/n2")));
        assert_eq!(file.client_addr.as_deref(), Some("127.0.0.1:7410"));
        assert_eq!(file.peer_addr.as_deref(), Some("127.0.0.1:7411"));
        assert_eq!(file.admin_addr.as_deref(), Some("127.0.0.1:7412"));
        assert_eq!((file.shards, file.cores), (Some(8), Some(1)));
        let listed = file.nodes.expect("[[nodes]]");
        assert_eq!(listed.len(), 3);
        assert_eq!(
            listed[2],
            DaemonNode {
                id: 3,
                region: "r3".to_string(),
                client_addr: "127.0.0.1:7420".to_string(),
                peer_addr: Some("127.0.0.1:7421".to_string()),
            }
        );
        assert_eq!(
            file.raft,
            Some(DaemonRaft {
                heartbeat_interval_ms: Some(50),
                election_timeout_min_ms: Some(300),
                election_timeout_max_ms: None,
            })
        );
        assert_eq!(file.wan, Some(DaemonWan { delay_ms: Some(20) }));
    }

    #[test]
    fn sections_not_asked_for_are_left_out() {
        let asked = shape(1);
        let nodes = node_layouts(&asked, Path::new("/tmp/c")).expect("fits");
        let text = render_config(&asked, &nodes, &nodes[0]).expect("renders");
        let file = parse(&text);
        assert!(file.raft.is_none() && file.wan.is_none(), "{text}");
        assert!(
            !text.contains("[raft]") && !text.contains("[wan]"),
            "{text}"
        );
    }

    #[test]
    fn odd_directory_names_survive_the_round_trip() {
        let asked = shape(2);
        let dir = Path::new("/tmp/a \"quoted\" \\ dir\nwith\ta newline");
        let nodes = node_layouts(&asked, dir).expect("fits");
        let file = parse(&render_config(&asked, &nodes, &nodes[0]).expect("renders"));
        assert_eq!(file.data_dir, Some(dir.join("n1")));
    }

    #[test]
    fn an_existing_config_of_the_same_cluster_is_reused() {
        let asked = shape(3);
        let nodes = node_layouts(&asked, Path::new("/tmp/c")).expect("fits");
        let text = render_config(&asked, &nodes, &nodes[2]).expect("renders");
        check_existing(&text, &asked, &nodes, &nodes[2]).expect("same cluster");
        // Timing is not part of the shape: a restart may change it.
        let mut retimed = asked.clone();
        retimed.raft.heartbeat_interval_ms = Some(20);
        retimed.wan_delay_ms = Some(5);
        check_existing(&text, &retimed, &nodes, &nodes[2]).expect("timing may change");
    }

    #[test]
    fn an_existing_config_of_another_shape_is_refused() {
        let asked = shape(3);
        let nodes = node_layouts(&asked, Path::new("/tmp/c")).expect("fits");
        let text = render_config(&asked, &nodes, &nodes[0]).expect("renders");
        let refused = |other: &Shape| {
            let other_nodes = node_layouts(other, Path::new("/tmp/c")).expect("fits");
            check_existing(&text, other, &other_nodes, &other_nodes[0]).expect_err("refused")
        };
        let error = refused(&shape(5));
        assert!(error.contains("lists 3 nodes, but --nodes 5"), "{error}");
        assert!(
            error.contains("/tmp/c/n1/quorderd.toml already exists"),
            "{error}"
        );
        let mut moved = shape(3);
        moved.base_port = 7500;
        let error = refused(&moved);
        assert!(error.contains("client_addr = 127.0.0.1:7400"), "{error}");
        assert!(error.contains("--base-port"), "{error}");
        let mut more_shards = shape(3);
        more_shards.shards = 16;
        let error = refused(&more_shards);
        assert!(error.contains("shards = 8, but 16 was asked"), "{error}");
        let mut more_cores = shape(3);
        more_cores.cores = 2;
        assert!(refused(&more_cores).contains("cores = 1, but 2"));
        let other_node = check_existing(&text, &asked, &nodes, &nodes[1]).expect_err("node 1's");
        assert!(other_node.contains("node_id = 1, but 2"), "{other_node}");
        let garbage = check_existing("node_id = [", &asked, &nodes, &nodes[0]);
        assert!(garbage.is_err_and(|error| error.contains("cannot be read")));
        let moved_dir = node_layouts(&asked, Path::new("/tmp/d")).expect("fits");
        let error =
            check_existing(&text, &asked, &moved_dir, &moved_dir[0]).expect_err("other dir");
        assert!(error.contains("data_dir = /tmp/c/n1"), "{error}");
    }
}
