//! The Call aggregate's decisions: the dispatch, the `seq` rules every report goes through,
//! `start` (quote, authorisation, first grant) and hangup requests; grants are decided in
//! `grant.rs`, reports in `metering.rs`, flags in `review.rs`.
//!
//! Pure: no IO, no clock, no ids minted. Each decision returns its events, the answer for the
//! media node and, when the grant runs low, the amount the api should reserve on the account.
//! Reports follow the `seq` rules: a repeat gets the first answer and changes nothing, a gap is
//! accepted (counts are cumulative), an older `seq` is refused.

use chrono::{DateTime, Utc};

use crate::call::aggregate::{Call, Phase};
use crate::call::commands::{CallCommand, PlaceCall};
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::grant::Need;
use crate::call::limits::{authorise, Denial};
use crate::call::reply::{Decision, GrantRequest, Reply};
use crate::money::Money;

impl Call {
    /// The decision: which events a command produces, what to answer, what to reserve.
    pub fn decide(&self, command: &CallCommand) -> Result<Decision, CallError> {
        use CallCommand as C;
        match command {
            C::PlaceCall(place) => self.place(place),
            C::RecordGrant {
                reservation_id,
                amount,
                now,
            } => self.record_grant(*reservation_id, *amount, *now),
            C::RefuseGrant { reason, now } => self.refuse_grant(*reason, *now),
            C::ReportProgress { seq, progress, now } => {
                self.report(*seq, *now, |call| call.progress(*seq, *progress, *now))
            }
            C::ReportInterim { seq, talk_ms, now } => {
                self.report(*seq, *now, |call| call.interim(*seq, *talk_ms, *now))
            }
            C::ReportStop {
                seq,
                talk_ms,
                cause,
                quality,
                now,
            } => self.report(*seq, *now, |call| {
                call.stop(Some(*seq), *talk_ms, *cause, *quality, *now)
            }),
            C::RequestHangup { reason, now } => {
                self.live()?;
                let events = match self.hangup {
                    Some(_) => vec![],
                    None => vec![CallEvent::CallHangupRequested {
                        reason: *reason,
                        at: *now,
                    }],
                };
                self.conclude(events, *now)
            }
            C::Sweep { now } => self.sweep(*now),
            C::Flag {
                rule,
                score,
                evidence,
            } => self.flag(rule, *score, evidence),
            C::ReRate {
                correction,
                sequence,
                selling_per_minute,
                cost_per_minute,
                actor,
                now,
            } => self.rerate(
                correction,
                *sequence,
                (*selling_per_minute, *cost_per_minute),
                *actor,
                *now,
            ),
        }
    }

    pub(super) fn live(&self) -> Result<(), CallError> {
        self.known()?;
        match self.phase {
            Phase::Ended => Err(CallError::CallOver("ended")),
            Phase::Failed => Err(CallError::CallOver("failed")),
            _ => Ok(()),
        }
    }

    /// The `seq` rules, then `decide` for a new report.
    pub(super) fn report(
        &self,
        seq: u64,
        now: DateTime<Utc>,
        decide: impl FnOnce(&Call) -> Result<Vec<CallEvent>, CallError>,
    ) -> Result<Decision, CallError> {
        self.known()?;
        if seq == 0 {
            return Err(CallError::SeqZero);
        }
        if seq == self.last_seq {
            return Ok(self.unchanged());
        }
        if seq < self.last_seq {
            return Err(CallError::StaleSeq {
                seq,
                last: self.last_seq,
            });
        }
        self.live()?;
        let events = decide(self)?;
        debug_assert!(
            events.iter().all(|e| report_seq(e).is_none_or(|s| s == seq)),
            "a report's events carry its seq"
        );
        self.conclude(events, now)
    }

    /// No events: the last answer again.
    pub(super) fn unchanged(&self) -> Decision {
        Decision {
            events: vec![],
            reply: self.last_reply.clone().unwrap_or(Reply::Done),
            grant: None,
            settle: None,
        }
    }

    /// Folds `events` into a copy of the state to read the answer, and asks for a grant (or
    /// makes the grant final) when the call runs low.
    pub(super) fn conclude(
        &self,
        mut events: Vec<CallEvent>,
        now: DateTime<Utc>,
    ) -> Result<Decision, CallError> {
        let mut after = self.clone();
        for event in &events {
            after.fold(event);
        }
        let mut grant = None;
        match after.grant_need()? {
            Need::Enough => {}
            Need::Grant(need) => grant = Some(GrantRequest { amount: need.amount }),
            Need::Exhausted(reason) => {
                let event = CallEvent::CallFinalUnit {
                    reason,
                    granted_seconds: after.granted_seconds,
                    at: now,
                };
                after.fold(&event);
                events.push(event);
            }
        }
        let over = events
            .iter()
            .any(|e| matches!(e, CallEvent::CallEnded { .. } | CallEvent::CallFailed { .. }));
        let settle = (over && after.grants > 0).then(|| after.cost());
        let reply = after.last_reply.clone().unwrap_or(Reply::Done);
        Ok(Decision {
            events,
            reply,
            grant,
            settle,
        })
    }

    fn place(&self, p: &PlaceCall) -> Result<Decision, CallError> {
        if let Some(terms) = &self.terms {
            if terms.quote_id != p.quote.id || terms.node_id != p.node_id || terms.account_id != p.account_id
            {
                return Err(CallError::StartMismatch);
            }
            self.live()?;
            if self.grants == 0 {
                return Err(CallError::GrantPending);
            }
            return Ok(self.unchanged());
        }
        p.limits.validate()?;
        p.policy.validate()?;
        let quote = &p.quote;
        if quote.account_id != p.account_id {
            return Err(CallError::Denied(Denial::QuoteOtherAccount));
        }
        if quote.is_expired(p.now) {
            return Err(CallError::Denied(Denial::QuoteExpired {
                expired_at: quote.expires_at,
            }));
        }
        if !p.dialled.digits().starts_with(&quote.destination.prefix) {
            return Err(CallError::Denied(Denial::QuoteOtherNumber {
                prefix: quote.destination.prefix.clone(),
            }));
        }
        let tariff = quote.price.selling;
        authorise(&p.limits, &p.caller, tariff.rate_per_minute).map_err(CallError::Denied)?;
        let currency = p.caller.currency;
        let cap = Money::from_micros(p.limits.daily_spend_cap_micros, currency);
        let spend_left = cap.checked_sub(p.caller.spent_today)?;
        let first = tariff.cost(1)?.max_micros(1);
        if first > spend_left {
            return Err(CallError::Denied(Denial::DailySpendCap {
                cap,
                spent: p.caller.spent_today,
            }));
        }
        if first > p.caller.available {
            return Err(CallError::Denied(Denial::InsufficientCredit {
                available: p.caller.available,
                needed: first,
            }));
        }
        let d = &quote.destination;
        let placed = CallEvent::CallPlaced {
            call_id: p.call_id,
            account_id: p.account_id,
            node_id: p.node_id.clone(),
            destination: p.sealed.clone(),
            country_iso: d.iso.clone(),
            country: d.country.clone(),
            matched_prefix: d.prefix.clone(),
            description: d.description.clone(),
            tariff,
            cost_per_minute: Some(quote.price.cost_per_minute),
            deck_id: d.deck_id,
            quote_id: quote.id,
            max_ring_seconds: p.limits.max_ring_seconds,
            max_call_seconds: p.limits.max_call_seconds,
            spend_limit: spend_left,
            policy: p.policy,
            placed_at: p.now,
        };
        self.conclude(vec![placed], p.now)
    }
}

trait AtLeast {
    fn max_micros(self, micros: i64) -> Money;
}

impl AtLeast for Money {
    /// At least `micros`: even a free destination holds one micro-unit, so it can settle.
    fn max_micros(self, micros: i64) -> Money {
        if self.micros() < micros {
            Money::from_micros(micros, self.currency())
        } else {
            self
        }
    }
}

/// The report seq an event records, if any.
fn report_seq(event: &CallEvent) -> Option<u64> {
    match event {
        CallEvent::CallRinging { seq, .. }
        | CallEvent::CallAnswered { seq, .. }
        | CallEvent::CallTicked { seq, .. } => Some(*seq),
        CallEvent::CallEnded { seq, .. } | CallEvent::CallFailed { seq, .. } => *seq,
        _ => None,
    }
}

impl Call {
    /// The decision a command made, read back from the state after its `events` (the command
    /// service returns that state, not the `Decision`). A repeat of a report, or a process
    /// resumed after a crash, gets what is still to do: the grant a low call needs, and the
    /// settlement of a call that is over (`SettleCall` is idempotent by key on the Account).
    pub fn decision_after(&self, events: Vec<CallEvent>) -> Result<Decision, CallError> {
        let grant = match self.grant_need()? {
            Need::Grant(need) => Some(GrantRequest { amount: need.amount }),
            Need::Enough | Need::Exhausted(_) => None,
        };
        let settle = (self.phase.is_over() && self.grants > 0).then(|| self.cost());
        Ok(Decision {
            events,
            reply: self.last_reply.clone().unwrap_or(Reply::Done),
            grant,
            settle,
        })
    }

    /// Grants recorded so far: the number of the next grant is this plus one.
    pub fn grants(&self) -> u32 {
        self.grants
    }
}
