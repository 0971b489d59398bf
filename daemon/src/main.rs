//! `quorderd`: the quorder daemon.

use clap::Parser;
use quorder_daemon::config::{Config, FileConfig, Overrides};
use quorder_daemon::runtime::{self, STOPPING};
use quorder_daemon::startup;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// quorderd — replicated order-processing daemon. With no flags it serves one node on
/// 127.0.0.1:7400 with its data in ./quorder-data.
#[derive(Debug, Parser)]
#[command(name = "quorderd", version)]
struct Arguments {
    /// TOML configuration file; flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (WAL, snapshots, lock file).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for client connections (IP:PORT).
    #[arg(long)]
    client_addr: Option<String>,
    /// Number of cores to run on (one pinned executor each); default all.
    #[arg(long)]
    cores: Option<u32>,
    /// Number of shards; fixed when the data directory is created. Default 8.
    #[arg(long)]
    shards: Option<u32>,
    /// This node's id in the cluster's `[[nodes]]` (default 1).
    #[arg(long)]
    node_id: Option<u64>,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QUORDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal; logs to files and journald stay plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    match run(Arguments::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("quorderd: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: Arguments) -> Result<(), String> {
    let cpus: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|id| id.id).collect())
        .unwrap_or_else(|| vec![0]);
    let file = match &arguments.config {
        Some(path) => FileConfig::load(path).map_err(|error| error.to_string())?,
        None => FileConfig::default(),
    };
    let overrides = Overrides {
        data_dir: arguments.data_dir,
        client_addr: arguments.client_addr,
        cores: arguments.cores,
        shards: arguments.shards,
        node_id: arguments.node_id,
    };
    let config =
        Config::resolve(file, overrides, cpus.len() as u32).map_err(|error| error.to_string())?;
    startup::check_host(config.cores).map_err(|error| error.to_string())?;
    let _lock = startup::lock_data_dir(&config.data_dir).map_err(|error| error.to_string())?;
    startup::check_shape(&config.data_dir, config.shards, config.cores)
        .map_err(|error| error.to_string())?;
    block_stop_signals()?;
    std::thread::Builder::new()
        .name("quorder-signals".into())
        .spawn(wait_for_stop_signal)
        .map_err(|error| format!("cannot start the signal thread: {error}"))?;
    let pinned = pinned_cpus(&cpus, config.cores as usize, config.node_id);
    runtime::run(&config, &pinned).map_err(|error| error.to_string())?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// CPUs for the executors: `cores` of them, starting at an offset derived from the node
/// id, so that several nodes of a local cluster sharing one host spread over its CPUs
/// (a node using every CPU gets them all either way).
fn pinned_cpus(cpus: &[usize], cores: usize, node_id: u64) -> Vec<usize> {
    let offset = (node_id.saturating_sub(1) as usize).wrapping_mul(cores) % cpus.len();
    (0..cores)
        .map(|core| cpus[(offset + core) % cpus.len()])
        .collect()
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset only write the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in this thread and every thread started after, so that only
/// the signal thread receives them (with sigwait) and the executors are never interrupted.
fn block_stop_signals() -> Result<(), String> {
    let set = stop_signals();
    // SAFETY: the set is initialised; the old mask is not needed.
    let result = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if result != 0 {
        return Err(format!("cannot block stop signals (error {result})"));
    }
    Ok(())
}

fn wait_for_stop_signal() {
    let set = stop_signals();
    let mut signal = 0;
    // SAFETY: sigwait reads the initialised set and writes the signal number.
    let result = unsafe { libc::sigwait(&set, &mut signal) };
    if result == 0 {
        tracing::info!(signal, "stop signal received; draining");
    }
    STOPPING.store(true, Ordering::SeqCst);
}
