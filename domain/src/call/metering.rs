//! Metering decisions on reports: `progress`, `interim` (cumulative talk billed by the plan's
//! increments, hangup when talk passes a final grant or the maximum duration), `stop` (charged
//! up to what was reserved, the rest overrun) and the sweeper. The `seq` rules are applied
//! before these run (`decide.rs`); here a report is always new.

use chrono::{DateTime, Utc};

use crate::call::aggregate::{talk_seconds, Call, Phase};
use crate::call::commands::Progress;
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::reply::Decision;
use crate::call::values::{CallQuality, EndCause, FailCause, HangupReason};
use crate::money::Money;

/// Longer than any call may last (the limit's maximum is 24 h): a report beyond it is a bug.
pub const MAX_TALK_MS: u64 = 24 * 3_600 * 1_000;

impl Call {
    pub(super) fn progress(
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

    pub(super) fn interim(
        &self,
        seq: u64,
        talk_ms: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<CallEvent>, CallError> {
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

    pub(super) fn stop(
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
        debug_assert!(charged <= reserved && charged <= cost && !charged.is_negative());
        // A call the api asked to end ends with the hangup's cause, whatever the node says.
        let cause = self.hangup.map_or(cause, EndCause::from);
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
    pub(super) fn sweep(&self, now: DateTime<Utc>) -> Result<Decision, CallError> {
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
            self.stop(None, self.talk_ms, EndCause::Orphaned, None, now)?
        } else {
            let cause = match self.hangup {
                Some(_) => FailCause::HangupRequested,
                None => FailCause::Orphaned,
            };
            vec![CallEvent::CallFailed {
                seq: None,
                cause,
                sip_status: None,
                at: now,
            }]
        };
        self.conclude(events, now)
    }
}
