//! Messages a group queued for its shell between two `ready()` calls, bounded.
//!
//! Past `RAFT_OUTBOX_MESSAGES_MAX` messages are dropped and counted: Raft already treats
//! any message as possibly lost (timeouts resend), so a shell that falls behind slows the
//! group down instead of growing a queue.

use super::config::NodeId;
use super::message::Message;
use crate::limits::RAFT_OUTBOX_MESSAGES_MAX;

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub(crate) now: Vec<(NodeId, Message)>,
    pub(crate) after_persist: Vec<(NodeId, Message)>,
    pub(crate) dropped: u64,
}

impl Outbox {
    fn has_room(&mut self) -> bool {
        let room = self.now.len() + self.after_persist.len() < RAFT_OUTBOX_MESSAGES_MAX;
        if !room {
            self.dropped += 1;
        }
        room
    }

    /// Queues a message that depends on nothing unwritten.
    pub(crate) fn send(&mut self, to: NodeId, message: Message) {
        if self.has_room() {
            self.now.push((to, message));
        }
    }

    /// Queues a message that may leave only once the current state is durable.
    pub(crate) fn send_after_persist(&mut self, to: NodeId, message: Message) {
        if self.has_room() {
            self.after_persist.push((to, message));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.now.is_empty() && self.after_persist.is_empty()
    }
}
