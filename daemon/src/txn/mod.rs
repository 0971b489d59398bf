//! Two-phase commit between shards (DESIGN.md §4 step 4): the coordinator's driver.
//!
//! The durable part of a transaction lives in the store (the order's phase, each
//! participant's state) and changes only by applying log entries. This module is the
//! leader's volatile part: the votes and acknowledgements heard so far, what to propose
//! next (a decision once every vote is in, `Complete` once every participant has acted),
//! and what to send again when an answer is overdue. It is rebuilt from the store after a
//! restart or a change of leader, which is why losing it loses nothing.

// rkyv's archived twins carry no docs of their own; the originals do.
#[allow(missing_docs)]
pub mod message;

use crate::entry::{Command, Decision};
use crate::store::{Store, TxnPhase};
use message::{ParticipantReply, ParticipantRequest, ParticipantState};
use std::collections::BTreeMap;

/// What the coordinator has heard about one open transaction in its current phase.
#[derive(Debug)]
struct Progress {
    phase: TxnPhase,
    answers: BTreeMap<u32, ParticipantState>,
    last_sent_ms: u64,
    proposed_ms: Option<u64>,
}

/// Volatile coordinator state of one shard's leader. Lives on the shard's core.
#[derive(Debug, Default)]
pub struct Coordinator {
    progress: BTreeMap<u128, Progress>,
    resend_interval_ms: u64,
}

impl Coordinator {
    /// A driver that re-sends unanswered requests every `resend_interval_ms`.
    pub fn new(resend_interval_ms: u64) -> Coordinator {
        assert!(resend_interval_ms > 0);
        Coordinator {
            progress: BTreeMap::new(),
            resend_interval_ms,
        }
    }

    /// Notes that requests for `order_id` in its current phase were just sent.
    pub fn sent(&mut self, store: &Store, order_id: u128, now_ms: u64) {
        if let Some(progress) = self.progress_for(store, order_id) {
            progress.last_sent_ms = now_ms;
        }
    }

    /// Takes a participant's answer; returns the command to propose, if one is due.
    pub fn on_reply(
        &mut self,
        store: &Store,
        reply: ParticipantReply,
        now_ms: u64,
    ) -> Option<Command> {
        let order_id = reply.order_id;
        let participants = store
            .order_record(order_id)?
            .txn
            .as_ref()?
            .participants
            .clone();
        if !participants.contains(&reply.participant) {
            tracing::warn!(
                order_id,
                participant = reply.participant,
                "answer from a non-participant"
            );
            return None;
        }
        let interval = self.resend_interval_ms;
        let progress = self.progress_for(store, order_id)?;
        if !answers_phase(progress.phase, &reply.state) {
            // A late answer to an earlier phase's request; the re-send will ask again.
            return None;
        }
        progress.answers.insert(reply.participant, reply.state);
        if let Some(proposed_ms) = progress.proposed_ms {
            // Already proposed; let the resend timer retry if it was lost.
            if now_ms.saturating_sub(proposed_ms) < interval {
                return None;
            }
        }
        let command = next_command(order_id, progress, &participants)?;
        progress.proposed_ms = Some(now_ms);
        Some(command)
    }

    /// Requests to send again because their answers are overdue, and commands whose
    /// proposal seems lost. Called on the shard's tick.
    pub fn tick(&mut self, store: &Store, now_ms: u64) -> (Vec<ParticipantRequest>, Vec<Command>) {
        let mut requests = Vec::new();
        let mut commands = Vec::new();
        let open: Vec<u128> = store
            .open_transactions()
            .map(|record| record.order.order_id)
            .collect();
        self.progress
            .retain(|order_id, _| open.binary_search(order_id).is_ok());
        for order_id in open {
            let interval = self.resend_interval_ms;
            let Some(progress) = self.progress_for(store, order_id) else {
                continue;
            };
            if now_ms.saturating_sub(progress.last_sent_ms) < interval {
                continue;
            }
            progress.last_sent_ms = now_ms;
            if progress
                .proposed_ms
                .is_some_and(|at| now_ms.saturating_sub(at) >= interval)
            {
                progress.proposed_ms = None;
            }
            let answered: Vec<u32> = progress.answers.keys().copied().collect();
            let Some(record) = store.order_record(order_id) else {
                continue;
            };
            for effect in store.requests_for(record) {
                if let crate::store::Effect::ToParticipant(request) = effect {
                    if !answered.contains(&request.participant) {
                        requests.push(request);
                    }
                }
            }
            let participants = record.txn.as_ref().map(|txn| txn.participants.clone());
            let progress = self.progress.get_mut(&order_id);
            if let (Some(progress), Some(participants)) = (progress, participants) {
                if progress.proposed_ms.is_none() {
                    if let Some(command) = next_command(order_id, progress, &participants) {
                        progress.proposed_ms = Some(now_ms);
                        commands.push(command);
                    }
                }
            }
        }
        (requests, commands)
    }

    /// Forgets everything (on losing leadership); `tick` rebuilds from the store.
    pub fn clear(&mut self) {
        self.progress.clear();
    }

    fn progress_for(&mut self, store: &Store, order_id: u128) -> Option<&mut Progress> {
        let phase = store.order_record(order_id)?.txn.as_ref()?.phase;
        if phase == TxnPhase::Complete {
            self.progress.remove(&order_id);
            return None;
        }
        let progress = self.progress.entry(order_id).or_insert_with(|| Progress {
            phase,
            answers: BTreeMap::new(),
            last_sent_ms: 0,
            proposed_ms: None,
        });
        if progress.phase != phase {
            *progress = Progress {
                phase,
                answers: BTreeMap::new(),
                last_sent_ms: 0,
                proposed_ms: None,
            };
        }
        Some(progress)
    }
}

/// True if `state` is an answer to the request of `phase` (and not a late answer to an
/// earlier phase's request).
fn answers_phase(phase: TxnPhase, state: &ParticipantState) -> bool {
    match phase {
        TxnPhase::Preparing => {
            matches!(
                state,
                ParticipantState::Prepared { .. } | ParticipantState::Refused { .. }
            )
        }
        TxnPhase::Committing => {
            matches!(
                state,
                ParticipantState::Committed | ParticipantState::Released
            )
        }
        TxnPhase::Aborting => matches!(state, ParticipantState::Aborted),
        TxnPhase::Releasing => matches!(state, ParticipantState::Released),
        TxnPhase::Complete => false,
    }
}

/// The command the answers so far call for, if any.
fn next_command(order_id: u128, progress: &Progress, participants: &[u32]) -> Option<Command> {
    let all = |wanted: fn(&ParticipantState) -> bool| {
        participants
            .iter()
            .all(|participant| progress.answers.get(participant).is_some_and(wanted))
    };
    match progress.phase {
        TxnPhase::Preparing => {
            let refusal = progress.answers.values().find_map(|state| match state {
                ParticipantState::Refused { reason } => Some(reason.clone()),
                _ => None,
            });
            if let Some(reason) = refusal {
                return Some(Command::Decide {
                    order_id,
                    decision: Decision::Abort { reason },
                });
            }
            if !all(|state| matches!(state, ParticipantState::Prepared { .. })) {
                return None;
            }
            let prices = participants
                .iter()
                .filter_map(|participant| match progress.answers.get(participant) {
                    Some(ParticipantState::Prepared { prices }) => Some(prices.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            Some(Command::Decide {
                order_id,
                decision: Decision::Commit { prices },
            })
        }
        TxnPhase::Committing => all(|state| {
            matches!(
                state,
                ParticipantState::Committed | ParticipantState::Released
            )
        })
        .then_some(Command::Complete {
            order_id,
            phase: progress.phase,
        }),
        TxnPhase::Aborting => {
            all(|state| matches!(state, ParticipantState::Aborted)).then_some(Command::Complete {
                order_id,
                phase: progress.phase,
            })
        }
        TxnPhase::Releasing => {
            all(|state| matches!(state, ParticipantState::Released)).then_some(Command::Complete {
                order_id,
                phase: progress.phase,
            })
        }
        TxnPhase::Complete => None,
    }
}
