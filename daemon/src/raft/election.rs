//! Terms and elections of a `RaftNode`: the term rules every message goes through,
//! pre-vote, votes, leader stickiness, and the change of role they cause.
//!
//! Safety rests on two facts asserted here: a member votes at most once per term (the
//! vote is durable before the answer leaves: `messages_after_persist`), and a candidate
//! becomes leader only with a majority of those votes. Pre-vote and stickiness only serve
//! liveness: a member cut off from the group cannot inflate its term and depose a healthy
//! leader when it returns.

use super::config::NodeId;
use super::message::Message;
use super::node::RaftNode;
use super::progress::Progress;
use super::state::Role;

impl RaftNode {
    /// A message of a higher term arrived. Returns whether to handle it (after moving to
    /// that term when the message demands it).
    pub(crate) fn observe_higher_term(&mut self, from: NodeId, message: &Message) -> bool {
        match message {
            // Asking is not campaigning: nobody's term moves for a pre-vote.
            Message::PreVote { .. } => !self.in_lease(),
            Message::PreVoteResponse { granted: true, .. } => true,
            Message::Vote {
                leadership_transfer: false,
                ..
            } if self.in_lease() => false,
            _ => {
                let leader = message.is_from_leader().then_some(from);
                self.become_follower(message.term(), leader);
                true
            }
        }
    }

    /// A message of a lower term arrived: tell its sender the current term where that
    /// helps it (a deposed leader steps down, a stale candidate stops).
    pub(crate) fn answer_stale(&mut self, from: NodeId, message: &Message) {
        let term = self.term;
        match message {
            Message::PreVote { .. } => self.outbox.send(
                from,
                Message::PreVoteResponse {
                    term,
                    granted: false,
                },
            ),
            Message::Vote { .. } => self.outbox.send(
                from,
                Message::VoteResponse {
                    term,
                    granted: false,
                },
            ),
            _ if message.is_from_leader() => self.outbox.send(
                from,
                Message::HeartbeatResponse {
                    term,
                    read_round: 0,
                },
            ),
            _ => {}
        }
    }

    /// Whether this member heard from a live leader within the minimum election timeout
    /// (or is that leader): it then refuses to help start an election.
    pub(crate) fn in_lease(&self) -> bool {
        (self.config.pre_vote || self.config.check_quorum)
            && self.leader.is_some()
            && self.election_elapsed_ticks < self.config.election_ticks_min
    }

    pub(crate) fn reset_election_timer(&mut self) {
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = self.random.in_range(
            self.config.election_ticks_min,
            self.config.election_ticks_max,
        );
    }

    /// Starts an election: a pre-vote first unless disabled or asked by the leader.
    pub(crate) fn campaign(&mut self, leadership_transfer: bool) {
        // The log is about to be replaced by the snapshot being installed; it must not lead.
        if self.pending_install.is_some() {
            self.reset_election_timer();
            return;
        }
        if self.config.pre_vote && !leadership_transfer {
            self.become_pre_candidate();
        } else {
            self.become_candidate(leadership_transfer);
        }
    }

    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_leader_state();
        self.reset_election_timer();
        self.votes.clear();
        let message = Message::PreVote {
            term: self.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
        };
        for peer in self.peers() {
            self.outbox.send(peer, message.clone());
        }
        self.record_vote(self.config.id, true);
    }

    fn become_candidate(&mut self, leadership_transfer: bool) {
        self.term += 1;
        self.vote = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_leader_state();
        self.reset_election_timer();
        self.votes.clear();
        let message = Message::Vote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            leadership_transfer,
        };
        // The requests carry the new term and our own vote: both durable first.
        for peer in self.peers() {
            self.outbox.send_after_persist(peer, message.clone());
        }
        self.record_vote(self.config.id, true);
    }

    /// Counts an answer to the current campaign and acts on a decided outcome.
    pub(crate) fn record_vote(&mut self, from: NodeId, granted: bool) {
        self.votes.entry(from).or_insert(granted);
        let quorum = self.config.quorum();
        let granted_count = self.votes.values().filter(|granted| **granted).count();
        let refused_count = self.votes.len() - granted_count;
        if granted_count >= quorum {
            match self.role {
                Role::PreCandidate => self.become_candidate(false),
                Role::Candidate => self.become_leader(),
                Role::Follower | Role::Leader => {}
            }
        } else if refused_count >= quorum {
            self.become_follower(self.term, None);
        }
    }

    fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader"
        );
        assert_eq!(self.vote, Some(self.config.id), "a leader voted for itself");
        let granted = self.votes.values().filter(|granted| **granted).count();
        assert!(granted >= self.config.quorum(), "leader without a majority");
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        self.heartbeat_elapsed_ticks = 0;
        self.election_elapsed_ticks = 0;
        let next_index = self.log.last_index() + 1;
        self.progress = self
            .peers()
            .into_iter()
            .map(|peer| (peer, Progress::new(next_index)))
            .collect();
        // Entries of earlier terms commit only through an entry of this term (§5.4.2).
        let noop = self.noop_entry();
        self.log.append(&[noop]);
        self.broadcast_append();
    }

    /// Follows `leader` (if known) in `term`, dropping everything a leader or candidate held.
    pub(crate) fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        assert!(
            term >= self.term,
            "term goes back from {} to {term}",
            self.term
        );
        if term > self.term {
            self.term = term;
            self.vote = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_leader_state();
        self.reset_election_timer();
    }

    fn reset_leader_state(&mut self) {
        self.progress.clear();
        self.transfer = None;
        self.reads.clear();
        self.snapshot_body = None;
        self.snapshot_needed_for.clear();
        self.broadcast_pending = false;
    }

    /// The leader of the current term spoke: follow it. Two leaders in one term would
    /// mean the election rules are broken.
    pub(crate) fn accept_leader(&mut self, from: NodeId) {
        assert_ne!(
            self.role,
            Role::Leader,
            "two leaders in term {}: {} and {from}",
            self.term,
            self.config.id
        );
        if let Some(known) = self.leader {
            assert_eq!(known, from, "two leaders in term {}", self.term);
        }
        if self.role == Role::Follower {
            self.leader = Some(from);
        } else {
            self.become_follower(self.term, Some(from));
        }
        self.election_elapsed_ticks = 0;
    }

    pub(crate) fn handle_pre_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last_index: u64,
        last_term: u64,
    ) {
        let granted =
            term > self.term && !self.in_lease() && self.log.is_up_to_date(last_index, last_term);
        let answer_term = if granted { term } else { self.term };
        let message = Message::PreVoteResponse {
            term: answer_term,
            granted,
        };
        self.outbox.send(from, message);
    }

    pub(crate) fn handle_pre_vote_response(&mut self, from: NodeId, term: u64, granted: bool) {
        // A grant echoes the asked term; a refusal of this term comes with our own.
        let current = if granted {
            term == self.term + 1
        } else {
            term == self.term
        };
        if self.role == Role::PreCandidate && current {
            self.record_vote(from, granted);
        }
    }

    pub(crate) fn handle_vote(&mut self, from: NodeId, last_index: u64, last_term: u64) {
        let free = self.vote.is_none() && self.leader.is_none();
        let granted =
            (self.vote == Some(from) || free) && self.log.is_up_to_date(last_index, last_term);
        if granted {
            self.vote = Some(from);
            self.reset_election_timer();
        }
        let message = Message::VoteResponse {
            term: self.term,
            granted,
        };
        self.outbox.send_after_persist(from, message);
    }

    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        self.accept_leader(from);
        self.campaign(true);
    }

    /// Every voter but this member.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        let me = self.config.id;
        self.config
            .voters
            .iter()
            .copied()
            .filter(|peer| *peer != me)
            .collect()
    }
}
