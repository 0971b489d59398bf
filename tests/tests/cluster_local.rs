//! `quorder cluster local` end to end: it writes configs the daemon accepts, starts three
//! nodes that answer pings, reports a node killed with SIGKILL and leaves it down, lets
//! the node be restarted by hand from its config, refuses to run a second time on a live
//! or differently shaped directory, and on SIGTERM stops the nodes it started and exits 0.

use quorder_client::{Client, ClientOptions};
use quorder_daemon::config::{Config, FileConfig, Overrides};
use quorder_tests::process::{binary, scratch_dir};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const NODES: u32 = 3;
/// Ports the cluster needs from its base: 10 per node.
const PORT_SPAN: u16 = 30;
/// Three nodes starting at once on a loaded two-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(180);
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);
/// The supervisor gives its nodes 15 s before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

/// The `quorder cluster local` process and the lines of its stdout. Dropping it (a failed
/// assertion) stops the cluster.
struct Supervisor {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Supervisor {
    fn start(dir: &Path, base_port: u16) -> Supervisor {
        let mut child = Command::new(binary("quorder"))
            .args(["cluster", "local", "--nodes", &NODES.to_string(), "--dir"])
            .arg(dir)
            .args(["--base-port", &base_port.to_string()])
            .args(["--heartbeat-ms", "50", "--election-min-ms", "300"])
            .args(["--election-max-ms", "600", "--wan-ms", "2"])
            .args(["--quorderd"])
            .arg(binary("quorderd"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn quorder cluster local");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Supervisor {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line that `wanted` accepts; panics with all lines seen if none
    /// comes in time or the process exits.
    fn wait_line(&mut self, wanted: impl Fn(&str) -> bool, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(error) => panic!(
                    "no expected line from quorder cluster local ({error}); its stdout:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(self.child.id(), libc::SIGTERM);
            if wait_exit(&mut self.child, STOP_TIMEOUT).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// A node this test restarted by hand; dropping it kills it.
struct HandStarted(Child);

impl Drop for HandStarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(pid: u32, signal: i32) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) with plain integers; a process that is gone yields ESRCH.
    unsafe { libc::kill(pid, signal) };
}

fn is_alive(pid: u32) -> bool {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A base port where the cluster's 30 ports are free, below the ephemeral range.
fn free_port_base() -> u16 {
    let first_slot = u16::try_from(std::process::id() % 300).expect("below 300");
    for step in 0..300u16 {
        let base = 20_000 + ((first_slot + step) % 300) * 40;
        let free =
            (base..base + PORT_SPAN).all(|port| TcpListener::bind(("127.0.0.1", port)).is_ok());
        if free {
            return base;
        }
    }
    panic!("no free range of {PORT_SPAN} ports in 20000..32000");
}

fn node_dir(dir: &Path, node: u32) -> PathBuf {
    dir.join(format!("n{node}"))
}

fn client_addr(base_port: u16, node: u32) -> String {
    let offset = u16::try_from(10 * (node - 1)).expect("small");
    format!("127.0.0.1:{}", base_port + offset)
}

fn lock_pid(dir: &Path, node: u32) -> u32 {
    let path = node_dir(dir, node).join("quorderd.lock");
    let text = std::fs::read_to_string(&path).expect("lock file");
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{} holds `{text}`, not a PID", path.display()))
}

fn ping(address: &str) -> Result<u32, String> {
    let options = ClientOptions {
        request_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
    };
    let mut client =
        Client::connect(&[address.to_string()], options).map_err(|error| error.to_string())?;
    let pong = client.ping().map_err(|error| error.to_string())?;
    Ok(pong.shard_count)
}

fn wait_ping(address: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        match ping(address) {
            Ok(_) => return,
            Err(error) if Instant::now() >= deadline => {
                panic!("node at {address} does not answer a ping: {error}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Every config is the daemon's format, with this node's identity and the whole cluster.
fn check_configs(dir: &Path, base_port: u16) {
    for node in 1..=NODES {
        let path = node_dir(dir, node).join("quorderd.toml");
        let file = FileConfig::load(&path).unwrap_or_else(|error| panic!("{error}"));
        let config = Config::resolve(file, Overrides::default(), 64)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        assert_eq!(config.node_id, u64::from(node));
        assert_eq!(config.data_dir, node_dir(dir, node));
        assert_eq!(config.client_addr.to_string(), client_addr(base_port, node));
        let peer = config.peer_addr.map(|address| address.port());
        assert_eq!(peer, Some(base_port + 10 * (node as u16 - 1) + 1));
        assert_eq!(
            config.admin_addr.port(),
            base_port + 10 * (node as u16 - 1) + 2
        );
        assert_eq!((config.shards, config.cores), (8, 1));
        let regions: Vec<&str> = config
            .nodes
            .iter()
            .map(|info| info.region.as_str())
            .collect();
        assert_eq!(regions, ["r1", "r2", "r3"]);
        assert_eq!(config.raft.heartbeat_interval_ms, 50);
        assert_eq!(config.raft.election_timeout_min_ms, 300);
        assert_eq!(config.raft.election_timeout_max_ms, 600);
        assert_eq!(config.wan_delay_ms, 2);
    }
}

/// Runs `quorder cluster local` once more on `dir` with `nodes`; it must refuse (exit 1)
/// with a message containing `expected`, before starting anything.
fn check_refused(dir: &Path, base_port: u16, nodes: u32, expected: &str) {
    let output = Command::new(binary("quorder"))
        .args(["cluster", "local", "--nodes", &nodes.to_string(), "--dir"])
        .arg(dir)
        .args(["--base-port", &base_port.to_string(), "--quorderd"])
        .arg(binary("quorderd"))
        .stdin(Stdio::null())
        .output()
        .expect("run quorder cluster local");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected `{expected}` in: {stderr}"
    );
}

#[test]
fn local_cluster_starts_reports_a_killed_node_and_stops() {
    let dir = scratch_dir("cluster-local");
    let base_port = free_port_base();
    let mut supervisor = Supervisor::start(&dir, base_port);

    let expected_clients: Vec<String> = (1..=NODES)
        .map(|node| client_addr(base_port, node))
        .collect();
    let clients = supervisor.wait_line(|line| line.starts_with("clients: "), START_TIMEOUT);
    assert_eq!(clients, format!("clients: {}", expected_clients.join(",")));
    for node in 1..=NODES {
        let prefix = format!(
            "node {node} (r{node}): client {}",
            client_addr(base_port, node)
        );
        assert!(
            supervisor.seen.iter().any(|line| line.starts_with(&prefix)),
            "no `{prefix}` in {:?}",
            supervisor.seen
        );
    }
    check_configs(&dir, base_port);
    let pids: Vec<u32> = (1..=NODES).map(|node| lock_pid(&dir, node)).collect();
    for (&pid, address) in pids.iter().zip(&expected_clients) {
        assert!(
            is_alive(pid),
            "node at {address} (pid {pid}) is not running"
        );
        assert_eq!(ping(address), Ok(8), "ping {address}");
    }
    check_refused(&dir, base_port, NODES, "node 1 is already running");

    signal(pids[1], libc::SIGKILL);
    supervisor.wait_line(|line| line == "node 2 exited: signal 9", EVENT_TIMEOUT);
    assert!(
        wait_gone(pids[1], EVENT_TIMEOUT),
        "node 2 still runs after SIGKILL"
    );
    assert!(
        ping(&expected_clients[1]).is_err(),
        "node 2 was restarted by the supervisor"
    );
    assert!(
        is_alive(pids[0]) && is_alive(pids[2]),
        "other nodes went down with node 2"
    );

    let config = node_dir(&dir, 2).join("quorderd.toml");
    let restarted = Command::new(binary("quorderd"))
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("restart node 2");
    let mut restarted = HandStarted(restarted);
    wait_ping(&expected_clients[1], START_TIMEOUT);
    assert_eq!(lock_pid(&dir, 2), restarted.0.id());

    signal(supervisor.child.id(), libc::SIGTERM);
    let status = wait_exit(&mut supervisor.child, STOP_TIMEOUT).expect("supervisor exits");
    assert!(status.success(), "supervisor exited with {status}");
    for node in [1, 3] {
        supervisor.wait_line(
            |line| line.starts_with(&format!("node {node} stopped: ")),
            EVENT_TIMEOUT,
        );
        let pid = pids[node as usize - 1];
        assert!(
            wait_gone(pid, EVENT_TIMEOUT),
            "node {node} (pid {pid}) still runs"
        );
    }
    // The supervisor stops only what it started: the hand-started node 2 still serves.
    assert_eq!(ping(&expected_clients[1]), Ok(8));
    signal(restarted.0.id(), libc::SIGTERM);
    let status = wait_exit(&mut restarted.0, STOP_TIMEOUT).expect("node 2 exits");
    assert!(status.success(), "node 2 exited with {status}");

    check_refused(
        &dir,
        base_port,
        NODES + 1,
        "lists 3 nodes, but --nodes 4 was asked",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
