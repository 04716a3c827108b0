//! What the rules look at: one call's facts and its account's (opening time, purchases), as
//! the fraud-signals projection folds them from the log. Plain values, no number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, CallId};

/// One call as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFacts {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub placed_at: DateTime<Utc>,
    /// The rate deck prefix the call was priced under (never the number).
    pub matched_prefix: String,
    pub country_iso: String,
    pub currency: String,
    /// The selling rate, micro-units per minute.
    pub rate_micros: i64,
    pub answered: bool,
    /// Set once the call ended or failed.
    pub ended_at: Option<DateTime<Utc>>,
    pub billed_seconds: i64,
    /// Cumulative cost so far (the last tick's, or the final one).
    pub cost_micros: i64,
}

impl CallFacts {
    /// Answered, over, and billed at most `seconds`.
    pub fn is_short(&self, seconds: i64) -> bool {
        self.answered && self.ended_at.is_some() && self.billed_seconds <= seconds
    }
}

/// A credit purchase on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Purchase {
    pub at: DateTime<Utc>,
    pub paid_micros: i64,
}

/// The account's facts the rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountFacts {
    pub opened_at: Option<DateTime<Utc>>,
    /// Purchases, oldest first.
    pub purchases: Vec<Purchase>,
}

impl AccountFacts {
    /// The latest purchase at or before `at`.
    pub fn last_purchase_before(&self, at: DateTime<Utc>) -> Option<Purchase> {
        self.purchases.iter().rev().find(|p| p.at <= at).copied()
    }
}
