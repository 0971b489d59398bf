//! The simulated network between nodes: delay, reordering, loss, duplication, and
//! symmetric or asymmetric partitions, all drawn from the run's generator.

use crate::rng::Rng;
use quorder_daemon::raft::config::NodeId;
use quorder_daemon::raft::message::Message;
use std::collections::BTreeSet;

/// Fault rates of the network while faults are on.
#[derive(Debug, Clone)]
pub struct NetworkFaults {
    /// Percent of messages lost.
    pub loss_percent: u64,
    /// Percent of messages delivered twice.
    pub duplicate_percent: u64,
    /// Largest ordinary delay, in ticks (uniform from 0); differing delays reorder.
    pub delay_ticks_max: u64,
    /// Percent of messages delayed much longer (up to 4 × the election timeout).
    pub long_delay_percent: u64,
}

/// A message on its way.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) from: NodeId,
    pub(crate) to: NodeId,
    pub(crate) group: usize,
    pub(crate) message: Message,
    deliver_at_tick: u64,
    /// Ties between messages due at the same tick are broken by this random key.
    order_key: u64,
}

/// Messages in flight and the links that are cut.
#[derive(Debug, Default)]
pub(crate) struct Network {
    in_flight: Vec<Envelope>,
    /// Directed links (from, to) that lose everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    faults_on: bool,
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
}

impl Network {
    pub(crate) fn set_faults(&mut self, on: bool) {
        self.faults_on = on;
    }

    /// Sends `message`; it arrives (maybe twice, maybe never) at a later tick.
    pub(crate) fn send(
        &mut self,
        rng: &mut Rng,
        faults: &NetworkFaults,
        now_tick: u64,
        (from, to, group): (NodeId, NodeId, usize),
        message: Message,
    ) {
        self.sent += 1;
        if self.cut.contains(&(from, to)) {
            return;
        }
        let copies = if self.faults_on && rng.chance(faults.duplicate_percent) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            if self.faults_on && rng.chance(faults.loss_percent) {
                continue;
            }
            let delay = if !self.faults_on {
                rng.below(2)
            } else if rng.chance(faults.long_delay_percent) {
                rng.below(60)
            } else {
                rng.below(faults.delay_ticks_max + 1)
            };
            self.in_flight.push(Envelope {
                from,
                to,
                group,
                message: message.clone(),
                deliver_at_tick: now_tick + delay,
                order_key: rng.next_u64(),
            });
        }
    }

    /// Takes the messages due by `now_tick`, in a random order.
    pub(crate) fn take_due(&mut self, now_tick: u64) -> Vec<Envelope> {
        let (mut due, later): (Vec<Envelope>, Vec<Envelope>) = std::mem::take(&mut self.in_flight)
            .into_iter()
            .partition(|envelope| envelope.deliver_at_tick <= now_tick);
        self.in_flight = later;
        due.sort_by_key(|envelope| envelope.order_key);
        // A link cut while the message was in flight loses it too.
        due.retain(|envelope| !self.cut.contains(&(envelope.from, envelope.to)));
        self.delivered += due.len() as u64;
        due
    }

    /// `node` crashed and comes back at `restart_tick`. Each message to or from it is lost
    /// or not at random: a peer's transport may hold frames for it and send them once it
    /// reconnects, and frames it sent may already be on the wire.
    pub(crate) fn node_crashed(&mut self, rng: &mut Rng, node: NodeId, restart_tick: u64) {
        let mut kept = Vec::new();
        for mut envelope in std::mem::take(&mut self.in_flight) {
            let involved = envelope.to == node || envelope.from == node;
            if involved && rng.chance(50) {
                continue;
            }
            if envelope.to == node {
                envelope.deliver_at_tick = envelope
                    .deliver_at_tick
                    .max(restart_tick + 1 + rng.below(3));
            }
            kept.push(envelope);
        }
        self.in_flight = kept;
    }

    /// Splits the nodes in two sides that cannot talk (both directions).
    pub(crate) fn partition_symmetric(&mut self, side: &BTreeSet<NodeId>, nodes: &[NodeId]) {
        for from in nodes {
            for to in nodes {
                if side.contains(from) != side.contains(to) {
                    self.cut.insert((*from, *to));
                }
            }
        }
    }

    /// Cuts the link from `from` to `to` only.
    pub(crate) fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut.insert((from, to));
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }
}
