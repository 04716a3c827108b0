//! Decisions about a call from outside the metering channel: fraud flags, and re-rating an
//! ended call after a rate correction. Re-rating only ever refunds (the caller was shown the
//! quote), never charges more than was reserved, and applies each correction once.

use chrono::{DateTime, Utc};

use crate::call::aggregate::{Call, Phase};
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::reply::{Decision, Reply};
use crate::ids::ActorId;
use crate::rating::Tariff;

pub const MAX_RULE_CHARS: usize = 100;
pub const MAX_EVIDENCE_CHARS: usize = 2_000;
pub const MAX_SCORE: u16 = 1_000;
pub const MAX_CORRECTION_CHARS: usize = 100;

impl Call {
    pub(super) fn rerate(
        &self,
        correction: &str,
        tariff: Tariff,
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
        if self.last_correction.as_deref() == Some(correction.as_str()) {
            return Ok(Decision {
                events: vec![],
                reply: Reply::Done,
                grant: None,
                settle: None,
            });
        }
        let currency = terms.tariff.rate_per_minute.currency();
        if tariff.rate_per_minute.currency() != currency {
            return Err(CallError::WrongCurrency {
                expected: currency,
                got: tariff.rate_per_minute.currency(),
            });
        }
        let new_cost = tariff.cost(self.talk_seconds())?;
        let new_charged = new_cost.min(self.reserved())?;
        let old_charged = self.money(self.charged_micros);
        if new_charged >= old_charged {
            return Err(CallError::NothingToRefund {
                old_charged,
                new_charged,
            });
        }
        let event = CallEvent::CallReRated {
            correction,
            actor,
            tariff,
            old_cost: self.cost(),
            new_cost,
            old_charged,
            new_charged,
            refund: old_charged.checked_sub(new_charged)?,
            at: now,
        };
        Ok(Decision {
            events: vec![event],
            reply: Reply::Done,
            grant: None,
            settle: None,
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

fn bounded(field: &'static str, value: &str, max: usize) -> Result<String, CallError> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(CallError::Text { field, max });
    }
    Ok(trimmed.to_owned())
}
