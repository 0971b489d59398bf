//! What "converged" means once faults heal, and the final agreement check.

use super::RaftSim;
use quorder_daemon::raft::state::Role;

impl RaftSim {
    /// One leader that everyone follows, having committed in its term, and every member's
    /// log, durable state and store equal to the leader's.
    pub(super) fn converged(&self, group: usize) -> bool {
        let members: Vec<_> = self.nodes.iter().map(|node| &node.members[group]).collect();
        let Some(rafts) = members
            .iter()
            .map(|member| member.raft.as_ref())
            .collect::<Option<Vec<_>>>()
        else {
            return false;
        };
        let leaders: Vec<_> = rafts
            .iter()
            .filter(|raft| raft.role() == Role::Leader)
            .collect();
        let [leader] = leaders[..] else {
            return false;
        };
        let last_index = leader.last_index();
        let settled = leader.term_of(leader.commit_index()) == Some(leader.term())
            && leader.commit_index() == last_index;
        settled
            && rafts.iter().all(|raft| {
                raft.term() == leader.term()
                    && raft.leader() == Some(leader.id())
                    && raft.last_index() == last_index
                    && raft.term_of(last_index) == leader.term_of(last_index)
                    && raft.commit_index() == last_index
                    && raft.applied_index() == last_index
            })
            && members.iter().all(|member| {
                member.disk.queue.is_empty() && member.machine.applied_index == last_index
            })
    }

    /// After convergence: every store holds the committed sequence in full.
    pub(super) fn check_converged(&self) {
        for group in 0..self.options.groups {
            let committed = self.history.committed_len(group);
            for node in &self.nodes {
                let machine = &node.members[group].machine;
                assert_eq!(
                    machine.applied_index, committed,
                    "seed {}: group {group}: node {} applied {} of {committed} committed entries",
                    self.seed, node.id, machine.applied_index
                );
                self.history
                    .check_machine(group, node.id, machine, "ends with");
            }
        }
    }

    /// The state of every member, for a liveness failure.
    pub(super) fn describe(&self) -> String {
        let mut lines = Vec::new();
        for group in 0..self.options.groups {
            for node in &self.nodes {
                let member = &node.members[group];
                let Some(raft) = member.raft.as_ref() else {
                    lines.push(format!("g{group} n{}: down", node.id));
                    continue;
                };
                lines.push(format!(
                    "g{group} n{}: {:?} term {} leader {:?} last {} commit {} applied {} \
                     snapshot {} queued writes {} progress {:?}",
                    node.id,
                    raft.role(),
                    raft.term(),
                    raft.leader(),
                    raft.last_index(),
                    raft.commit_index(),
                    raft.applied_index(),
                    raft.snapshot_meta().index,
                    member.disk.queue.len(),
                    raft.progress()
                        .map(|(id, progress)| (id, progress.state(), progress.match_index()))
                        .collect::<Vec<_>>(),
                ));
            }
        }
        format!("{:?}\n{}", self.options, lines.join("\n"))
    }
}
