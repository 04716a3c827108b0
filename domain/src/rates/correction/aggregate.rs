//! The RateCorrections aggregate: validates a correction and numbers it. Its state is two
//! counters, however many corrections the stream holds.

use std::fmt;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{ActorId, DeckId};
use crate::money::{Currency, Money};
use crate::rates::correction::events::{CorrectionEvent, RatePair, RatesCorrected};

/// The one stream this aggregate has.
pub const CORRECTIONS_STREAM: &str = "rate-corrections";
pub const MAX_REASON_CHARS: usize = 500;
/// A correction's rate above $1,000 a minute is a typo.
const MAX_RATE_MICROS: i64 = 1_000_000_000;

/// A correction's number, written `rc-N` wherever a call or a credit names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CorrectionId(pub u64);

impl fmt::Display for CorrectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rc-{}", self.0)
    }
}

impl CorrectionId {
    /// `rc-3` or `3`.
    pub fn parse(text: &str) -> Result<CorrectionId, CorrectionError> {
        let digits = text.trim().trim_start_matches("rc-");
        digits
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(CorrectionId)
            .ok_or_else(|| CorrectionError::BadId(text.to_owned()))
    }
}

/// What an admin asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectRates {
    pub prefix: String,
    pub deck_id: Option<DeckId>,
    pub old: RatePair,
    pub new: RatePair,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
    pub reason: String,
    pub actor: ActorId,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorrectionError {
    #[error("prefix `{0}` must be 1-15 digits of the international number, without +")]
    BadPrefix(String),
    #[error("{what} must be between 0 and 1000.000000 a minute (got {amount})")]
    BadRate { what: &'static str, amount: Money },
    #[error("all rates of a correction must be in one currency ({expected}); got {got}")]
    MixedCurrency { expected: Currency, got: Currency },
    #[error("the effective range is empty: --from {from} is not before --to {to}")]
    EmptyRange { from: DateTime<Utc>, to: DateTime<Utc> },
    #[error("the reason must be 1-{MAX_REASON_CHARS} characters; it is shown in the audit trail")]
    BadReason,
    #[error("the new rates are the old ones: nothing to correct")]
    Unchanged,
    #[error("`{0}` is not a correction id; write rc-N or N")]
    BadId(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateCorrections {
    corrections: u64,
}

impl RateCorrections {
    /// Corrections made so far (the last one's number).
    pub fn count(&self) -> u64 {
        self.corrections
    }

    pub fn decide(&self, command: &CorrectRates) -> Result<Vec<CorrectionEvent>, CorrectionError> {
        let prefix = command.prefix.trim();
        if prefix.is_empty() || prefix.len() > 15 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CorrectionError::BadPrefix(command.prefix.clone()));
        }
        let currency = command.new.cost_per_minute.currency();
        for (what, amount) in [
            ("the old cost", command.old.cost_per_minute),
            ("the old selling rate", command.old.selling_per_minute),
            ("the new cost", command.new.cost_per_minute),
            ("the new selling rate", command.new.selling_per_minute),
        ] {
            if amount.currency() != currency {
                return Err(CorrectionError::MixedCurrency {
                    expected: currency,
                    got: amount.currency(),
                });
            }
            if amount.is_negative() || amount.micros() > MAX_RATE_MICROS {
                return Err(CorrectionError::BadRate { what, amount });
            }
        }
        if let Some(to) = command.effective_to {
            if to <= command.effective_from {
                return Err(CorrectionError::EmptyRange {
                    from: command.effective_from,
                    to,
                });
            }
        }
        let reason = command.reason.trim();
        if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
            return Err(CorrectionError::BadReason);
        }
        if command.old == command.new {
            return Err(CorrectionError::Unchanged);
        }
        Ok(vec![CorrectionEvent::RatesCorrected(RatesCorrected {
            number: self.corrections + 1,
            prefix: prefix.to_owned(),
            deck_id: command.deck_id,
            old: command.old,
            new: command.new,
            effective_from: command.effective_from,
            effective_to: command.effective_to,
            reason: reason.to_owned(),
            actor: command.actor,
        })])
    }

    pub fn fold(&mut self, event: &CorrectionEvent) {
        match event {
            CorrectionEvent::RatesCorrected(c) => self.corrections = self.corrections.max(c.number),
        }
    }
}

impl Aggregate for RateCorrections {
    const TYPE: &'static str = "RateCorrections";
    type Command = CorrectRates;
    type Event = CorrectionEvent;
    type Error = CorrectionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: CorrectRates,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), CorrectionError> {
        for event in self.decide(&command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: CorrectionEvent) {
        self.fold(&event);
    }
}
