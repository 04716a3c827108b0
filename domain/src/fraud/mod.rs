//! Fraud rules (issue 6, item 7): pure, explainable functions from a call's facts and its
//! account's recent history to hits — a rule name, a score and evidence a person can read.
//! No IO, no clock: every window is measured from the call's own `placed_at`, so the same
//! history gives the same hits live, after a rebuild and in what-if mode. Evidence never holds
//! a phone number: destinations are known only by the rate deck's matched prefix.

mod facts;
mod ranges;
mod rules;
mod thresholds;

#[cfg(test)]
mod tests;

pub use facts::{AccountFacts, CallFacts, Purchase};
pub use ranges::{
    RangeChange, RangeHistory, RiskRange, RiskRangeError, RiskRanges, MAX_LABEL_CHARS, MAX_RANGES,
};
pub use rules::{account_score, evaluate, Hit, Rule, ALL_RULES};
pub use thresholds::{Thresholds, ThresholdsError};
