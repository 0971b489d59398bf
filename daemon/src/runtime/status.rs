//! `quorder status` on the node's side: every core reports its mirrors and asks the
//! same-numbered core of every peer for theirs; the core that got the client's request
//! merges the answers into one cluster view.

use super::core::Core;
use super::message::CoreMessage;
use crate::limits::STATUS_PEER_TIMEOUT_MS;
use glommio::channels::local_channel;
use quorder_proto::status::{ClusterStatus, NodeStatus, ShardStatus};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

impl Core {
    /// The cluster's status as seen from this node.
    pub async fn cluster_status(self: &Rc<Self>, include_peers: bool) -> ClusterStatus {
        let mut waits = Vec::new();
        for core in 0..self.identity.cores {
            if core == self.id() {
                continue;
            }
            let token = self.status_token();
            let (sender, receiver) = local_channel::new_bounded(1);
            self.core_status_waiting.borrow_mut().insert(token, sender);
            self.send_to_core(
                core,
                CoreMessage::Status {
                    origin_core: self.id(),
                    token,
                    include_peers,
                },
            );
            waits.push((token, receiver));
        }
        let (mut shards, mut reachable) = self.core_status(include_peers).await;
        let limit = Duration::from_millis(2 * STATUS_PEER_TIMEOUT_MS);
        for (token, receiver) in waits {
            let answer = futures_lite::future::or(receiver.recv(), async {
                glommio::timer::sleep(limit).await;
                None
            })
            .await;
            self.core_status_waiting.borrow_mut().remove(&token);
            if let Some((more, answered)) = answer {
                shards.extend(more);
                reachable.extend(answered);
            }
        }
        let nodes = self
            .identity
            .nodes
            .iter()
            .map(|node| NodeStatus {
                id: node.id,
                region: node.region.clone(),
                addr: node.client_addr.to_string(),
                reachable: node.id == self.identity.node_id || reachable.contains(&node.id),
            })
            .collect();
        ClusterStatus::merge(self.identity.node_id, nodes, shards)
    }

    /// This core's mirrors, and (with `include_peers`) those of the same core on every
    /// peer that answers in time, with the set of peers that answered.
    pub(super) async fn core_status(
        self: &Rc<Self>,
        include_peers: bool,
    ) -> (Vec<ShardStatus>, BTreeSet<u64>) {
        let mut shards = self.local_status();
        let mut reachable = BTreeSet::new();
        if !include_peers {
            return (shards, reachable);
        }
        let peers: Vec<u64> = self
            .identity
            .nodes
            .iter()
            .map(|node| node.id)
            .filter(|id| *id != self.identity.node_id)
            .collect();
        let asks: Vec<_> = peers
            .into_iter()
            .map(|node| {
                let core = Rc::clone(self);
                let task = glommio::spawn_local(async move {
                    core.peer_status(node, Duration::from_millis(STATUS_PEER_TIMEOUT_MS))
                        .await
                });
                (node, task)
            })
            .collect();
        for (node, task) in asks {
            if let Some(answer) = task.await {
                shards.extend(answer);
                reachable.insert(node);
            }
        }
        (shards, reachable)
    }

    /// Answers another core's `Status` message.
    pub(super) fn answer_status(&self, origin_core: u32, token: u64, include_peers: bool) {
        let Some(core) = self.self_rc() else { return };
        glommio::spawn_local(async move {
            let (shards, reachable) = core.core_status(include_peers).await;
            let reachable = reachable.into_iter().collect();
            core.send_to_core(
                origin_core,
                CoreMessage::StatusResponse {
                    token,
                    shards,
                    reachable,
                },
            );
        })
        .detach();
    }

    /// Takes another core's answer to `Status`.
    pub(super) fn take_status_response(
        &self,
        token: u64,
        shards: Vec<ShardStatus>,
        reachable: Vec<u64>,
    ) {
        if let Some(sender) = self.core_status_waiting.borrow_mut().remove(&token) {
            let _ = sender.try_send((shards, reachable.into_iter().collect()));
        }
    }
}
