//! Decisions about a call from outside the metering channel: fraud flags, and re-rating an
//! ended call after a rate correction. Re-rating only ever refunds the customer (the caller was
//! shown the quote), re-rates our cost side to the latest correction, and applies each
//! correction once.

use chrono::{DateTime, Utc};

use crate::call::aggregate::{Call, Phase};
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::reply::{Decision, Reply};
use crate::ids::ActorId;
use crate::money::{Money, MoneyError};
use crate::rating::{BillingPlan, Tariff};

pub const MAX_RULE_CHARS: usize = 100;
pub const MAX_EVIDENCE_CHARS: usize = 2_000;
pub const MAX_SCORE: u16 = 1_000;
pub const MAX_CORRECTION_CHARS: usize = 100;

impl Call {
    /// Re-prices the ended call under correction number `sequence` at `rates` (selling, ours)
    /// per minute, with the call's own plan and talk time. The customer's charge only ever
    /// goes down (to the lowest any correction gave); our cost side follows the correction
    /// with the highest number, so corrections reached in any order end in the same state.
    /// A correction that changes nothing (applied before, or older and not cheaper) appends
    /// nothing.
    pub(super) fn rerate(
        &self,
        correction: &str,
        sequence: u64,
        rates: (Money, Money),
        actor: ActorId,
        now: DateTime<Utc>,
    ) -> Result<Decision, CallError> {
        let terms = self.known()?;
        match self.phase {
            Phase::Ended => {}
            Phase::Failed => return Err(CallError::NotEnded("failed, and cost nothing")),
            _ => return Err(CallError::NotEnded("still live")),
        }
        let correction = bounded("correction", correction, MAX_CORRECTION_CHARS)?;
        if sequence == 0 {
            return Err(CallError::CorrectionNumberZero);
        }
        let (selling, ours) = rates;
        let currency = terms.tariff.rate_per_minute.currency();
        for rate in [selling, ours] {
            if rate.currency() != currency {
                return Err(CallError::WrongCurrency {
                    expected: currency,
                    got: rate.currency(),
                });
            }
            if rate.is_negative() {
                return Err(CallError::NegativeRate(rate));
            }
        }
        let plan = terms.tariff.plan;
        let tariff = Tariff {
            rate_per_minute: selling,
            plan,
        };
        let talk = self.talk_seconds();
        let later = sequence > self.rerated_sequence;
        let priced = tariff.cost(talk)?;
        let old_charged = self.charged();
        let new_charged = old_charged.min(priced.min(self.reserved())?)?;
        if !later && new_charged == old_charged {
            return Ok(nothing());
        }
        let rated = |rate: Option<Money>| rate.map(|r| our_cost(r, &plan, talk)).transpose();
        let our_rate = if later { Some(ours) } else { self.our_rate() };
        let event = CallEvent::CallReRated {
            correction,
            sequence,
            actor,
            tariff,
            old_cost: self.cost(),
            new_cost: if later { priced } else { self.cost() },
            old_charged,
            new_charged,
            refund: old_charged.checked_sub(new_charged)?,
            our_rate_per_minute: our_rate,
            old_our_cost: rated(self.our_rate())?,
            new_our_cost: rated(our_rate)?,
            at: now,
        };
        Ok(Decision {
            events: vec![event],
            ..nothing()
        })
    }

    pub(super) fn flag(&self, rule: &str, score: u16, evidence: &str) -> Result<Decision, CallError> {
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

fn nothing() -> Decision {
    Decision {
        events: vec![],
        reply: Reply::Done,
        grant: None,
        settle: None,
    }
}

/// Our cost of `talk_seconds` at `rate` a minute: the call's increments, no connect fee (the
/// deck's connect fees are not part of the call's record). The one rating function rounds it.
pub fn our_cost(rate: Money, plan: &BillingPlan, talk_seconds: u64) -> Result<Money, MoneyError> {
    let plan = BillingPlan {
        connect_fee: Money::zero(rate.currency()),
        ..*plan
    };
    Tariff {
        rate_per_minute: rate,
        plan,
    }
    .cost(talk_seconds)
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, CallError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(CallError::Text { field, max });
    }
    Ok(trimmed.to_owned())
}
