//! Decisions about a call from outside the metering channel: fraud flags. Bounded text only.

use crate::call::aggregate::Call;
use crate::call::error::CallError;
use crate::call::events::CallEvent;
use crate::call::reply::{Decision, Reply};

pub const MAX_RULE_CHARS: usize = 100;
pub const MAX_EVIDENCE_CHARS: usize = 2_000;
pub const MAX_SCORE: u16 = 1_000;

impl Call {
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
