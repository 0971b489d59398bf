//! The participant side of two-phase commit: lines of orders coordinated by other shards.

use super::{Applied, Bucket, Effect, Store};
use crate::txn::message::{
    LinePrice, ParticipantAction, ParticipantReply, ParticipantRequest, ParticipantState,
};
use quorder_proto::OrderLine;
use rkyv::{Archive, Deserialize, Serialize};

/// This shard's part of an order coordinated elsewhere.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Participation {
    /// Coordinating shard.
    pub coordinator: u32,
    /// The lines held here (empty when fenced by an abort before any prepare).
    pub lines: Vec<OrderLine>,
    /// Durable state.
    pub state: ParticipantState,
}

impl Store {
    /// The reply to `request` if the state already reflects it, so that a duplicate
    /// request is answered without another log entry.
    pub fn answer_from_state(&self, request: &ParticipantRequest) -> Option<ParticipantReply> {
        let participation = self.records.participation(request.order_id)?;
        let done = matches!(
            (&request.action, &participation.state),
            (ParticipantAction::Prepare { .. }, _)
                | (
                    ParticipantAction::Commit,
                    ParticipantState::Committed | ParticipantState::Released
                )
                | (ParticipantAction::Abort, ParticipantState::Aborted)
                | (ParticipantAction::Release, ParticipantState::Released)
        );
        done.then(|| self.reply_for(request.order_id, participation))
    }

    fn reply_for(&self, order_id: u128, participation: &Participation) -> ParticipantReply {
        ParticipantReply {
            order_id,
            participant: self.shard,
            state: participation.state.clone(),
        }
    }

    pub(super) fn apply_participant_request(&mut self, request: &ParticipantRequest) -> Applied {
        assert_eq!(
            request.participant, self.shard,
            "participant request reached the wrong shard"
        );
        let order_id = request.order_id;
        // Taken out to change it with the store at hand, and put back below.
        let next = match self.records.take_participation(order_id) {
            None => self.first_action(request),
            Some(participation) => self.next_action(participation, &request.action),
        };
        let reply = self.reply_for(order_id, &next);
        self.records.insert_participation(order_id, next);
        Applied {
            reply: None,
            effects: vec![Effect::ToCoordinator {
                coordinator: request.coordinator,
                reply,
            }],
        }
    }

    fn first_action(&mut self, request: &ParticipantRequest) -> Participation {
        let coordinator = request.coordinator;
        match &request.action {
            ParticipantAction::Prepare { lines } => {
                let state = match self.check_lines(lines) {
                    Err(reason) => ParticipantState::Refused { reason },
                    Ok(()) => {
                        let prices = lines.iter().map(|line| self.reserve(line)).collect();
                        ParticipantState::Prepared { prices }
                    }
                };
                Participation {
                    coordinator,
                    lines: lines.clone(),
                    state,
                }
            }
            // An abort before the prepare arrived fences that prepare.
            ParticipantAction::Abort => Participation {
                coordinator,
                lines: Vec::new(),
                state: ParticipantState::Aborted,
            },
            ParticipantAction::Commit | ParticipantAction::Release => {
                panic!(
                    "order {order_id:#x}: {:?} without a prepare",
                    request.action,
                    order_id = request.order_id
                )
            }
        }
    }

    fn reserve(&mut self, line: &OrderLine) -> LinePrice {
        let item = self.move_stock(line.sku, Bucket::Available, Bucket::Reserved, line.quantity);
        LinePrice {
            sku: line.sku,
            unit_price_cents: item.price_cents,
        }
    }

    fn next_action(
        &mut self,
        mut participation: Participation,
        action: &ParticipantAction,
    ) -> Participation {
        use ParticipantState as State;
        let next_state = match (action, &participation.state) {
            (ParticipantAction::Prepare { .. }, state) => state.clone(),
            (ParticipantAction::Commit, State::Prepared { .. }) => {
                self.move_lines(&participation.lines, Bucket::Reserved, Bucket::Sold);
                State::Committed
            }
            (ParticipantAction::Commit, State::Committed | State::Released) => {
                participation.state.clone()
            }
            (ParticipantAction::Abort, State::Prepared { .. }) => {
                self.move_lines(&participation.lines, Bucket::Reserved, Bucket::Available);
                State::Aborted
            }
            (ParticipantAction::Abort, State::Refused { .. } | State::Aborted) => State::Aborted,
            (ParticipantAction::Release, State::Prepared { .. }) => {
                self.move_lines(&participation.lines, Bucket::Reserved, Bucket::Available);
                State::Released
            }
            (ParticipantAction::Release, State::Committed) => {
                self.move_lines(&participation.lines, Bucket::Sold, Bucket::Available);
                State::Released
            }
            (ParticipantAction::Release, State::Released) => State::Released,
            (action, state) => panic!("2PC atomicity broken: {action:?} in state {state:?}"),
        };
        participation.state = next_state;
        participation
    }

    fn move_lines(&mut self, lines: &[OrderLine], from: Bucket, to: Bucket) {
        for line in lines {
            self.move_stock(line.sku, from, to, line.quantity);
        }
    }
}
