//! Grants: recording or refusing them, and their arithmetic (docs/metering-protocol.md, "Money and timing rules"). The ceiling is what
//! the reserved money pays for, exactly, by the one rating function; the re-grant rule is
//! "the money left would not pay the next `regrant_lead_seconds` of talk". Never rounds a
//! charge: that is `rating`'s job.

use chrono::{DateTime, Utc};

use crate::call::aggregate::{Call, CallTerms};
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::reply::Decision;
use crate::call::values::{FailCause, FinalUnitReason};
use crate::ids::ReservationId;
use crate::money::Money;

/// Grants per call at most: a 4-hour call at the default 60 s per grant needs 240.
pub const MAX_GRANTS_PER_CALL: u32 = 512;

/// A grant to ask the account for, before the api caps it by what the account holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrantNeed {
    pub amount: Money,
    /// The amount was cut to what the daily spend cap left.
    pub capped_by_spend: bool,
}

/// What a live call needs after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// The money left pays the next `regrant_lead_seconds`, or no further grant will come.
    Enough,
    Grant(GrantNeed),
    /// Low, and nothing more may be reserved: the current grant becomes final.
    Exhausted(FinalUnitReason),
}

/// The longest talk `reserved` pays for under the call's tariff, at most its maximum duration.
pub(crate) fn ceiling(terms: &CallTerms, reserved: Money) -> Result<u64, CallError> {
    Ok(terms
        .tariff
        .seconds_affordable(reserved, terms.max_call_seconds.into())?)
}

impl Call {
    /// Does the live call need another grant now, and of how much?
    pub(crate) fn grant_need(&self) -> Result<Need, CallError> {
        let terms = self.known()?;
        if self.phase.is_over() || self.final_unit.is_some() || self.hangup.is_some() {
            return Ok(Need::Enough);
        }
        let tariff = &terms.tariff;
        let talk = self.talk_seconds();
        let reserved = self.reserved();
        let lead = u64::from(terms.policy.regrant_lead_seconds);
        // A call always holds one reservation, even to a free destination, so it can settle.
        let low = self.grants == 0 || tariff.cost(talk.saturating_add(lead))? > reserved;
        if !low {
            return Ok(Need::Enough);
        }
        let max = u64::from(terms.max_call_seconds);
        let target = (self.granted_seconds.max(talk) + u64::from(terms.policy.grant_seconds)).min(max);
        let mut want = tariff.cost(target)?.checked_sub(reserved)?;
        if self.grants == 0 && want.micros() < 1 {
            want = self.money(1);
        }
        let room = terms.spend_limit.checked_sub(reserved)?;
        let amount = want.min(room)?;
        if !want.is_positive() {
            return Ok(Need::Exhausted(FinalUnitReason::MaxDuration));
        }
        if !amount.is_positive() {
            return Ok(Need::Exhausted(FinalUnitReason::DailySpendCap));
        }
        Ok(Need::Grant(GrantNeed {
            amount,
            capped_by_spend: amount < want,
        }))
    }

    /// Why the call's grants stop here, if they do, after reserving `amount` of what `need`
    /// asked for and reaching `granted_seconds`.
    pub(crate) fn final_reason(
        &self,
        need: Option<GrantNeed>,
        amount: Money,
        granted_seconds: u64,
        room_left: Money,
    ) -> Option<FinalUnitReason> {
        let max = self.terms.as_ref().map_or(0, |t| u64::from(t.max_call_seconds));
        if granted_seconds >= max {
            return Some(FinalUnitReason::MaxDuration);
        }
        match need {
            Some(need) if amount < need.amount => Some(FinalUnitReason::CreditExhausted),
            Some(need) if need.capped_by_spend => Some(FinalUnitReason::DailySpendCap),
            _ if !room_left.is_positive() => Some(FinalUnitReason::DailySpendCap),
            _ => None,
        }
    }
}

impl Call {
    pub(super) fn record_grant(
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

    pub(super) fn refuse_grant(
        &self,
        reason: FinalUnitReason,
        now: DateTime<Utc>,
    ) -> Result<Decision, CallError> {
        self.live()?;
        let events = if self.grants == 0 {
            // The first grant: the call never rings.
            vec![CallEvent::CallFailed {
                seq: None,
                cause: FailCause::from(reason),
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
}
