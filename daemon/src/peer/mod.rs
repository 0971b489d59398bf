//! Peer transport (DESIGN.md §6): frames between nodes over TCP, one connection per
//! (peer node, core) in each direction, so a shard's traffic stays on the cores that
//! own it on both ends.
//!
//! Each core owns a `PeerTransport` with one outgoing link per peer (`link`): `send`
//! frames a body and queues it without waiting; a full queue drops the frame and counts
//! it (Raft and two-phase commit re-send what matters). Incoming connections are greeted
//! and served by `accept`. Peers are refused unless they run the same shard and core
//! counts and are listed in this node's cluster map.

pub mod accept;
pub mod link;
// rkyv's archived twins carry no docs of their own; the originals do.
#[allow(missing_docs)]
pub mod message;

use crate::config::cluster::{NodeId, NodeInfo};
use crate::limits::PEER_QUEUE_FRAMES_MAX;
use glommio::channels::local_channel::{self, LocalSender};
use link::{LinkState, QueuedFrame};
use quorder_proto::frame::{write_frame, FrameKind};
use quorder_proto::limits::FRAME_HEADER_BYTES;
use quorder_proto::peer::PeerHello;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Link {
    queue: LocalSender<QueuedFrame>,
    state: Rc<LinkState>,
    delay: Duration,
}

/// One core's links to every other node.
pub struct PeerTransport {
    links: BTreeMap<NodeId, Link>,
    frames_dropped: Cell<u64>,
}

impl PeerTransport {
    /// Starts a link task towards every other node that has a peer address.
    pub fn start(
        this: &NodeInfo,
        nodes: &[NodeInfo],
        core: u32,
        cores: u32,
        shards: u32,
        wan_delay_ms: u64,
    ) -> Rc<PeerTransport> {
        let mut links = BTreeMap::new();
        for node in nodes.iter().filter(|node| node.id != this.id) {
            let Some(address) = node.peer_addr else {
                continue;
            };
            let (queue, receiver) = local_channel::new_bounded(PEER_QUEUE_FRAMES_MAX);
            let state = Rc::new(LinkState::default());
            let hello = PeerHello {
                node_id: this.id,
                to_node_id: node.id,
                core,
                cores,
                shards,
            };
            glommio::spawn_local(link::run_link(address, hello, receiver, Rc::clone(&state)))
                .detach();
            let delay = if node.region == this.region {
                0
            } else {
                wan_delay_ms
            };
            links.insert(
                node.id,
                Link {
                    queue,
                    state,
                    delay: Duration::from_millis(delay),
                },
            );
        }
        Rc::new(PeerTransport {
            links,
            frames_dropped: Cell::new(0),
        })
    }

    /// Frames `body` as a peer frame and queues it for `to`. Never waits: a full queue
    /// or an unknown node drops the frame (counted).
    pub fn send(&self, to: NodeId, body: &[u8]) {
        let Some(link) = self.links.get(&to) else {
            self.frames_dropped.set(self.frames_dropped.get() + 1);
            return;
        };
        let mut bytes = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
        write_frame(&mut bytes, FrameKind::Peer, 0, body);
        let queued = Instant::now();
        if link
            .queue
            .try_send(QueuedFrame {
                due: queued + link.delay,
                queued,
                bytes,
            })
            .is_err()
        {
            self.frames_dropped.set(self.frames_dropped.get() + 1);
        }
    }

    /// True if a greeted connection to `node` is up.
    pub fn is_connected(&self, node: NodeId) -> bool {
        self.links
            .get(&node)
            .is_some_and(|link| link.state.connected.get())
    }

    /// Frames dropped (queue full, unknown node, stale).
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.get()
            + self
                .links
                .values()
                .map(|link| link.state.frames_stale.get())
                .sum::<u64>()
    }
}
