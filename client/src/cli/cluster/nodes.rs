//! The `quorderd` processes of a local cluster: start them, wait until they answer, watch
//! them, stop them. A node that exits is reported and left down: whoever killed it (a
//! test, an operator) restarts it with `quorderd --config <dir>/n<I>/quorderd.toml`.

use super::layout::NodeLayout;
use super::unix;
use quorder_client::{Client, ClientOptions};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How often the supervisor looks at its children and the ready-wait pings.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long nodes may take to stop after SIGTERM before they get SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(15);
/// Lines of a node's log shown when it fails to start.
const LOG_TAIL_LINES_MAX: usize = 20;
/// Bytes read from the end of a log to find those lines.
const LOG_TAIL_BYTES_MAX: u64 = 64 * 1024;
/// Deadline of one readiness ping.
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// One node this process started.
pub struct RunningNode {
    /// Where it lives.
    pub layout: NodeLayout,
    /// The process; `None` once it exited and was reaped.
    child: Option<Child>,
    /// Length of the log when this process started the node: what follows is this run's.
    log_offset: u64,
}

impl RunningNode {
    /// PID of the process, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process has exited (it is then reaped and forgotten).
    fn reap(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status)
            }
            Ok(None) | Err(_) => None,
        }
    }
}

/// What happened to a node, as printed.
pub struct Event {
    /// The node.
    pub node: u32,
    /// `exited` (on its own) or `stopped` (by the supervisor).
    pub kind: &'static str,
    /// `exit status 1`, `signal 9`.
    pub status: String,
}

/// `exit status N` or `signal N`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) if status.core_dumped() => format!("signal {signal} (core dumped)"),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The daemon binary: `explicit`, else `quorderd` beside the running executable, else
/// `quorderd` from PATH.
pub fn quorderd_binary(explicit: Option<PathBuf>) -> PathBuf {
    if let Some(path) = explicit {
        return path;
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("quorderd")))
        .filter(|path| path.is_file());
    beside.unwrap_or_else(|| PathBuf::from("quorderd"))
}

/// Starts `quorderd --config <node's config>` with its output appended to the node's log,
/// in a process group of its own so that a Ctrl-C at the terminal reaches only the
/// supervisor, which then stops the nodes in order.
pub fn start(binary: &Path, layout: &NodeLayout) -> Result<RunningNode, String> {
    let log_path = layout.log_path();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|error| format!("cannot open {}: {error}", log_path.display()))?;
    let log_offset = log.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let stderr = log
        .try_clone()
        .map_err(|error| format!("cannot open {}: {error}", log_path.display()))?;
    let child = Command::new(binary)
        .arg("--config")
        .arg(layout.config_path())
        // The log is a file: no colour escapes in it.
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|error| {
            format!(
                "cannot start node {} with {}: {error} (give the daemon's path with --quorderd)",
                layout.id,
                binary.display()
            )
        })?;
    Ok(RunningNode {
        layout: layout.clone(),
        child: Some(child),
        log_offset,
    })
}

/// How the wait for the nodes to answer ended.
pub enum Readiness {
    /// Every node answered a ping.
    Ready,
    /// A stop signal came first.
    Signalled,
    /// A node exited or stayed silent; the message says which and how.
    Failed {
        /// The node.
        node: u32,
        /// What happened.
        message: String,
    },
}

fn answers_ping(address: &str) -> bool {
    let options = ClientOptions {
        request_timeout: PING_TIMEOUT,
        connect_timeout: PING_TIMEOUT,
    };
    Client::connect(&[address.to_string()], options)
        .and_then(|mut client| client.ping())
        .is_ok()
}

/// Waits until every node answers a ping, one exits, `timeout` passes, or a stop signal
/// arrives.
pub fn wait_ready(
    nodes: &mut [RunningNode],
    timeout: Duration,
    signals: &Receiver<i32>,
) -> Readiness {
    let deadline = Instant::now() + timeout;
    let addresses: Vec<String> = nodes
        .iter()
        .map(|node| node.layout.client_addr.to_string())
        .collect();
    let mut ready = vec![false; nodes.len()];
    loop {
        for (index, node) in nodes.iter_mut().enumerate() {
            if ready[index] {
                continue;
            }
            if let Some(status) = node.reap() {
                return Readiness::Failed {
                    node: node.layout.id,
                    message: format!("exited during start-up: {}", describe(status)),
                };
            }
            ready[index] = answers_ping(&addresses[index]);
        }
        if ready.iter().all(|&answered| answered) {
            return Readiness::Ready;
        }
        if Instant::now() >= deadline {
            let index = ready.iter().position(|&answered| !answered).unwrap_or(0);
            return Readiness::Failed {
                node: nodes[index].layout.id,
                message: format!(
                    "did not answer a ping at {} within {} ms",
                    addresses[index],
                    timeout.as_millis()
                ),
            };
        }
        match signals.recv_timeout(POLL_INTERVAL) {
            Ok(_) => return Readiness::Signalled,
            Err(RecvTimeoutError::Timeout) => {}
            // No signal thread: nothing can stop the wait but the deadline.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// The last lines this run wrote to a node's log.
pub fn log_tail(node: &RunningNode) -> Vec<String> {
    let path = node.layout.log_path();
    let Ok(mut file) = File::open(&path) else {
        return Vec::new();
    };
    let length = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let start = node
        .log_offset
        .max(length.saturating_sub(LOG_TAIL_BYTES_MAX));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err()
        || file
            .take(LOG_TAIL_BYTES_MAX)
            .read_to_end(&mut bytes)
            .is_err()
    {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.len().saturating_sub(LOG_TAIL_LINES_MAX);
    lines[first..].iter().map(|line| line.to_string()).collect()
}

/// Watches the nodes until a stop signal arrives, calling `report` for each node that
/// exits. Exited nodes stay down; the supervisor keeps running even when all are down.
pub fn supervise(
    nodes: &mut [RunningNode],
    signals: &Receiver<i32>,
    mut report: impl FnMut(Event),
) {
    loop {
        for node in nodes.iter_mut() {
            if let Some(status) = node.reap() {
                report(Event {
                    node: node.layout.id,
                    kind: "exited",
                    status: describe(status),
                });
            }
        }
        match signals.recv_timeout(POLL_INTERVAL) {
            Ok(_) => return,
            Err(RecvTimeoutError::Timeout) => {}
            // The signal thread is gone: no way left to be told to stop but being killed.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(POLL_INTERVAL),
        }
    }
}

/// Sends SIGTERM to every node still running, waits up to `grace` for them to exit, then
/// SIGKILLs the rest. Calls `report` for each. Stop signals arriving meanwhile are taken
/// by the signal thread and change nothing: a shell or `timeout` often sends one to the
/// process and one to its group, so a repeat is no sign of impatience.
pub fn stop_all(nodes: &mut [RunningNode], grace: Duration, mut report: impl FnMut(Event)) {
    for node in nodes.iter_mut() {
        if let Some(pid) = node.pid() {
            // A node that exited meanwhile yields ESRCH; the loop below reaps it.
            let _ = unix::send_signal(pid, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + grace;
    loop {
        for node in nodes.iter_mut() {
            if let Some(status) = node.reap() {
                report(Event {
                    node: node.layout.id,
                    kind: "stopped",
                    status: describe(status),
                });
            }
        }
        if nodes.iter().all(|node| node.child.is_none()) {
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    for node in nodes.iter_mut() {
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let status = child
                .wait()
                .map(describe)
                .unwrap_or_else(|error| error.to_string());
            report(Event {
                node: node.layout.id,
                kind: "killed",
                status,
            });
        }
    }
}
