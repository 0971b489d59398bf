//! Real `quorderd` processes for tests: build once, start on a free loopback port, wait
//! until ready, kill -9, stop with SIGTERM, restart on the same data.

use quorder_client::{Client, ClientOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Directory holding the workspace's binaries for the profile these tests were built in.
/// Builds them once per test process (a no-op when they are up to date).
pub fn binaries_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> → target/<profile>
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target profile dir")
            .to_path_buf();
        let release = dir.file_name().is_some_and(|name| name == "release");
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command.args([
            "build",
            "--bins",
            "-p",
            "quorder-daemon",
            "-p",
            "quorder-client",
            "-p",
            "quorder-loadgen",
        ]);
        if release {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build for the binaries");
        assert!(status.success(), "building the binaries failed");
        dir
    })
}

/// Path of a workspace binary.
pub fn binary(name: &str) -> PathBuf {
    binaries_dir().join(name)
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A fresh scratch directory for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quorder-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// True if a node answers a ping at `addr` within half a second.
pub fn answers_ping(addr: &str) -> bool {
    let options = ClientOptions {
        request_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(200),
    };
    Client::connect(&[addr.to_string()], options).is_ok_and(|mut client| client.ping().is_ok())
}

/// One `quorderd` process and how to start it again.
pub struct Node {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Client address.
    pub addr: String,
    shards: u32,
    cores: u32,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Node {
    /// Starts a node and waits until it answers pings.
    pub fn start(data_dir: &Path, shards: u32, cores: u32) -> Node {
        Node::start_with_env(data_dir, shards, cores, &[])
    }

    /// Starts a node with extra environment variables (crash points, log levels).
    pub fn start_with_env(data_dir: &Path, shards: u32, cores: u32, env: &[(&str, &str)]) -> Node {
        let addr = format!("127.0.0.1:{}", free_port());
        let env = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        let mut node = Node {
            data_dir: data_dir.to_path_buf(),
            addr,
            shards,
            cores,
            env,
            child: None,
        };
        node.restart();
        node
    }

    /// Environment for the next restarts (replaces what was set).
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
    }

    /// Waits until the process exits by itself (a crash point); false on timeout.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Starts the process again on the same data and address; waits until ready.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node already running");
        let child = Command::new(binary("quorderd"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--client-addr", &self.addr])
            .args([
                "--shards",
                &self.shards.to_string(),
                "--cores",
                &self.cores.to_string(),
            ])
            .env("QUORDER_LOG", "warn")
            .envs(
                self.env
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str())),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn quorderd");
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(60));
    }

    fn wait_ready(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("quorderd exited during start-up: {status}");
                }
            }
            if answers_ping(&self.addr) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "quorderd at {} not ready in time",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client of this node.
    pub fn client(&self) -> Client {
        let options = ClientOptions {
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(1),
        };
        Client::connect(std::slice::from_ref(&self.addr), options).expect("connect to quorderd")
    }

    /// kill -9: no chance to sync or answer.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("node running");
        // SAFETY: kill(2) on the PID of our own child process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        child.wait().expect("wait for quorderd")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
