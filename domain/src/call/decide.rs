//! The Call aggregate's decisions: `start` (quote, authorisation, first grant), grants recorded
//! or refused, `progress`, `interim`, `stop`, hangups, the sweeper and fraud flags.
//!
//! Pure: no IO, no clock, no ids minted. Each decision returns its events, the answer for the
//! media node and, when the grant runs low, the amount the api should reserve on the account.
//! Reports follow the `seq` rules: a repeat gets the first answer and changes nothing, a gap is
//! accepted (counts are cumulative), an older `seq` is refused.

use chrono::{DateTime, Utc};

use crate::call::aggregate::{talk_seconds, Call, Phase};
use crate::call::commands::{CallCommand, PlaceCall, Progress};
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::grant::{ceiling, Need, MAX_GRANTS_PER_CALL};
use crate::call::limits::{authorise, Denial};
use crate::call::reply::{Decision, GrantRequest, Reply};
use crate::call::values::{CallQuality, EndCause, FinalUnitReason, HangupReason};
use crate::ids::ReservationId;
use crate::money::Money;

/// Longer than any call may last (the limit's maximum is 24 h): a report beyond it is a bug.
pub const MAX_TALK_MS: u64 = 24 * 3_600 * 1_000;
pub const MAX_RULE_CHARS: usize = 100;
pub const MAX_EVIDENCE_CHARS: usize = 2_000;
pub const MAX_SCORE: u16 = 1_000;

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
        }
    }

    fn live(&self) -> Result<(), CallError> {
        self.known()?;
        match self.phase {
            Phase::Ended => Err(CallError::CallOver("ended")),
            Phase::Failed => Err(CallError::CallOver("failed")),
            _ => Ok(()),
        }
    }

    /// The `seq` rules, then `decide` for a new report.
    fn report(
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
        self.conclude(events, now)
    }

    /// No events: the last answer again.
    fn unchanged(&self) -> Decision {
        Decision {
            events: vec![],
            reply: self.last_reply.clone().unwrap_or(Reply::Done),
            grant: None,
            settle: None,
        }
    }

    /// Folds `events` into a copy of the state to read the answer, and asks for a grant (or
    /// makes the grant final) when the call runs low.
    fn conclude(&self, mut events: Vec<CallEvent>, now: DateTime<Utc>) -> Result<Decision, CallError> {
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

    fn record_grant(
        &self,
        reservation_id: ReservationId,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Decision, CallError> {
        let terms = self.known()?;
        if self.last_reservation == Some(reservation_id) {
            return Ok(self.unchanged());
        }
        self.live()?;
        let currency = terms.tariff.rate_per_minute.currency();
        if amount.currency() != currency {
            return Err(CallError::WrongCurrency {
                expected: currency,
                got: amount.currency(),
            });
        }
        if !amount.is_positive() {
            return Err(CallError::AmountMustBePositive(amount));
        }
        if self.grants >= MAX_GRANTS_PER_CALL {
            return Err(CallError::TooManyGrants(MAX_GRANTS_PER_CALL));
        }
        let need = match self.grant_need()? {
            Need::Grant(need) => Some(need),
            _ => None,
        };
        let reserved = self.reserved().checked_add(amount)?;
        let granted_seconds = ceiling(terms, reserved)?.max(self.granted_seconds);
        let room_left = terms.spend_limit.checked_sub(reserved)?;
        let final_unit = self
            .final_unit
            .or(self.final_reason(need, amount, granted_seconds, room_left));
        let event = CallEvent::CallGranted {
            reservation_id,
            amount,
            reserved,
            granted_seconds,
            final_unit,
            at: now,
        };
        self.conclude(vec![event], now)
    }

    fn refuse_grant(&self, reason: FinalUnitReason, now: DateTime<Utc>) -> Result<Decision, CallError> {
        self.live()?;
        let events = if self.grants == 0 {
            // The first grant: the call never rings.
            vec![CallEvent::CallFailed {
                seq: None,
                cause: crate::call::values::FailCause::NoCredit,
                sip_status: None,
                at: now,
            }]
        } else if self.final_unit.is_some() {
            vec![]
        } else {
            vec![CallEvent::CallFinalUnit {
                reason,
                granted_seconds: self.granted_seconds,
                at: now,
            }]
        };
        self.conclude(events, now)
    }

    fn progress(
        &self,
        seq: u64,
        progress: Progress,
        now: DateTime<Utc>,
    ) -> Result<Vec<CallEvent>, CallError> {
        let answered = self.phase == Phase::Answered;
        Ok(match progress {
            Progress::Ringing if self.phase == Phase::Placed => vec![CallEvent::CallRinging { seq, at: now }],
            Progress::Answered if !answered => vec![CallEvent::CallAnswered { seq, at: now }],
            Progress::Ringing | Progress::Answered => vec![],
            Progress::Failed { .. } if answered => return Err(CallError::FailedAfterAnswer),
            Progress::Failed { cause, sip_status } => {
                if let Some(status) = sip_status.filter(|s| !(300..=699).contains(s)) {
                    return Err(CallError::BadSipStatus(status));
                }
                vec![CallEvent::CallFailed {
                    seq: Some(seq),
                    cause,
                    sip_status,
                    at: now,
                }]
            }
        })
    }

    /// Cumulative talk and cost after a report of `talk_ms`; never lower than already recorded.
    fn metered(&self, talk_ms: u64) -> Result<(u64, u64, Money), CallError> {
        let terms = self.known()?;
        if talk_ms > MAX_TALK_MS {
            return Err(CallError::TalkTooLong {
                talk_ms,
                max_ms: MAX_TALK_MS,
            });
        }
        let talk_ms = talk_ms.max(self.talk_ms);
        let talk = talk_seconds(talk_ms);
        let billed = terms.tariff.plan.billed_seconds(talk);
        Ok((talk_ms, billed, terms.tariff.cost(talk)?))
    }

    fn interim(&self, seq: u64, talk_ms: u64, now: DateTime<Utc>) -> Result<Vec<CallEvent>, CallError> {
        let terms = self.known()?;
        let (talk_ms, billed_seconds, cost) = self.metered(talk_ms)?;
        let mut events = Vec::with_capacity(3);
        if self.phase != Phase::Answered {
            events.push(CallEvent::CallAnswered { seq, at: now });
        }
        events.push(CallEvent::CallTicked {
            seq,
            talk_ms,
            billed_seconds,
            cost,
            at: now,
        });
        let talk = talk_seconds(talk_ms);
        let hangup = if talk >= u64::from(terms.max_call_seconds) {
            Some(HangupReason::MaxDuration)
        } else if self.final_unit.is_some() && talk >= self.granted_seconds {
            Some(HangupReason::FinalUnit)
        } else {
            None
        };
        if let (Some(reason), None) = (hangup, self.hangup) {
            events.push(CallEvent::CallHangupRequested { reason, at: now });
        }
        Ok(events)
    }

    fn stop(
        &self,
        seq: Option<u64>,
        talk_ms: u64,
        cause: EndCause,
        quality: Option<CallQuality>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CallEvent>, CallError> {
        let (talk_ms, billed_seconds, cost) = self.metered(talk_ms)?;
        let reserved = self.reserved();
        let charged = cost.min(reserved)?;
        let mut events = Vec::with_capacity(2);
        if let (Some(seq), true) = (seq, self.phase != Phase::Answered && talk_ms > 0) {
            events.push(CallEvent::CallAnswered { seq, at: now });
        }
        events.push(CallEvent::CallEnded {
            seq,
            cause,
            talk_ms,
            billed_seconds,
            cost,
            reserved,
            charged,
            overrun: cost.checked_sub(charged)?,
            quality,
            at: now,
        });
        Ok(events)
    }

    /// Ends a call silent for twice the grant validity (plus the ring limit while unanswered),
    /// charging the seconds last reported. A report that arrived meanwhile wins.
    fn sweep(&self, now: DateTime<Utc>) -> Result<Decision, CallError> {
        let terms = self.known()?;
        self.live()?;
        let answered = self.phase == Phase::Answered;
        let mut threshold = 2 * i64::from(terms.policy.validity_seconds);
        if !answered {
            threshold += i64::from(terms.max_ring_seconds);
        }
        let last = self.last_activity_at.unwrap_or(terms.placed_at);
        let silent = (now - last).num_seconds();
        if silent < threshold {
            return Err(CallError::NotStale {
                silent_seconds: silent,
                threshold_seconds: threshold,
            });
        }
        let events = if answered {
            self.stop(None, self.talk_ms, EndCause::Swept, None, now)?
        } else {
            vec![CallEvent::CallFailed {
                seq: None,
                cause: crate::call::values::FailCause::Swept,
                sip_status: None,
                at: now,
            }]
        };
        self.conclude(events, now)
    }

    fn flag(&self, rule: &str, score: u16, evidence: &str) -> Result<Decision, CallError> {
        self.known()?;
        let rule = bounded("rule", rule, MAX_RULE_CHARS)?;
        let evidence = bounded("evidence", evidence, MAX_EVIDENCE_CHARS)?;
        if score > MAX_SCORE {
            return Err(CallError::ScoreOutOfRange(score));
        }
        let event = CallEvent::CallFlagged {
            rule,
            score,
            evidence,
        };
        Ok(Decision {
            events: vec![event],
            reply: Reply::Done,
            grant: None,
            settle: None,
        })
    }
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, CallError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(CallError::Text { field, max });
    }
    Ok(trimmed.to_owned())
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
