//! The Call aggregate's state and fold. The state stays small whatever the call's length: the
//! terms it was placed under, cumulative counts (talk, cost, reserved, ceiling), and only the
//! last accepted `seq` with its answer — never a list of ticks, reports or reservations.
//! `fold` never fails and reads no clock; decisions live in `decide.rs`, grant arithmetic in
//! `grant.rs`.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::call::commands::CallCommand;
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::limits::GrantPolicy;
use crate::call::reply::{GrantAnswer, Reply, Settlement};
use crate::call::values::{FailCause, FinalUnitReason, HangupReason, NodeId};
use crate::ids::{AccountId, CallId, QuoteId, ReservationId};
use crate::money::Money;
use crate::rating::Tariff;

/// What the call was placed under; fixed for its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTerms {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub node_id: NodeId,
    pub quote_id: QuoteId,
    pub tariff: Tariff,
    pub max_ring_seconds: u32,
    pub max_call_seconds: u32,
    pub spend_limit: Money,
    pub policy: GrantPolicy,
    pub placed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    New,
    Placed,
    Ringing,
    Answered,
    Ended,
    Failed,
}

impl Phase {
    pub fn is_over(self) -> bool {
        matches!(self, Phase::Ended | Phase::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Call {
    pub(crate) terms: Option<CallTerms>,
    pub(crate) phase: Phase,
    /// Everything reserved for the call on its account, in the tariff's currency.
    pub(crate) reserved_micros: i64,
    pub(crate) grants: u32,
    /// The last grant's reservation, so a retried `RecordGrant` changes nothing.
    pub(crate) last_reservation: Option<ReservationId>,
    /// The talk-time ceiling the reserved money pays for.
    pub(crate) granted_seconds: u64,
    pub(crate) final_unit: Option<FinalUnitReason>,
    pub(crate) hangup: Option<HangupReason>,
    /// The highest cumulative talk acknowledged, and its cost.
    pub(crate) talk_ms: u64,
    pub(crate) cost_micros: i64,
    /// Our cost per minute (from the quote, then the latest correction), and the number of
    /// the latest correction applied: an older one reached later leaves our cost side alone.
    pub(crate) our_rate_micros: Option<i64>,
    pub(crate) rerated_sequence: u64,
    pub(crate) last_seq: u64,
    pub(crate) last_reply: Option<Reply>,
    pub(crate) last_activity_at: Option<DateTime<Utc>>,
    /// What the customer paid once ended (after any re-rating), and the last correction
    /// applied, so a retried re-rating changes nothing.
    pub(crate) charged_micros: i64,
    pub(crate) last_correction: Option<String>,
    /// Why the call failed, once it has.
    pub(crate) failed: Option<FailCause>,
}

/// Whole seconds of talk, rounded up: the first step of billing.
pub fn talk_seconds(talk_ms: u64) -> u64 {
    talk_ms.div_ceil(1_000)
}

impl Call {
    pub fn terms(&self) -> Option<&CallTerms> {
        self.terms.as_ref()
    }
    pub fn phase(&self) -> Phase {
        self.phase
    }
    pub fn granted_seconds(&self) -> u64 {
        self.granted_seconds
    }
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
    pub fn last_activity_at(&self) -> Option<DateTime<Utc>> {
        self.last_activity_at
    }
    pub fn final_unit(&self) -> Option<FinalUnitReason> {
        self.final_unit
    }
    pub fn talk_seconds(&self) -> u64 {
        talk_seconds(self.talk_ms)
    }
    /// The hangup the api asked for, if any (the first one: a call ends with its cause).
    pub fn hangup(&self) -> Option<HangupReason> {
        self.hangup
    }
    pub fn fail_cause(&self) -> Option<FailCause> {
        self.failed
    }

    pub(crate) fn known(&self) -> Result<&CallTerms, CallError> {
        self.terms.as_ref().ok_or(CallError::UnknownCall)
    }

    /// An amount in the call's currency.
    pub fn money(&self, micros: i64) -> Money {
        let currency = self
            .terms
            .as_ref()
            .map(|t| t.tariff.rate_per_minute.currency())
            .unwrap_or(crate::money::Currency::USD);
        Money::from_micros(micros, currency)
    }

    pub fn reserved(&self) -> Money {
        self.money(self.reserved_micros)
    }

    pub fn cost(&self) -> Money {
        self.money(self.cost_micros)
    }

    /// What the customer paid for the call once ended, after any re-rating.
    pub fn charged(&self) -> Money {
        self.money(self.charged_micros)
    }

    /// Our cost per minute for the call, when known.
    pub fn our_rate(&self) -> Option<Money> {
        self.our_rate_micros.map(|m| self.money(m))
    }

    /// The number of the latest correction applied to the call (0 for none).
    pub fn rerated_sequence(&self) -> u64 {
        self.rerated_sequence
    }

    /// The grant as it stands, answered at `at`.
    pub(crate) fn answer(&self, at: DateTime<Utc>) -> GrantAnswer {
        let validity = self.terms.as_ref().map_or(0, |t| t.policy.validity_seconds);
        GrantAnswer {
            seq: self.last_seq,
            granted_seconds: self.granted_seconds,
            seconds_left: self.granted_seconds.saturating_sub(self.talk_seconds()),
            final_unit: self.final_unit.is_some() || self.hangup.is_some(),
            valid_until: at + Duration::seconds(validity.into()),
            validity_seconds: validity,
            hangup: self.hangup,
        }
    }

    fn answered_now(&mut self, at: DateTime<Utc>) {
        self.last_activity_at = Some(at);
        self.last_reply = Some(Reply::Grant(self.answer(at)));
    }

    /// Folds one event; the same as cqrs-es's `apply` without taking ownership.
    pub fn fold(&mut self, event: &CallEvent) {
        match event {
            CallEvent::CallPlaced { .. } => self.fold_placed(event),
            CallEvent::CallGranted {
                reservation_id,
                reserved,
                granted_seconds,
                final_unit,
                at,
                ..
            } => {
                self.reserved_micros = reserved.micros();
                self.grants = self.grants.saturating_add(1);
                self.last_reservation = Some(*reservation_id);
                self.granted_seconds = self.granted_seconds.max(*granted_seconds);
                self.final_unit = self.final_unit.or(*final_unit);
                self.answered_now(*at);
            }
            CallEvent::CallFinalUnit { reason, at, .. } => {
                self.final_unit = self.final_unit.or(Some(*reason));
                self.answered_now(*at);
            }
            CallEvent::CallRinging { seq, at } => {
                self.phase = Phase::Ringing;
                self.last_seq = *seq;
                self.answered_now(*at);
            }
            CallEvent::CallAnswered { seq, at } => {
                self.phase = Phase::Answered;
                self.last_seq = *seq;
                self.answered_now(*at);
            }
            CallEvent::CallTicked {
                seq,
                talk_ms,
                cost,
                at,
                ..
            } => {
                self.last_seq = *seq;
                self.talk_ms = *talk_ms;
                self.cost_micros = cost.micros();
                self.answered_now(*at);
            }
            CallEvent::CallHangupRequested { reason, .. } => {
                self.hangup = Some(*reason);
                // The last answer learns of the hangup, so a repeat of its report hears it too.
                if let Some(Reply::Grant(answer)) = &mut self.last_reply {
                    answer.hangup = Some(*reason);
                    answer.final_unit = true;
                }
            }
            CallEvent::CallEnded { .. } => self.fold_ended(event),
            CallEvent::CallFailed { seq, cause, at, .. } => {
                self.phase = Phase::Failed;
                self.failed = Some(*cause);
                self.last_seq = seq.unwrap_or(self.last_seq);
                self.last_activity_at = Some(*at);
                self.last_reply = Some(Reply::Failed { seq: *seq });
            }
            CallEvent::CallFlagged { .. } => {}
            CallEvent::CallReRated {
                correction,
                sequence,
                new_cost,
                new_charged,
                our_rate_per_minute,
                ..
            } => {
                self.cost_micros = new_cost.micros();
                self.charged_micros = new_charged.micros();
                self.our_rate_micros = our_rate_per_minute.map(|m| m.micros()).or(self.our_rate_micros);
                self.rerated_sequence = self.rerated_sequence.max(*sequence);
                self.last_correction = Some(correction.clone());
            }
        }
    }

    fn fold_placed(&mut self, event: &CallEvent) {
        if let CallEvent::CallPlaced {
            call_id,
            account_id,
            node_id,
            tariff,
            cost_per_minute,
            quote_id,
            max_ring_seconds,
            max_call_seconds,
            spend_limit,
            policy,
            placed_at,
            ..
        } = event
        {
            self.terms = Some(CallTerms {
                call_id: *call_id,
                account_id: *account_id,
                node_id: node_id.clone(),
                quote_id: *quote_id,
                tariff: *tariff,
                max_ring_seconds: *max_ring_seconds,
                max_call_seconds: *max_call_seconds,
                spend_limit: *spend_limit,
                policy: *policy,
                placed_at: *placed_at,
            });
            self.phase = Phase::Placed;
            self.our_rate_micros = cost_per_minute.map(|m| m.micros());
            self.last_activity_at = Some(*placed_at);
        }
    }

    fn fold_ended(&mut self, event: &CallEvent) {
        if let CallEvent::CallEnded {
            seq,
            talk_ms,
            billed_seconds,
            cost,
            reserved,
            charged,
            overrun,
            at,
            ..
        } = event
        {
            self.phase = Phase::Ended;
            self.last_seq = seq.unwrap_or(self.last_seq);
            self.talk_ms = *talk_ms;
            self.cost_micros = cost.micros();
            self.charged_micros = charged.micros();
            self.last_activity_at = Some(*at);
            self.last_reply = Some(Reply::Ended(Settlement {
                seq: *seq,
                billed_seconds: *billed_seconds,
                cost: *cost,
                reserved: *reserved,
                charged: *charged,
                overrun: *overrun,
            }));
        }
    }
}

/// cqrs-es's path appends the same events as `decide`; the api's command service calls
/// `decide` itself, because the answer and the grant to reserve are not events.
impl Aggregate for Call {
    const TYPE: &'static str = "Call";
    type Command = CallCommand;
    type Event = CallEvent;
    type Error = CallError;
    type Services = ();

    async fn handle(
        &mut self,
        command: CallCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), CallError> {
        for event in self.decide(&command)?.events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: CallEvent) {
        self.fold(&event);
    }
}
