//! `quorder cluster local`: an N-node cluster on this host, one region per node, for
//! development, demos and tests. It writes each node's `quorderd.toml`, starts the nodes,
//! waits until each answers a ping, prints where they listen, and supervises them until
//! Ctrl-C or SIGTERM, when it stops them.
//!
//! - [`layout`]: ports, directories, config text, reuse check (pure, unit-tested).
//! - [`nodes`]: the daemon processes: start, wait ready, watch, stop.
//! - [`unix`]: signals and the data lock probe (the binary's only `unsafe`).

mod layout;
mod nodes;
mod unix;

use super::{Context, Failure};
use clap::{Args, Subcommand};
use layout::{NodeLayout, RaftTiming, Shape};
use nodes::{Event, Readiness, RunningNode};
use serde::Serialize;
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

const AFTER_HELP: &str = "\
Node I (1-based) is in region rI, keeps its data, config, log and lock file in DIR/nI, and
listens on 127.0.0.1 at BASE+10*(I-1) for clients, +1 for peers and +2 for admin.
Restart a node that was killed with: quorderd --config DIR/nI/quorderd.toml
Running it again on the same DIR reuses the data if the shape (nodes, ports, shards, cores)
is the same, and refuses otherwise; raft and WAN timings may change.

Output: one line per node, then `clients: A,B,C` (usable as --addr), then one line per
event (`node 2 exited: signal 9`). A node that exits is left down. Ctrl-C or SIGTERM
stops the nodes this command started (SIGTERM, SIGKILL after 15 s) and exits 0. Exit
status 1 if a node does not start, 2 on a bad command line.

Example:
  quorder cluster local --nodes 3 --dir /tmp/quorder-local --wan-ms 20";

/// Local clusters.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Write the configs of N nodes on 127.0.0.1, start them, and supervise them until
    /// Ctrl-C.
    #[command(after_help = AFTER_HELP)]
    Local(LocalArguments),
}

/// Arguments of `cluster local`.
#[derive(Debug, Args)]
pub struct LocalArguments {
    /// Number of nodes, one region each.
    #[arg(long, value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(layout::NODES_MAX)))]
    nodes: u32,
    /// Directory of the cluster: node I lives in DIR/nI.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Client port of node 1; node I uses BASE+10*(I-1) and the two ports after it.
    #[arg(long, value_name = "PORT", default_value_t = 7400,
        value_parser = clap::value_parser!(u16).range(1..))]
    base_port: u16,
    /// Shards of the cluster (fixed when the data is created).
    #[arg(long, value_name = "S", default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(layout::SHARDS_MAX)))]
    shards: u32,
    /// Cores of each node; the nodes share the host's cores.
    #[arg(long, value_name = "C", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..))]
    cores: u32,
    /// Delay added to every peer message between regions ([wan] delay_ms).
    #[arg(long, value_name = "MS")]
    wan_ms: Option<u64>,
    /// Raft heartbeat interval ([raft] heartbeat_interval_ms).
    #[arg(long, value_name = "MS")]
    heartbeat_ms: Option<u64>,
    /// Lower bound of the election timeout ([raft] election_timeout_min_ms).
    #[arg(long, value_name = "MS")]
    election_min_ms: Option<u64>,
    /// Upper bound of the election timeout ([raft] election_timeout_max_ms).
    #[arg(long, value_name = "MS")]
    election_max_ms: Option<u64>,
    /// The daemon binary; default: quorderd beside this program, else on PATH.
    #[arg(long, value_name = "PATH")]
    quorderd: Option<PathBuf>,
    /// How long the nodes may take to answer a first ping.
    #[arg(long, value_name = "MS", default_value_t = 60_000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    ready_timeout_ms: u64,
}

impl LocalArguments {
    fn shape(&self) -> Shape {
        Shape {
            nodes: self.nodes,
            base_port: self.base_port,
            shards: self.shards,
            cores: self.cores,
            raft: RaftTiming {
                heartbeat_interval_ms: self.heartbeat_ms,
                election_timeout_min_ms: self.election_min_ms,
                election_timeout_max_ms: self.election_max_ms,
            },
            wan_delay_ms: self.wan_ms,
        }
    }
}

/// One node as printed once the cluster is up.
#[derive(Serialize)]
struct NodeView {
    node: u32,
    region: String,
    client_addr: String,
    peer_addr: String,
    admin_addr: String,
    data_dir: String,
    pid: Option<u32>,
}

/// The cluster as printed once it is up (`--json`: one object on one line).
#[derive(Serialize)]
struct ReadyView {
    event: &'static str,
    nodes: Vec<NodeView>,
    clients: String,
}

/// A later event (`--json`: one object per line).
#[derive(Serialize)]
struct EventView {
    event: &'static str,
    node: u32,
    status: String,
}

fn refused(message: String) -> Failure {
    Failure {
        message,
        exit_code: 1,
    }
}

fn bad_command_line(message: String) -> Failure {
    Failure {
        message,
        exit_code: 2,
    }
}

/// Runs a `cluster` command.
pub fn run(context: &Context, command: ClusterCommand) -> Result<(), Failure> {
    match command {
        ClusterCommand::Local(arguments) => run_local(context, arguments),
    }
}

fn run_local(context: &Context, arguments: LocalArguments) -> Result<(), Failure> {
    // First of all, while this is the only thread: every later thread inherits the mask.
    let signals = unix::stop_signal_channel().map_err(refused)?;
    let shape = arguments.shape();
    let dir = std::path::absolute(&arguments.dir)
        .map_err(|error| bad_command_line(format!("--dir {}: {error}", arguments.dir.display())))?;
    let layouts = layout::node_layouts(&shape, &dir).map_err(bad_command_line)?;
    for node in &layouts {
        check_reusable(&shape, &layouts, node)?;
    }
    for node in &layouts {
        check_not_running(node)?;
    }
    for node in &layouts {
        check_ports_free(node)?;
    }
    for node in &layouts {
        let text = layout::render_config(&shape, &layouts, node).map_err(bad_command_line)?;
        write_atomically(&node.data_dir, &node.config_path(), text.as_bytes()).map_err(
            |error| {
                refused(format!(
                    "cannot write {}: {error}",
                    node.config_path().display()
                ))
            },
        )?;
    }
    let binary = nodes::quorderd_binary(arguments.quorderd);
    let mut running = start_all(&binary, &layouts)?;
    let timeout = Duration::from_millis(arguments.ready_timeout_ms);
    match nodes::wait_ready(&mut running, timeout, &signals) {
        Readiness::Ready => {}
        Readiness::Signalled => {
            stop(context, &mut running);
            return Ok(());
        }
        Readiness::Failed { node, message } => {
            eprintln!("quorder: node {node} {message}");
            if let Some(failed) = running.iter().find(|running| running.layout.id == node) {
                print_log_tail(failed);
            }
            stop(context, &mut running);
            return Err(refused(format!(
                "node {node} {message}; the cluster was stopped"
            )));
        }
    }
    if let Err(failure) = print_ready(context, &running) {
        stop(context, &mut running);
        return Err(failure);
    }
    eprintln!(
        "quorder: supervising {} nodes; Ctrl-C or SIGTERM stops them. A node that exits stays \
         down; restart it with quorderd --config {}",
        running.len(),
        dir.join("n<I>").join(layout::CONFIG_FILE).display()
    );
    nodes::supervise(&mut running, &signals, |event| print_event(context, event));
    stop(context, &mut running);
    Ok(())
}

/// Refuses a node directory whose config belongs to another cluster shape, once the node
/// has data. A config without data (a first start that failed) is simply rewritten.
fn check_reusable(shape: &Shape, layouts: &[NodeLayout], node: &NodeLayout) -> Result<(), Failure> {
    let has_data = node.data_shape_path().try_exists().unwrap_or(true);
    let path = node.config_path();
    match std::fs::read_to_string(&path) {
        Ok(text) if has_data => {
            layout::check_existing(&text, shape, layouts, node).map_err(refused)
        }
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(refused(format!("cannot read {}: {error}", path.display()))),
    }
}

/// Refuses to start a node whose data directory a running `quorderd` holds.
fn check_not_running(node: &NodeLayout) -> Result<(), Failure> {
    let lock_path = node.lock_path();
    let held = unix::lock_is_held(&lock_path)
        .map_err(|error| refused(format!("cannot check {}: {error}", lock_path.display())))?;
    if !held {
        return Ok(());
    }
    let pid = std::fs::read_to_string(&lock_path).unwrap_or_default();
    Err(refused(format!(
        "node {} is already running on {} (pid {}); stop it first",
        node.id,
        node.data_dir.display(),
        pid.trim()
    )))
}

/// Refuses ports that something else listens on, before any node is started.
fn check_ports_free(node: &NodeLayout) -> Result<(), Failure> {
    let addresses = [
        ("client", node.client_addr),
        ("peer", node.peer_addr),
        ("admin", node.admin_addr),
    ];
    for (role, address) in addresses {
        TcpListener::bind(address).map_err(|error| {
            refused(format!(
                "port {} (node {}'s {role} port) is not free: {error}; choose another --base-port",
                address.port(),
                node.id
            ))
        })?;
    }
    Ok(())
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never a
/// part: a temporary file in the same directory, synced, renamed, directory synced.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temporary_name = path.as_os_str().to_owned();
    temporary_name.push(".tmp");
    let temporary = PathBuf::from(temporary_name);
    let mut file = File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    File::open(dir)?.sync_all()
}

/// Starts every node; if one cannot be started, stops those that were.
fn start_all(binary: &Path, layouts: &[NodeLayout]) -> Result<Vec<RunningNode>, Failure> {
    let mut running = Vec::with_capacity(layouts.len());
    for node in layouts {
        match nodes::start(binary, node) {
            Ok(started) => running.push(started),
            Err(message) => {
                nodes::stop_all(&mut running, nodes::STOP_GRACE, |_| {});
                return Err(refused(message));
            }
        }
    }
    Ok(running)
}

fn stop(context: &Context, running: &mut [RunningNode]) {
    nodes::stop_all(running, nodes::STOP_GRACE, |event| {
        print_event(context, event)
    });
}

fn print_log_tail(node: &RunningNode) {
    let lines = nodes::log_tail(node);
    if lines.is_empty() {
        eprintln!(
            "quorder: {} has nothing from this run",
            node.layout.log_path().display()
        );
        return;
    }
    eprintln!(
        "quorder: last lines of {}:",
        node.layout.log_path().display()
    );
    for line in lines {
        eprintln!("  {}", super::output::one_line(&line));
    }
}

fn print_ready(context: &Context, running: &[RunningNode]) -> Result<(), Failure> {
    let nodes: Vec<NodeView> = running
        .iter()
        .map(|node| NodeView {
            node: node.layout.id,
            region: node.layout.region.clone(),
            client_addr: node.layout.client_addr.to_string(),
            peer_addr: node.layout.peer_addr.to_string(),
            admin_addr: node.layout.admin_addr.to_string(),
            data_dir: node.layout.data_dir.display().to_string(),
            pid: node.pid(),
        })
        .collect();
    let clients: Vec<String> = nodes.iter().map(|node| node.client_addr.clone()).collect();
    let view = ReadyView {
        event: "ready",
        nodes,
        clients: clients.join(","),
    };
    context.output.print(&view, || {
        let mut text = String::new();
        for node in &view.nodes {
            text.push_str(&format!(
                "node {} ({}): client {}, peer {}, admin {}, data {}, pid {}\n",
                node.node,
                node.region,
                node.client_addr,
                node.peer_addr,
                node.admin_addr,
                node.data_dir,
                node.pid
                    .map_or_else(|| "-".to_string(), |pid| pid.to_string())
            ));
        }
        text.push_str(&format!("clients: {}", view.clients));
        text
    })
}

fn print_event(context: &Context, event: Event) {
    let view = EventView {
        event: event.kind,
        node: event.node,
        status: event.status,
    };
    // Nothing to do about a stdout that cannot be written; the nodes are handled anyway.
    let _ = context.output.print(&view, || {
        format!("node {} {}: {}", view.node, view.event, view.status)
    });
}
