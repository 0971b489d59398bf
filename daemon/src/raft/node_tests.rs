//! Unit tests of `RaftNode`'s rules, one per rule, over a tiny in-memory group whose
//! disks are instant (unless held) and whose network delivers in order (unless filtered).
//! The seeded simulator in `tests/` covers faults at random; these pin each rule down.

use super::config::{NodeId, RaftConfig};
use super::error::ProposeError;
use super::log::{LogEntry, SnapshotMeta};
use super::message::Message;
use super::node::RaftNode;
use super::progress::ProgressState;
use super::read_index::ReadState;
use super::state::{Restored, Role};
use crate::entry::EntryKind;
use rkyv::util::AlignedVec;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

type Filter = Box<dyn Fn(NodeId, NodeId, &Message) -> bool>;

/// A group of nodes wired together by an in-order network.
struct Group {
    nodes: BTreeMap<NodeId, RaftNode>,
    applied: BTreeMap<NodeId, Vec<LogEntry>>,
    read_states: BTreeMap<NodeId, Vec<ReadState>>,
    network: VecDeque<(NodeId, NodeId, Message)>,
    /// Messages for which this returns true are lost.
    drop: Filter,
    /// Nodes whose disk does not complete writes (their Readys queue up).
    held: BTreeSet<NodeId>,
    /// Hold the writes of any node while it leads.
    hold_leader_writes: bool,
    held_writes: BTreeMap<NodeId, Vec<super::ready::Ready>>,
    /// The snapshot each node persisted (store state = the applied entries it covers).
    snapshots: BTreeMap<NodeId, (SnapshotMeta, Rc<AlignedVec>)>,
    truncations: BTreeMap<NodeId, Vec<u64>>,
}

fn config(id: NodeId, voters: &[NodeId]) -> RaftConfig {
    RaftConfig {
        heartbeat_ticks: 1,
        election_ticks_min: 10,
        election_ticks_max: 20,
        max_inflight_bytes: 4096,
        max_entries_per_append: 8,
        max_bytes_per_append: 1024,
        max_snapshot_chunk_bytes: 16,
        ..RaftConfig::with_defaults(id, voters.to_vec(), id * 7919)
    }
}

fn payload(byte: u8, bytes: usize) -> Rc<AlignedVec> {
    let mut payload = AlignedVec::new();
    payload.extend_from_slice(&vec![byte; bytes]);
    Rc::new(payload)
}

impl Group {
    fn new(count: u64, tweak: impl Fn(&mut RaftConfig)) -> Group {
        let voters: Vec<NodeId> = (1..=count).collect();
        let nodes = voters
            .iter()
            .map(|id| {
                let mut config = config(*id, &voters);
                tweak(&mut config);
                (*id, RaftNode::new(config, Restored::default()))
            })
            .collect();
        Group {
            nodes,
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            network: VecDeque::new(),
            drop: Box::new(|_, _, _| false),
            held: BTreeSet::new(),
            hold_leader_writes: false,
            held_writes: BTreeMap::new(),
            snapshots: BTreeMap::new(),
            truncations: BTreeMap::new(),
        }
    }

    fn node(&self, id: NodeId) -> &RaftNode {
        &self.nodes[&id]
    }

    fn node_mut(&mut self, id: NodeId) -> &mut RaftNode {
        self.nodes.get_mut(&id).expect("node exists")
    }

    fn isolate(&mut self, isolated: NodeId) {
        self.drop = Box::new(move |from, to, _| from == isolated || to == isolated);
    }

    fn heal(&mut self) {
        self.drop = Box::new(|_, _, _| false);
    }

    /// Takes every Ready of `id`, completing its writes at once unless its disk is held.
    fn process(&mut self, id: NodeId) {
        while self.node(id).has_ready() {
            let ready = self.node_mut(id).ready();
            for (to, message) in ready.messages.iter().cloned() {
                self.network.push_back((id, to, message));
            }
            if self.hold_leader_writes && self.node(id).role() == Role::Leader {
                self.held.insert(id);
            }
            if self.held.contains(&id) {
                self.held_writes.entry(id).or_default().push(ready);
            } else {
                self.complete_write(id, ready);
            }
        }
    }

    fn complete_write(&mut self, id: NodeId, ready: super::ready::Ready) {
        if let Some(from) = ready.truncate_from {
            self.truncations.entry(id).or_default().push(from);
        }
        for (to, message) in ready.messages_after_persist.iter().cloned() {
            self.network.push_back((id, to, message));
        }
        if let Some(last) = ready.last_entry() {
            self.node_mut(id).persisted(last.index, last.term);
        }
        if let Some((meta, body)) = ready.snapshot_to_install {
            // The snapshot body of these tests is the applied entries' count.
            let applied = self.applied.entry(id).or_default();
            applied.truncate(0);
            self.snapshots.insert(id, (meta, Rc::new(body)));
            self.node_mut(id).snapshot_installed(meta);
        }
        for entry in ready.committed {
            self.applied.entry(id).or_default().push(entry.clone());
            self.node_mut(id).applied(entry.index);
        }
        self.read_states
            .entry(id)
            .or_default()
            .extend(ready.read_states);
        if !ready.snapshot_needed_for.is_empty() {
            let (meta, body) = self.snapshots[&id].clone();
            self.node_mut(id).snapshot_body(meta, body);
        }
    }

    fn release_disk(&mut self, id: NodeId) {
        self.held.remove(&id);
        for ready in self.held_writes.remove(&id).unwrap_or_default() {
            self.complete_write(id, ready);
        }
        self.process(id);
    }

    /// Delivers messages until the network is quiet.
    fn deliver_all(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.process(*id);
        }
        let mut delivered = 0;
        while let Some((from, to, message)) = self.network.pop_front() {
            delivered += 1;
            assert!(delivered < 100_000, "the group never goes quiet");
            if (self.drop)(from, to, &message) {
                continue;
            }
            self.node_mut(to).step(from, message);
            self.process(to);
            self.process(from);
        }
    }

    fn tick_all(&mut self, ticks: u64) {
        for _ in 0..ticks {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                self.node_mut(id).tick();
            }
            self.deliver_all();
        }
    }

    /// Ticks `id` alone until it campaigns, then lets the election run.
    fn campaign(&mut self, id: NodeId) {
        for _ in 0..100 {
            self.node_mut(id).tick();
            if self.node(id).role() != Role::Follower {
                break;
            }
        }
        self.deliver_all();
    }

    /// Lets time pass until one of `candidates` leads; returns it.
    fn elect_among(&mut self, candidates: &[NodeId]) -> NodeId {
        for _ in 0..200 {
            self.tick_all(1);
            let leader = candidates
                .iter()
                .find(|id| self.node(**id).role() == Role::Leader);
            if let Some(leader) = leader {
                return *leader;
            }
        }
        panic!("none of {candidates:?} was elected");
    }

    fn elect(&mut self, id: NodeId) {
        self.campaign(id);
        assert_eq!(
            self.node(id).role(),
            Role::Leader,
            "node {id} was not elected"
        );
    }

    fn propose(&mut self, id: NodeId, byte: u8) -> super::EntryId {
        let entry = self.node_mut(id).propose(1, 5, payload(byte, 8));
        entry.expect("leader accepts proposals")
    }

    fn applied_bytes(&self, id: NodeId) -> Vec<u8> {
        let applied = self.applied.get(&id).map(Vec::as_slice).unwrap_or_default();
        applied
            .iter()
            .filter(|entry| entry.kind != EntryKind::Noop as u8)
            .map(|entry| entry.payload[0])
            .collect()
    }
}

#[test]
fn a_single_voter_leads_at_once_and_commits_what_is_durable() {
    let mut group = Group::new(1, |_| {});
    assert_eq!(group.node(1).role(), Role::Leader);
    let id = group.propose(1, 7);
    assert_eq!((id.term, id.index), (1, 2), "after the new term's no-op");
    let ready = group.node_mut(1).ready();
    assert_eq!(ready.hard_state.map(|state| state.term), Some(1));
    assert_eq!(ready.entries.len(), 2);
    assert!(
        ready.committed.is_empty(),
        "nothing is committed before it is durable"
    );
    group.node_mut(1).persisted(2, 1);
    let ready = group.node_mut(1).ready();
    assert_eq!(ready.committed.len(), 2);
    assert_eq!(group.node(1).commit_index(), 2);
}

#[test]
fn three_members_elect_one_leader_and_apply_the_same_entries() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    for byte in 1..=20 {
        group.propose(1, byte);
    }
    group.deliver_all();
    group.tick_all(2);
    let expected: Vec<u8> = (1..=20).collect();
    for id in 1..=3 {
        assert_eq!(group.applied_bytes(id), expected, "node {id}");
        assert_eq!(group.node(id).leader(), Some(1));
        assert_eq!(group.node(id).term(), 1);
    }
    let followers: Vec<u64> = group
        .node(1)
        .progress()
        .map(|(_, p)| p.match_index())
        .collect();
    assert_eq!(followers, vec![21, 21]);
}

#[test]
fn followers_refuse_to_propose_and_name_the_leader() {
    let mut group = Group::new(3, |_| {});
    group.elect(2);
    let refused = group.node_mut(3).propose(1, 0, payload(1, 1));
    assert_eq!(refused, Err(ProposeError::NotLeader { leader: Some(2) }));
    let too_large = group.node_mut(2).propose(
        1,
        0,
        payload(1, crate::limits::RAFT_ENTRY_PAYLOAD_BYTES_MAX + 1),
    );
    assert!(matches!(
        too_large,
        Err(ProposeError::PayloadTooLarge { .. })
    ));
}

#[test]
fn pre_vote_keeps_a_partitioned_member_from_inflating_its_term() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.isolate(3);
    group.tick_all(200);
    assert_eq!(
        group.node(3).term(),
        1,
        "pre-votes that cannot win never bump the term"
    );
    group.heal();
    group.tick_all(5);
    assert_eq!(
        (group.node(1).role(), group.node(1).term()),
        (Role::Leader, 1)
    );
    assert_eq!(group.node(3).leader(), Some(1));
}

#[test]
fn without_pre_vote_a_returning_member_disrupts_the_leader() {
    let mut group = Group::new(3, |config| {
        config.pre_vote = false;
        config.check_quorum = false;
    });
    group.elect(1);
    group.isolate(3);
    group.tick_all(200);
    assert!(
        group.node(3).term() > 5,
        "a lone candidate keeps bumping its term"
    );
    group.heal();
    group.tick_all(40);
    assert!(
        group.node(1).term() > 1,
        "the leader was deposed by the higher term"
    );
}

#[test]
fn members_that_hear_the_leader_refuse_pre_votes() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    // Node 3 loses the leader only (asymmetric): node 2 still hears it and refuses.
    group.drop = Box::new(|from, to, _| from == 1 && to == 3);
    group.tick_all(100);
    assert_eq!(
        (group.node(1).role(), group.node(1).term()),
        (Role::Leader, 1)
    );
    assert_eq!(group.node(2).term(), 1);
}

#[test]
fn a_leader_cut_off_from_the_majority_steps_down() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.isolate(1);
    group.tick_all(25);
    assert_ne!(group.node(1).role(), Role::Leader, "check-quorum");
    let elected: Vec<NodeId> = [2, 3]
        .into_iter()
        .filter(|id| group.node(*id).role() == Role::Leader)
        .collect();
    assert_eq!(elected.len(), 1, "the majority elected a new leader");
}

#[test]
fn a_new_leader_overwrites_uncommitted_conflicting_entries() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.propose(1, 1);
    group.deliver_all();
    group.tick_all(1);
    // Node 1 appends entries nobody else gets, then loses leadership.
    group.isolate(1);
    for byte in 10..15 {
        group.propose(1, byte);
    }
    group.deliver_all();
    let old_last = group.node(1).last_index();
    let leader = group.elect_among(&[2, 3]);
    group.propose(leader, 20);
    group.deliver_all();
    group.heal();
    group.tick_all(30);
    assert_eq!(group.node(1).leader(), Some(leader));
    assert!(group
        .truncations
        .get(&1)
        .is_some_and(|from| from.iter().all(|at| *at <= old_last)));
    for id in 1..=3 {
        assert_eq!(group.applied_bytes(id), vec![1, 20], "node {id}");
        assert_eq!(group.node(id).last_index(), group.node(leader).last_index());
    }
}

#[test]
fn an_earlier_term_entry_on_a_majority_commits_only_with_the_new_term() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.tick_all(1);
    // Entry X reaches every log, but no acknowledgement reaches node 1: it stays uncommitted.
    group.drop =
        Box::new(|_, to, message| to == 1 && matches!(message, Message::AppendResponse { .. }));
    let x = group.propose(1, 9);
    group.deliver_all();
    assert!(group.node(2).last_index() >= x.index && group.node(3).last_index() >= x.index);
    assert!(group.node(1).commit_index() < x.index);
    group.isolate(1);
    group.hold_leader_writes = true;
    let leader = group.elect_among(&[2, 3]);
    let follower = 5 - leader;
    // The follower holds the new leader's no-op durably; the leader has not written it
    // yet. X (term 1) is on a majority, the no-op (term 2) is not: nothing may commit.
    let follower_match = group
        .node(leader)
        .progress()
        .find(|(id, _)| *id == follower);
    assert!(follower_match.is_some_and(|(_, progress)| progress.match_index() > x.index));
    assert!(
        group.node(leader).commit_index() < x.index,
        "an old-term entry committed by count"
    );
    group.hold_leader_writes = false;
    group.release_disk(leader);
    group.deliver_all();
    assert!(group.node(leader).commit_index() > x.index);
}

#[test]
fn a_read_is_confirmed_by_a_majority_and_sees_every_earlier_commit() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.propose(1, 1);
    group.deliver_all();
    let commit = group.node(1).commit_index();
    group.node_mut(1).read_index(42).expect("leader reads");
    assert!(
        group.read_states.get(&1).is_none_or(Vec::is_empty),
        "not before a heartbeat round"
    );
    group.deliver_all();
    assert_eq!(
        group.read_states[&1],
        vec![ReadState {
            context: 42,
            index: commit
        }]
    );
    let refused = group.node_mut(2).read_index(1);
    assert_eq!(refused, Err(ProposeError::NotLeader { leader: Some(1) }));
}

#[test]
fn a_leader_cut_off_from_the_majority_confirms_no_read() {
    let mut group = Group::new(3, |config| config.check_quorum = false);
    group.elect(1);
    group.isolate(1);
    group
        .node_mut(1)
        .read_index(7)
        .expect("still believes it leads");
    group.tick_all(5);
    assert!(group.read_states.get(&1).is_none_or(Vec::is_empty));
}

#[test]
fn a_new_leader_serves_reads_only_after_committing_in_its_term() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.propose(1, 1);
    group.deliver_all();
    // Node 1 is gone; the new leader's no-op is not committed while its appends go
    // unanswered.
    group.drop = Box::new(|from, to, message| {
        from == 1 || to == 1 || matches!(message, Message::AppendResponse { .. })
    });
    let leader = group.elect_among(&[2, 3]);
    group.node_mut(leader).read_index(5).expect("leader reads");
    group.tick_all(3);
    let served = group
        .read_states
        .get(&leader)
        .is_some_and(|reads| !reads.is_empty());
    assert!(!served, "commit index not yet known");
    group.isolate(1);
    group.tick_all(2);
    let reads = &group.read_states[&leader];
    assert_eq!(reads.len(), 1);
    assert_eq!(
        group.node(leader).term_of(reads[0].index),
        Some(group.node(leader).term())
    );
}

#[test]
fn leadership_moves_to_the_named_member_after_it_catches_up() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    // Node 3 lags behind, then the transfer starts.
    group.drop = Box::new(|_, to, _| to == 3);
    for byte in 1..=5 {
        group.propose(1, byte);
    }
    group.deliver_all();
    group.heal();
    group
        .node_mut(1)
        .transfer_leadership(3)
        .expect("leader transfers");
    let refused = group.node_mut(1).propose(1, 0, payload(1, 1));
    assert_eq!(refused, Err(ProposeError::Transferring { to: 3 }));
    group.deliver_all();
    group.tick_all(3);
    assert_eq!(group.node(3).role(), Role::Leader);
    assert_eq!(group.node(1).leader(), Some(3));
    assert_eq!(group.applied_bytes(3), vec![1, 2, 3, 4, 5]);
}

#[test]
fn a_transfer_that_cannot_finish_is_abandoned() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.drop = Box::new(|from, to, _| (from == 3) != (to == 3));
    group
        .node_mut(1)
        .transfer_leadership(3)
        .expect("leader transfers");
    group.tick_all(12);
    assert_eq!(group.node(1).transferring_to(), None);
    assert_eq!(group.node(1).role(), Role::Leader);
    assert!(group.node_mut(1).propose(1, 0, payload(1, 1)).is_ok());
}

#[test]
fn a_follower_behind_the_compacted_log_receives_a_snapshot_in_chunks() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.isolate(3);
    for byte in 1..=30 {
        group.propose(1, byte);
    }
    group.deliver_all();
    group.tick_all(1);
    let applied = group.node(1).applied_index();
    let meta = SnapshotMeta {
        index: applied,
        term: group
            .node(1)
            .term_of(applied)
            .expect("applied entry in memory"),
    };
    group.snapshots.insert(1, (meta, payload(0xab, 100)));
    group.node_mut(1).compact(meta);
    assert_eq!(group.node(1).first_index(), applied + 1);
    group.heal();
    group.tick_all(30);
    let installed = group
        .snapshots
        .get(&3)
        .map(|(meta, body)| (*meta, body.len()));
    assert_eq!(installed, Some((meta, 100)), "100 bytes in chunks of 16");
    group.propose(1, 99);
    group.tick_all(3);
    assert_eq!(group.node(3).applied_index(), group.node(1).applied_index());
    assert_eq!(
        group.applied_bytes(3),
        vec![99],
        "entries after the snapshot are applied"
    );
    let state = group
        .node(1)
        .progress()
        .find(|(id, _)| *id == 3)
        .map(|(_, p)| p.state());
    assert_eq!(state, Some(ProgressState::Replicate));
}

#[test]
fn inflight_bytes_to_a_silent_follower_stay_bounded() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    group.tick_all(1);
    group.drop = Box::new(|from, to, _| from == 3 || to == 3);
    let mut sent_to_3 = 0;
    for round in 0..50 {
        for _ in 0..10 {
            group
                .node_mut(1)
                .propose(1, 0, payload(round, 200))
                .expect("leader");
        }
        let ready = group.node_mut(1).ready();
        for (to, message) in &ready.messages {
            if let (3, Message::Append { entries, .. }) = (to, message) {
                sent_to_3 += entries.iter().map(LogEntry::size_bytes).sum::<usize>();
            }
            group.network.push_back((1, *to, message.clone()));
        }
        group.complete_write(1, ready);
        group.deliver_all();
    }
    let config = group.node(1).config().clone();
    let bound = config.max_inflight_bytes + config.max_bytes_per_append;
    assert!(
        sent_to_3 <= bound,
        "{sent_to_3} bytes sent to a silent follower (bound {bound})"
    );
    let inflight = group
        .node(1)
        .progress()
        .find(|(id, _)| *id == 3)
        .map(|(_, p)| p.inflight_bytes());
    assert!(inflight.is_some_and(|bytes| bytes > 0 && bytes <= bound));
    assert_eq!(
        group.node(2).last_index(),
        group.node(1).last_index(),
        "others are not held back"
    );
}

#[test]
fn duplicated_and_reordered_appends_change_nothing() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    let mut appends = Vec::new();
    for byte in 1..=4 {
        group.propose(1, byte);
        let ready = group.node_mut(1).ready();
        appends.extend(ready.messages.iter().filter(|(to, _)| *to == 2).cloned());
        group.complete_write(1, ready);
    }
    group.network.retain(|(_, to, _)| *to != 2);
    // Deliver newest first, then everything again.
    for (_, message) in appends.iter().rev().chain(appends.iter()) {
        group.node_mut(2).step(1, message.clone());
        group.process(2);
    }
    group.deliver_all();
    group.tick_all(3);
    assert_eq!(group.applied_bytes(2), vec![1, 2, 3, 4]);
    assert_eq!(group.node(2).last_index(), group.node(1).last_index());
}

#[test]
fn votes_wait_for_the_disk_and_are_given_once_per_term() {
    let mut group = Group::new(3, |_| {});
    group.held.insert(2);
    let vote = Message::Vote {
        term: 1,
        last_index: 0,
        last_term: 0,
        leadership_transfer: false,
    };
    group.node_mut(2).step(1, vote.clone());
    let ready = group.node_mut(2).ready();
    assert!(
        ready.messages.is_empty(),
        "a vote never leaves before it is durable"
    );
    assert_eq!(ready.hard_state.map(|state| state.vote), Some(Some(1)));
    assert!(matches!(
        ready.messages_after_persist[..],
        [(1, Message::VoteResponse { granted: true, .. })]
    ));
    group.node_mut(2).step(3, vote);
    let ready = group.node_mut(2).ready();
    assert!(matches!(
        ready.messages_after_persist[..],
        [(3, Message::VoteResponse { granted: false, .. })]
    ));
}

#[test]
fn a_restarted_member_resumes_from_its_durable_state() {
    let mut group = Group::new(3, |_| {});
    group.elect(1);
    for byte in 1..=3 {
        group.propose(1, byte);
    }
    group.deliver_all();
    group.tick_all(1);
    let node = group.node(2);
    let restored = Restored {
        hard_state: node.hard_state(),
        snapshot: SnapshotMeta::default(),
        entries: node.entries(1, node.last_index() + 1),
        applied: 0,
    };
    let restarted = RaftNode::new(node.config().clone(), restored);
    assert_eq!((restarted.term(), restarted.last_index()), (1, 4));
    assert_eq!(
        restarted.commit_index(),
        0,
        "commit is learned again from the leader"
    );
    group.nodes.insert(2, restarted);
    group.applied.remove(&2);
    group.tick_all(3);
    assert_eq!(group.applied_bytes(2), vec![1, 2, 3]);
}

#[test]
fn a_follower_commits_only_entries_that_match_the_leader() {
    // Entries 1 and 2 match the leader; 3 and 4 are a stale tail of term 1 the leader
    // (term 2) does not have. An append covering 1..=2 with the leader's commit at 4 must
    // not commit the stale tail.
    let entry = |term, index| LogEntry {
        term,
        index,
        kind: 1,
        timestamp_ms: 0,
        payload: payload(index as u8, 1),
    };
    let restored = Restored {
        hard_state: super::state::HardState {
            term: 2,
            vote: None,
        },
        entries: vec![entry(1, 1), entry(1, 2), entry(1, 3), entry(1, 4)],
        ..Restored::default()
    };
    let mut follower = RaftNode::new(config(2, &[1, 2, 3]), restored);
    let append = Message::Append {
        term: 2,
        prev_index: 0,
        prev_term: 0,
        entries: vec![entry(1, 1), entry(1, 2)],
        commit: 4,
    };
    follower.step(1, append);
    assert_eq!(follower.commit_index(), 2);
    assert_eq!(
        follower.last_index(),
        4,
        "the tail stays until an entry conflicts with it"
    );
}

#[test]
fn append_acknowledgements_wait_for_the_disk_but_rejections_do_not() {
    let mut follower = RaftNode::new(config(2, &[1, 2, 3]), Restored::default());
    let append = |prev_index, entries: Vec<LogEntry>| Message::Append {
        term: 1,
        prev_index,
        prev_term: if prev_index == 0 { 0 } else { 1 },
        entries,
        commit: 0,
    };
    let entry = LogEntry {
        term: 1,
        index: 1,
        kind: 1,
        timestamp_ms: 0,
        payload: payload(1, 1),
    };
    follower.step(1, append(0, vec![entry]));
    let ready = follower.ready();
    assert!(ready.messages.is_empty());
    assert!(matches!(
        ready.messages_after_persist[..],
        [(1, Message::AppendResponse { .. })]
    ));
    follower.step(1, append(5, Vec::new()));
    let ready = follower.ready();
    assert!(matches!(
        ready.messages[..],
        [(1, Message::AppendResponse { .. })]
    ));
    assert!(ready.messages_after_persist.is_empty());
}

#[test]
fn a_new_leader_accepts_a_snapshot_installed_under_its_predecessor() {
    // Node 2 restarts with entries it does not know are committed, and wins term 2. Node 3
    // then reports a snapshot at 3 installed (sent by the old leader, finished after the
    // election): node 2 takes it as node 3's match though its own commit index is lower.
    let entries = (1..=5)
        .map(|index| LogEntry {
            term: 1,
            index,
            kind: 1,
            timestamp_ms: 0,
            payload: payload(index as u8, 1),
        })
        .collect();
    let restored = Restored {
        hard_state: super::state::HardState {
            term: 1,
            vote: None,
        },
        entries,
        ..Restored::default()
    };
    let mut node = RaftNode::new(config(2, &[1, 2, 3]), restored);
    while node.role() == Role::Follower {
        node.tick();
    }
    node.step(
        3,
        Message::PreVoteResponse {
            term: 2,
            granted: true,
        },
    );
    node.step(
        3,
        Message::VoteResponse {
            term: 2,
            granted: true,
        },
    );
    assert_eq!(
        (node.role(), node.term(), node.commit_index()),
        (Role::Leader, 2, 0)
    );
    let installed = Message::InstallSnapshotResponse {
        term: 2,
        snapshot_index: 3,
        outcome: super::message::SnapshotOutcome::Installed,
    };
    node.step(3, installed);
    let progress = node
        .progress()
        .find(|(id, _)| *id == 3)
        .map(|(_, p)| p.match_index());
    assert_eq!(progress, Some(3));
}
