//! The node's runtime: one pinned glommio executor per core, the bounded channel mesh
//! between them, recovery, the client listeners, and an orderly stop.
//!
//! glommio stays behind this module (and `wal`, `snapshot`, `ingress`) so that it can be
//! swapped without touching the deterministic core.

pub mod core;
pub mod message;
mod peer_link;
mod persist;
mod status;

use self::core::{Core, CoreIdentity};
use crate::config::Config;
use crate::ingress::serve_connection;
use crate::limits::{
    CORE_CHANNEL_MESSAGES_MAX, CORE_CONNECTIONS_MAX, CORE_TICK_INTERVAL_MS, RAFT_TICK_INTERVAL_MS,
    SHUTDOWN_DRAIN_MS, TXN_RESEND_INTERVAL_MS, WAL_BUFFER_BYTES_MAX, WAL_SEGMENT_BYTES,
};
use crate::peer::accept::LocalShape;
use crate::peer::PeerTransport;
use crate::raft::config::RaftConfig;
use crate::recovery::RecoveredShard;
use crate::shard::Shard;
use crate::snapshot;
use crate::store::Store;
use crate::wal::{Wal, WalOptions};
use glommio::channels::channel_mesh::{Full, MeshBuilder, Receivers};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use message::CoreMessage;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set when the node must stop (signal, or a core failed to start).
pub static STOPPING: AtomicBool = AtomicBool::new(false);

/// Shared between the cores of a node for start-up and stop.
#[derive(Debug, Default)]
struct NodeBarrier {
    recovered: AtomicUsize,
    listening: AtomicUsize,
    drained: AtomicUsize,
    failed: AtomicBool,
}

/// Why the node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An executor could not be started.
    #[error("cannot start the executor of core {core}: {reason}")]
    Executor {
        /// The core.
        core: u32,
        /// Why.
        reason: String,
    },
    /// A core failed (recovery, listener...).
    #[error("core {core}: {reason}")]
    Core {
        /// The core.
        core: u32,
        /// Why.
        reason: String,
    },
}

/// Runs a node until `STOPPING` is set and every core has drained. `cpus` are the CPU
/// ids to pin the executors to (one per core).
pub fn run(config: &Config, cpus: &[usize]) -> Result<(), RunError> {
    assert_eq!(cpus.len(), config.cores as usize);
    let mesh =
        MeshBuilder::<CoreMessage, Full>::full(config.cores as usize, CORE_CHANNEL_MESSAGES_MAX);
    let barrier = Arc::new(NodeBarrier::default());
    let mut handles = Vec::new();
    for (core, cpu) in cpus.iter().enumerate() {
        let core = core as u32;
        let (config, mesh, barrier) = (config.clone(), mesh.clone(), Arc::clone(&barrier));
        let handle = LocalExecutorBuilder::new(Placement::Fixed(*cpu))
            .name(&format!("quorder-core{core}"))
            .spawn(move || async move {
                let result = run_core(core, &config, mesh, &barrier).await;
                if result.is_err() {
                    barrier.failed.store(true, Ordering::SeqCst);
                    STOPPING.store(true, Ordering::SeqCst);
                }
                result
            })
            .map_err(|error| RunError::Executor {
                core,
                reason: error.to_string(),
            })?;
        handles.push((core, handle));
    }
    let mut first_error = None;
    for (core, handle) in handles {
        let outcome = handle.join().map_err(|error| RunError::Executor {
            core,
            reason: error.to_string(),
        });
        let outcome =
            outcome.and_then(|result| result.map_err(|reason| RunError::Core { core, reason }));
        if let Err(error) = outcome {
            first_error.get_or_insert(error);
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn run_core(
    id: u32,
    config: &Config,
    mesh: MeshBuilder<CoreMessage, Full>,
    barrier: &NodeBarrier,
) -> Result<(), String> {
    // Keeps this executor's reactor waking while the mesh is joined: a lost cross-executor
    // wake-up during the join was seen to hang start-up (about 1 start in 130 under load).
    let joined = Rc::new(std::cell::Cell::new(false));
    let keep_awake = Rc::clone(&joined);
    glommio::spawn_local(async move {
        while !keep_awake.get() {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    })
    .detach();
    let (senders, receivers) = mesh
        .join()
        .await
        .map_err(|_| "cannot join the core mesh".to_string())?;
    joined.set(true);
    let started = Instant::now();
    let (shards, wal) = recover(id, config).await?;
    let entries: usize = shards
        .values()
        .map(|shard| shard.store().applied_index() as usize)
        .sum();
    tracing::info!(
        core = id,
        shards = shards.len(),
        entries,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered"
    );
    let peers = (config.nodes.len() > 1).then(|| {
        PeerTransport::start(
            config.this_node(),
            &config.nodes,
            id,
            config.cores,
            config.shards,
            config.wan_delay_ms,
        )
    });
    let identity = CoreIdentity {
        id,
        cores: config.cores,
        shard_count: config.shards,
        node_id: config.node_id,
        nodes: config.nodes.clone(),
        data_dir: config.data_dir.clone(),
        snapshot_interval_entries: config.snapshot_interval_entries,
    };
    let (core, bell) = Core::new(identity, shards, wal, senders, peers);
    glommio::spawn_local(Rc::clone(&core).run_flusher(bell)).detach();
    spawn_mesh_receivers(&core, receivers);
    glommio::spawn_local(run_ticker(Rc::clone(&core))).detach();
    if let Some(peer_addr) = config.peer_addr.filter(|_| config.nodes.len() > 1) {
        let listener = TcpListener::bind(peer_addr)
            .map_err(|error| format!("cannot listen for peers on {peer_addr}: {error}"))?;
        let shape = LocalShape {
            node_id: config.node_id,
            cores: config.cores,
            shards: config.shards,
            members: config.nodes.iter().map(|node| node.id).collect(),
        };
        glommio::spawn_local(peer_link::accept_peers(Rc::clone(&core), listener, shape)).detach();
    }
    barrier.recovered.fetch_add(1, Ordering::SeqCst);
    wait_for(
        || barrier.recovered.load(Ordering::SeqCst) == config.cores as usize,
        None,
    )
    .await;
    if barrier.failed.load(Ordering::SeqCst) {
        return Ok(()); // another core reports the failure
    }
    let listener = TcpListener::bind(config.client_addr).map_err(|error| {
        format!(
            "cannot listen for clients on {}: {error}",
            config.client_addr
        )
    })?;
    if barrier.listening.fetch_add(1, Ordering::SeqCst) + 1 == config.cores as usize {
        tracing::info!(addr = %config.client_addr, cores = config.cores, shards = config.shards, "quorderd ready");
        println!(
            "quorderd ready: {} shards on {} cores, clients at {}",
            config.shards, config.cores, config.client_addr
        );
    }
    let connections = accept_until_stopped(&core, listener).await;
    drain(&core, &connections, barrier, config.cores as usize).await;
    Ok(())
}

type Shards = BTreeMap<u32, Shard<message::ReplySink>>;

/// Loads each mirror's snapshot, replays this core's WAL over it, applies what is known
/// committed, and builds the Raft members.
async fn recover(id: u32, config: &Config) -> Result<(Shards, Wal), String> {
    // A configuration Raft would refuse is reported here, not as a panic per mirror.
    raft_config(config, 0)
        .validate()
        .map_err(|error| error.to_string())?;
    let mut recovered = BTreeMap::new();
    for shard in (0..config.shards).filter(|shard| shard % config.cores == id) {
        let found = snapshot::read_snapshot(&config.data_dir, shard)
            .await
            .map_err(|error| error.to_string())?;
        let mirror = match found {
            Some(snapshot) => {
                let store = Store::from_snapshot(shard, &snapshot.body)
                    .map_err(|error| error.to_string())?;
                RecoveredShard::new(store, snapshot.applied_index, snapshot.term)
            }
            None => RecoveredShard::new(Store::new(shard, config.shards), 0, 0),
        };
        recovered.insert(shard, mirror);
    }
    let options = WalOptions {
        segment_bytes: WAL_SEGMENT_BYTES,
        buffer_bytes_max: WAL_BUFFER_BYTES_MAX,
        ..WalOptions::default()
    };
    let mut replay_error: Option<String> = None;
    let wal = Wal::open(&config.data_dir, id, options, |header, payload| {
        if replay_error.is_some() {
            return Ok(());
        }
        let outcome = match recovered.get_mut(&header.shard) {
            Some(mirror) => mirror.replay(&header, payload),
            None => Err(format!(
                "WAL of core {id} holds a record of shard {}, which this core does not own",
                header.shard
            )),
        };
        if let Err(error) = outcome {
            replay_error = Some(error);
        }
        Ok(())
    })
    .await
    .map_err(|error| error.to_string())?;
    if let Some(error) = replay_error {
        return Err(error);
    }
    let shards = recovered
        .into_iter()
        .map(|(shard, mirror)| (shard, mirror_from(config, shard, mirror)))
        .collect();
    Ok((shards, wal))
}

/// A Raft member and store from what recovery found.
fn mirror_from(config: &Config, shard: u32, mirror: RecoveredShard) -> Shard<message::ReplySink> {
    let (store, restored) = mirror.into_parts();
    Shard::new(
        store,
        raft_config(config, shard),
        restored,
        TXN_RESEND_INTERVAL_MS,
    )
}

/// Raft settings of one mirror, in ticks of `RAFT_TICK_INTERVAL_MS`.
fn raft_config(config: &Config, shard: u32) -> RaftConfig {
    let voters = config.nodes.iter().map(|node| node.id).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    // Different on every node and restart, so that elections do not keep splitting.
    let seed = config.node_id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (u64::from(shard) << 32)
        ^ u64::from(nanos);
    let mut raft = RaftConfig::with_defaults(config.node_id, voters, seed);
    let ticks = |ms: u64| (ms / RAFT_TICK_INTERVAL_MS).max(1);
    raft.heartbeat_ticks = ticks(config.raft.heartbeat_interval_ms);
    raft.election_ticks_min = ticks(config.raft.election_timeout_min_ms);
    raft.election_ticks_max =
        ticks(config.raft.election_timeout_max_ms).max(raft.election_ticks_min + 2);
    raft
}

fn spawn_mesh_receivers(core: &Rc<Core>, mut receivers: Receivers<CoreMessage>) {
    for (_peer, receiver) in receivers.streams() {
        let core = Rc::clone(core);
        glommio::spawn_local(async move {
            while let Some(message) = receiver.recv().await {
                core.on_message(message);
            }
        })
        .detach();
    }
}

async fn run_ticker(core: Rc<Core>) {
    let snapshot_every = (CORE_TICK_INTERVAL_MS / RAFT_TICK_INTERVAL_MS).max(1);
    let mut ticks = 0u64;
    loop {
        glommio::timer::sleep(Duration::from_millis(RAFT_TICK_INTERVAL_MS)).await;
        core.tick();
        ticks += 1;
        if ticks.is_multiple_of(snapshot_every) {
            core.snapshot_if_due().await;
        }
    }
}

type Connections = Rc<RefCell<HashMap<u64, RawFd>>>;

async fn accept_until_stopped(core: &Rc<Core>, listener: TcpListener) -> Connections {
    let connections: Connections = Rc::new(RefCell::new(HashMap::new()));
    let mut next_connection = 0u64;
    loop {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
            wait_for(|| STOPPING.load(Ordering::SeqCst), None).await;
            None
        })
        .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                tracing::warn!(%error, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if connections.borrow().len() >= CORE_CONNECTIONS_MAX {
            tracing::warn!(
                core = core.id(),
                "connection limit reached; closing a new connection"
            );
            continue;
        }
        next_connection += 1;
        let key = next_connection;
        connections.borrow_mut().insert(key, stream.as_raw_fd());
        let (core, connections) = (Rc::clone(core), Rc::clone(&connections));
        glommio::spawn_local(async move {
            serve_connection(core, stream).await;
            connections.borrow_mut().remove(&key);
        })
        .detach();
    }
    connections
}

/// Stops reading new requests, lets in-flight ones finish and be synced, and waits for
/// the other cores to do the same (they may still need this core's shards).
async fn drain(core: &Rc<Core>, connections: &Connections, barrier: &NodeBarrier, cores: usize) {
    for fd in connections.borrow().values() {
        // SAFETY: the fd belongs to a live connection (removed from the map when its task
        // ends, before the stream is dropped); shutting down reading only makes the
        // connection's reader see end of stream, its writer still sends the answers due.
        unsafe { libc::shutdown(*fd, libc::SHUT_RD) };
    }
    let deadline = Some(Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS));
    wait_for(|| connections.borrow().is_empty(), deadline).await;
    wait_for(|| core.in_flight() == 0 && !core.has_unsynced(), deadline).await;
    barrier.drained.fetch_add(1, Ordering::SeqCst);
    wait_for(|| barrier.drained.load(Ordering::SeqCst) == cores, deadline).await;
    wait_for(|| core.in_flight() == 0 && !core.has_unsynced(), deadline).await;
    tracing::info!(core = core.id(), "drained");
}

/// Polls `condition` every few milliseconds until it holds or `deadline` passes.
async fn wait_for(condition: impl Fn() -> bool, deadline: Option<Instant>) {
    while !condition() && deadline.is_none_or(|deadline| Instant::now() < deadline) {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
}
