//! The correction event. `old` is what the rate book priced the prefix at when the correction
//! was made (for the record; each call's own terms are what re-rating starts from).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{ActorId, DeckId};
use crate::money::Money;

/// Our cost and the caller's selling rate, per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatePair {
    pub cost_per_minute: Money,
    pub selling_per_minute: Money,
}

/// One correction: for calls placed in `[effective_from, effective_to)` whose matched prefix is
/// `prefix`, the rates were `old` and are now `new`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatesCorrected {
    /// The correction's number: its place in the corrections stream (1, 2, ...).
    pub number: u64,
    /// The deck prefix (digits) as calls record it in `matched_prefix`.
    pub prefix: String,
    /// The deck that was active when the correction was made; quotes use the correction only
    /// while that deck is the active one.
    pub deck_id: Option<DeckId>,
    pub old: RatePair,
    pub new: RatePair,
    pub effective_from: DateTime<Utc>,
    /// Exclusive; `None` means until the deck is replaced.
    pub effective_to: Option<DateTime<Utc>>,
    pub reason: String,
    pub actor: ActorId,
}

impl RatesCorrected {
    /// Whether a call placed at `at` falls in the correction's range.
    pub fn covers(&self, at: DateTime<Utc>) -> bool {
        at >= self.effective_from && self.effective_to.is_none_or(|to| at < to)
    }

    /// The id calls and credits name the correction by.
    pub fn id(&self) -> String {
        super::aggregate::CorrectionId(self.number).to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CorrectionEvent {
    RatesCorrected(RatesCorrected),
}

impl CorrectionEvent {
    pub fn name(&self) -> &'static str {
        match self {
            CorrectionEvent::RatesCorrected(_) => "RatesCorrected",
        }
    }
}

impl DomainEvent for CorrectionEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
