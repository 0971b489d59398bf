//! What the simulator checks after every step, across all members and all time
//! (DESIGN.md §9, invariant 1, and linearizable reads):
//! - at most one leader per term and group;
//! - log matching: an entry (index, term) written anywhere always has the same content and
//!   the same previous term, so equal entries mean equal logs up to them;
//! - committed entries are never lost or changed: every member applies, and every snapshot
//!   restores, a prefix of one sequence per group (compared by rolling digest), and an
//!   entry is first applied only once it is durable on a majority;
//! - a read's index covers every commit any member knew when the read was requested.

use super::machine::{fingerprint, Machine};
use quorder_daemon::raft::config::NodeId;
use quorder_daemon::raft::log::LogEntry;
use quorder_daemon::raft::read_index::ReadState;
use quorder_daemon::raft::state::Role;
use std::collections::BTreeMap;

/// Everything observed in one run.
#[derive(Debug)]
pub(crate) struct History {
    seed: u64,
    /// (group, term) → the member that led it.
    leaders: BTreeMap<(usize, u64), NodeId>,
    /// Per group: (index, term) → (fingerprint, term of the previous entry).
    written: Vec<BTreeMap<(u64, u64), (u64, u64)>>,
    /// Per group: fingerprint and digest after each committed entry, from index 1.
    committed: Vec<Vec<(u64, u64)>>,
    /// Per group: the highest commit index any member has known.
    pub(crate) commit_known: Vec<u64>,
    /// (group, context) → the commit index the read must cover.
    reads: BTreeMap<(usize, u64), u64>,
    pub(crate) reads_served: u64,
}

impl History {
    pub(crate) fn new(seed: u64, groups: usize) -> History {
        History {
            seed,
            leaders: BTreeMap::new(),
            written: vec![BTreeMap::new(); groups],
            committed: vec![Vec::new(); groups],
            commit_known: vec![0; groups],
            reads: BTreeMap::new(),
            reads_served: 0,
        }
    }

    pub(crate) fn committed_len(&self, group: usize) -> u64 {
        self.committed[group].len() as u64
    }

    pub(crate) fn terms(&self) -> usize {
        self.leaders.len()
    }

    /// A member's role and term after a step.
    pub(crate) fn observe_role(&mut self, group: usize, node: NodeId, role: Role, term: u64) {
        if role != Role::Leader {
            return;
        }
        let leader = *self.leaders.entry((group, term)).or_insert(node);
        assert_eq!(
            leader, node,
            "seed {}: group {group} has two leaders in term {term}: {leader} and {node}",
            self.seed
        );
    }

    /// A member hands `entries` to its disk, the first following an entry of `prev_term`.
    pub(crate) fn observe_written(
        &mut self,
        group: usize,
        node: NodeId,
        entries: &[LogEntry],
        prev_term: u64,
    ) {
        let mut previous_term = prev_term;
        for entry in entries {
            let seen = (fingerprint(entry), previous_term);
            let first = *self.written[group]
                .entry((entry.index, entry.term))
                .or_insert(seen);
            assert_eq!(
                first, seen,
                "seed {}: group {group}: node {node} wrote entry {}@{} unlike an earlier copy \
                 (log matching)",
                self.seed, entry.index, entry.term
            );
            previous_term = entry.term;
        }
    }

    /// A member applies `entry` on top of `machine`. `durable_on` counts the members that
    /// hold it durably (asked only for an entry applied for the first time).
    pub(crate) fn observe_applied(
        &mut self,
        group: usize,
        node: NodeId,
        machine: &Machine,
        entry: &LogEntry,
        durable_on: impl FnOnce() -> (usize, usize),
    ) {
        let seed = self.seed;
        let index = entry.index;
        self.check_machine(group, node, machine, "applies from");
        let fingerprint = fingerprint(entry);
        let committed = &mut self.committed[group];
        if index <= committed.len() as u64 {
            let (expected, _) = committed[(index - 1) as usize];
            assert_eq!(
                expected, fingerprint,
                "seed {seed}: group {group}: node {node} applied entry {index} unlike another \
                 member (a committed entry changed)"
            );
            return;
        }
        assert_eq!(
            index,
            committed.len() as u64 + 1,
            "seed {seed}: gap in committed entries"
        );
        let (holders, quorum) = durable_on();
        assert!(
            holders >= quorum,
            "seed {seed}: group {group}: entry {index} applied while durable on {holders} members"
        );
        let digest = Machine::chain(machine.digest, fingerprint);
        committed.push((fingerprint, digest));
    }

    /// A member's store is `machine` (restored or installed from a snapshot, or about to
    /// apply): it must equal the committed sequence up to its index.
    pub(crate) fn check_machine(&self, group: usize, node: NodeId, machine: &Machine, when: &str) {
        if machine.applied_index == 0 {
            assert_eq!(machine.digest, 0);
            return;
        }
        let committed = &self.committed[group];
        let at = committed.get((machine.applied_index - 1) as usize);
        assert_eq!(
            at.map(|(_, digest)| *digest),
            Some(machine.digest),
            "seed {}: group {group}: node {node} {when} a state at {} unlike the committed one",
            self.seed,
            machine.applied_index
        );
    }

    pub(crate) fn observe_commit_index(&mut self, group: usize, commit: u64) {
        self.commit_known[group] = self.commit_known[group].max(commit);
    }

    pub(crate) fn observe_read_request(&mut self, group: usize, context: u64) {
        self.reads
            .insert((group, context), self.commit_known[group]);
    }

    pub(crate) fn observe_read_state(&mut self, group: usize, node: NodeId, read: ReadState) {
        let required = self.reads.remove(&(group, read.context));
        let required = required.unwrap_or_else(|| {
            panic!(
                "seed {}: group {group}: unknown or repeated read {read:?}",
                self.seed
            )
        });
        assert!(
            read.index >= required,
            "seed {}: group {group}: node {node} confirmed read {} at index {} below the \
             commit index {required} known when it was asked (stale read)",
            self.seed,
            read.context,
            read.index
        );
        self.reads_served += 1;
    }
}
