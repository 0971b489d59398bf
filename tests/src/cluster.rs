//! A cluster of real `quorderd` processes on loopback for failover, catch-up and crash
//! tests: one config per node in the layout `quorder cluster local` writes (node I at
//! `DIR/nI`, client port `base + 10·(I−1)`, peer `+1`, admin `+2`), kill -9, restart on
//! the same data, and waits on what `quorder status` reports.
//!
//! Nodes are named by their 1-based node id everywhere. One cluster runs at a time per
//! test process: `Cluster::start` waits for the previous one to be dropped, so the tests
//! of one file do not share two cores between two clusters and time each other out.
//!
//! The scenario tests also share their workload from here: writers that place 1- and
//! 2-line orders and restocks through the failover [`Client`] ([`spawn_writers`]), the
//! [`Ledger`] of what was acknowledged and what is in doubt, and the read-back check that
//! every acknowledged order is there with its outcome ([`check_acknowledged`]).

use crate::process::{answers_ping, binary};
pub use crate::workload::{
    check_acknowledged, read_settled, write_until_stopped, Acknowledged, Ledger, Workload,
};
use quorder_client::{Client, ClientError, ClientOptions, Connection};
use quorder_daemon::snapshot::format::{SNAPSHOT_HEADER_BYTES, SNAPSHOT_MAGIC};
use quorder_proto::status::{ClusterStatus, MirrorRole, ShardStatus};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Ports between the first ports of two consecutive nodes (as `quorder cluster local`).
pub const PORT_STRIDE: u16 = 10;
/// Offset of a node's peer port from its client port.
pub const PEER_PORT_OFFSET: u16 = 1;
/// Offset of a node's admin port from its client port.
pub const ADMIN_PORT_OFFSET: u16 = 2;
/// Raft timing for tests: elections in well under a second, yet tolerant of a loaded
/// two-core host (six heartbeats fit in the shortest election timeout).
pub const FAST_RAFT_TOML: &str =
    "[raft]\nheartbeat_interval_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n";

/// Lowest base port tried. The range (10000..20000) stays below the kernel's ephemeral
/// ports (32768 and up), so an outgoing connection never takes a port a killed node must
/// bind again, and below the range `cluster_local.rs` probes (20000 and up).
const PORT_BASE_LOW: u16 = 10_000;
/// Slots of `PORT_SLOT_SPAN` ports from `PORT_BASE_LOW`.
const PORT_SLOTS: u16 = 250;
/// Ports reserved per cluster: room for `NODES_MAX` nodes.
const PORT_SLOT_SPAN: u16 = 40;
/// Most nodes of a test cluster (the slot's room).
pub const NODES_MAX: u32 = (PORT_SLOT_SPAN / PORT_STRIDE) as u32;
/// Start-up of a node on a loaded two-core machine, WAL replay included.
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Deadline of one status request (the answering node asks its peers within it).
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// A node gets this long to stop on SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

const _: () =
    assert!((PORT_BASE_LOW as u32) + (PORT_SLOTS as u32) * (PORT_SLOT_SPAN as u32) <= 20_000);

/// Serializes clusters within one test process.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());
/// The slot the next cluster of this process tries first.
static NEXT_SLOT: AtomicU16 = AtomicU16::new(u16::MAX);

/// One node of a [`Cluster`].
pub struct ClusterNode {
    /// Node id, 1-based.
    pub id: u64,
    /// Data directory, `DIR/n<id>`; holds the config and the log too.
    pub data_dir: PathBuf,
    /// Client address.
    pub addr: String,
    config_path: PathBuf,
    child: Option<Child>,
}

impl ClusterNode {
    /// The node's log: stdout and stderr of every run, appended.
    pub fn log_path(&self) -> PathBuf {
        self.data_dir.join("quorderd.log")
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the node's log");
        let log_err = log.try_clone().expect("duplicate the log handle");
        let child = Command::new(binary("quorderd"))
            .arg("--config")
            .arg(&self.config_path)
            .env("QUORDER_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .expect("spawn quorderd");
        self.child = Some(child);
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "node {} exited during start-up ({status}); its log:\n{}",
                        self.id,
                        log_tail(&self.log_path())
                    );
                }
            }
            if answers_ping(&self.addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {} at {} not ready in {limit:?}; its log:\n{}",
                self.id,
                self.addr,
                log_tail(&self.log_path())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

/// The last lines of a log, for failure messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// N `quorderd` processes forming one cluster. Dropping it kills every node.
pub struct Cluster {
    /// Scratch directory holding `n1`, `n2`, ...
    pub dir: PathBuf,
    /// Shards of the cluster.
    pub shards: u32,
    /// Client port of node 1.
    pub base_port: u16,
    nodes: Vec<ClusterNode>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Cluster {
    /// Writes the configs of `nodes` nodes of `shards` shards (one core each, `extra_toml`
    /// appended: top-level keys such as `snapshot_interval_entries = 200` first, then
    /// sections such as [`FAST_RAFT_TOML`]) under a fresh scratch directory named after
    /// `name`, starts every node and waits until each answers a ping.
    pub fn start(name: &str, nodes: u32, shards: u32, extra_toml: &str) -> Cluster {
        assert!(
            (1..=NODES_MAX).contains(&nodes),
            "a test cluster has 1..={NODES_MAX} nodes"
        );
        let one_at_a_time = ONE_CLUSTER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Binaries first: the build must not eat into the nodes' start-up time.
        let _ = binary("quorderd");
        let dir = crate::process::scratch_dir(name);
        let base_port = free_port_base(nodes);
        let mut cluster_nodes: Vec<ClusterNode> = (1..=u64::from(nodes))
            .map(|id| {
                let data_dir = dir.join(format!("n{id}"));
                std::fs::create_dir_all(&data_dir).expect("create node dir");
                ClusterNode {
                    id,
                    addr: format!("127.0.0.1:{}", client_port(base_port, id)),
                    config_path: data_dir.join("quorderd.toml"),
                    data_dir,
                    child: None,
                }
            })
            .collect();
        for node in &cluster_nodes {
            let text = render_config(base_port, nodes, shards, node, extra_toml);
            std::fs::write(&node.config_path, text).expect("write node config");
        }
        for node in &mut cluster_nodes {
            node.spawn();
        }
        let mut cluster = Cluster {
            dir,
            shards,
            base_port,
            nodes: cluster_nodes,
            _one_at_a_time: one_at_a_time,
        };
        for node in &mut cluster.nodes {
            node.wait_ready(NODE_READY_TIMEOUT);
        }
        cluster
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True for a cluster without nodes (never: `start` refuses it).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `id` (1-based).
    pub fn node(&self, id: u64) -> &ClusterNode {
        self.nodes
            .iter()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|node| node.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
    }

    /// Every node's client address, by node id.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(|node| node.addr.clone()).collect()
    }

    /// Ids of the nodes whose process runs.
    pub fn live_nodes(&mut self) -> Vec<u64> {
        self.nodes
            .iter_mut()
            .filter_map(|node| node.is_running().then_some(node.id))
            .collect()
    }

    /// True while node `id`'s process runs.
    pub fn is_running(&mut self, id: u64) -> bool {
        self.node_mut(id).is_running()
    }

    /// A client over every node's address, with failover, and `request_timeout` as the
    /// deadline of each request.
    pub fn client_with_timeout(&self, request_timeout: Duration) -> Result<Client, ClientError> {
        let options = ClientOptions {
            request_timeout,
            connect_timeout: Duration::from_millis(500),
        };
        Client::connect(&self.addresses(), options)
    }

    /// A client over every node's address with a generous 10 s deadline per request.
    pub fn client(&self) -> Client {
        self.client_with_timeout(Duration::from_secs(10))
            .expect("connect to the cluster")
    }

    /// kill -9 node `id`: no chance to sync or answer.
    pub fn kill(&mut self, id: u64) {
        self.node_mut(id).kill();
    }

    /// Starts node `id` again on its data and ports; waits until it answers a ping.
    pub fn restart(&mut self, id: u64) {
        let node = self.node_mut(id);
        node.spawn();
        node.wait_ready(NODE_READY_TIMEOUT);
    }

    /// SIGTERM to node `id`, then waits for its exit (kill -9 past `STOP_TIMEOUT`).
    /// Returns the exit status, if it exited by itself.
    pub fn stop(&mut self, id: u64) -> Option<std::process::ExitStatus> {
        let node = self.node_mut(id);
        let mut child = node.child.take()?;
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on the PID of our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The cluster's status as the first live node that answers sees it (it asks its
    /// peers). `None` when no live node answers in time.
    pub fn try_status(&mut self) -> Option<ClusterStatus> {
        for id in self.live_nodes() {
            let addr = self.node(id).addr.clone();
            let Ok(connection) = Connection::connect(&addr, Duration::from_secs(1)) else {
                continue;
            };
            if let Ok(status) = connection.status(true, STATUS_TIMEOUT) {
                return Some(status);
            }
        }
        None
    }

    /// The cluster's status; panics when no live node answers.
    pub fn status(&mut self) -> ClusterStatus {
        self.try_status()
            .expect("no live node answered a status request")
    }

    /// The node of `shard`'s primary, if one is known.
    pub fn primary_node_of(&mut self, shard: u32) -> Option<u64> {
        self.status()
            .shards
            .iter()
            .find(|status| status.shard == shard)
            .and_then(|status| status.primary)
    }

    /// The node that is primary of the most shards (the lowest id on a tie).
    pub fn node_with_most_primaries(&mut self) -> u64 {
        let status = self.status();
        let count = |id: u64| {
            status
                .shards
                .iter()
                .filter(|shard| shard.primary == Some(id))
                .count()
        };
        let mut best = self.nodes[0].id;
        for node in &self.nodes {
            if count(node.id) > count(best) {
                best = node.id;
            }
        }
        best
    }

    /// Waits until every shard has a primary on a live node and the mirrors on every live
    /// node report the same applied index and digest, their commit index no further. Returns
    /// that status; panics past `limit` with the last status seen.
    pub fn wait_until_converged(&mut self, limit: Duration) -> ClusterStatus {
        let deadline = Instant::now() + limit;
        loop {
            let live = self.live_nodes();
            let status = self.try_status();
            let verdict = match &status {
                None => Err("no live node answered a status request".to_string()),
                Some(status) => converged(status, &live, self.shards),
            };
            match verdict {
                Ok(()) => return status.expect("converged implies a status"),
                Err(reason) if Instant::now() >= deadline => panic!(
                    "cluster not converged in {limit:?}: {reason}\n{}",
                    status.as_ref().map(describe).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for Cluster {
    /// Kills every node; removes the data of a test that passed and names the directory
    /// of one that failed (the nodes' logs are there).
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::thread::panicking() {
            eprintln!("cluster data and logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `Ok` when `status` shows `shards` shards, each with a primary among `live` and equal
/// applied index, digest and commit index on the mirrors of the `live` nodes.
pub fn converged(status: &ClusterStatus, live: &[u64], shards: u32) -> Result<(), String> {
    if status.shards.len() != shards as usize {
        return Err(format!(
            "{} shards reported, {shards} expected",
            status.shards.len()
        ));
    }
    for shard in &status.shards {
        shard_converged(shard, live)
            .map_err(|reason| format!("shard {}: {reason}", shard.shard))?;
    }
    Ok(())
}

fn shard_converged(shard: &ShardStatus, live: &[u64]) -> Result<(), String> {
    match shard.primary {
        Some(primary) if live.contains(&primary) => {}
        other => return Err(format!("no live primary ({other:?})")),
    }
    let mut reference = None;
    for id in live {
        let Some(mirror) = shard.mirrors.iter().find(|mirror| mirror.node == *id) else {
            return Err(format!("node {id} reported no mirror"));
        };
        if mirror.role == MirrorRole::Unknown {
            return Err(format!("node {id} did not answer"));
        }
        if mirror.commit_index != mirror.applied_index {
            return Err(format!(
                "node {id} applied {} of {} committed",
                mirror.applied_index, mirror.commit_index
            ));
        }
        let position = (mirror.applied_index, mirror.digest);
        match reference {
            None => reference = Some(position),
            Some(expected) if expected != position => {
                return Err(format!(
                    "node {id} at (applied, digest) {position:?}, another at {expected:?}"
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The status as `quorder status` prints it, for failure messages.
pub fn describe(status: &ClusterStatus) -> String {
    let mut text = format!("answered by node {}\n", status.answered_by);
    for node in &status.nodes {
        let _ = writeln!(
            text,
            "  node {} {} reachable={}",
            node.id, node.addr, node.reachable
        );
    }
    for shard in &status.shards {
        let _ = write!(
            text,
            "  shard {} primary {:?} term {}:",
            shard.shard, shard.primary, shard.term
        );
        for mirror in &shard.mirrors {
            let _ = write!(
                text,
                "  {}:{} {}/{} {:016x}",
                mirror.node,
                mirror.role.name(),
                mirror.commit_index,
                mirror.applied_index,
                mirror.digest
            );
        }
        text.push('\n');
    }
    text
}

fn client_port(base_port: u16, id: u64) -> u16 {
    let offset = u16::try_from(id - 1).expect("small node id") * PORT_STRIDE;
    base_port + offset
}

/// A base port whose `nodes` node slots (client, peer and admin port each) are free now.
fn free_port_base(nodes: u32) -> u16 {
    let span = u16::try_from(nodes).expect("few nodes") * PORT_STRIDE;
    // Processes start apart (by PID), clusters within one process step on.
    let _ = NEXT_SLOT.compare_exchange(
        u16::MAX,
        u16::try_from(std::process::id() % u32::from(PORT_SLOTS)).expect("below PORT_SLOTS"),
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..PORT_SLOTS {
        let slot = NEXT_SLOT.fetch_add(1, Ordering::SeqCst) % PORT_SLOTS;
        let base = PORT_BASE_LOW + slot * PORT_SLOT_SPAN;
        let free = (base..base + span).all(|port| {
            let offset = (port - base) % PORT_STRIDE;
            offset > ADMIN_PORT_OFFSET || TcpListener::bind(("127.0.0.1", port)).is_ok()
        });
        if free {
            return base;
        }
    }
    panic!("no free port range for a cluster of {nodes} nodes");
}

fn render_config(
    base_port: u16,
    nodes: u32,
    shards: u32,
    node: &ClusterNode,
    extra_toml: &str,
) -> String {
    let port = client_port(base_port, node.id);
    let mut text = String::new();
    let _ = writeln!(text, "node_id = {}", node.id);
    let data_dir = node.data_dir.to_str().expect("scratch dirs are UTF-8");
    let _ = writeln!(text, "data_dir = {data_dir:?}");
    let _ = writeln!(text, "client_addr = \"127.0.0.1:{port}\"");
    let _ = writeln!(
        text,
        "peer_addr = \"127.0.0.1:{}\"",
        port + PEER_PORT_OFFSET
    );
    let _ = writeln!(
        text,
        "admin_addr = \"127.0.0.1:{}\"",
        port + ADMIN_PORT_OFFSET
    );
    let _ = writeln!(text, "shards = {shards}\ncores = 1");
    // Top-level keys of `extra_toml` must come before the first table.
    let (top_level, sections) = match extra_toml.find('[') {
        Some(at) => extra_toml.split_at(at),
        None => (extra_toml, ""),
    };
    text.push_str(top_level);
    for id in 1..=u64::from(nodes) {
        let member_port = client_port(base_port, id);
        let _ = writeln!(
            text,
            "\n[[nodes]]\nid = {id}\nregion = \"r{id}\"\nclient_addr = \"127.0.0.1:{member_port}\"\n\
             peer_addr = \"127.0.0.1:{}\"",
            member_port + PEER_PORT_OFFSET
        );
    }
    text.push('\n');
    text.push_str(sections);
    text
}

/// The applied index recorded in a snapshot file's header, after checking its magic; `None`
/// when the file is missing or is not a snapshot. The header layout is the daemon's
/// (`snapshot::format`: the applied index is the `u64` at byte 16).
pub fn snapshot_applied_index(path: &Path) -> Option<u64> {
    use std::io::Read;
    let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
    File::open(path).ok()?.read_exact(&mut header).ok()?;
    if header[0..4] != SNAPSHOT_MAGIC {
        return None;
    }
    Some(u64::from_le_bytes(
        header[16..24].try_into().expect("eight bytes"),
    ))
}

/// `writers` threads running [`write_until_stopped`] against `cluster` until `stop`.
pub fn spawn_writers(
    cluster: &Cluster,
    workload: Workload,
    writers: u64,
    seed: u64,
    stop: &Arc<AtomicBool>,
    ledger: &Arc<Mutex<Ledger>>,
) -> Vec<JoinHandle<()>> {
    (0..writers)
        .map(|writer| {
            let addresses = cluster.addresses();
            let (stop, ledger) = (Arc::clone(stop), Arc::clone(ledger));
            let seed = seed.wrapping_mul(1_000).wrapping_add(writer + 1);
            std::thread::spawn(move || {
                write_until_stopped(&addresses, workload, seed, &stop, &ledger)
            })
        })
        .collect()
}
