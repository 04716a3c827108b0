//! The rules' thresholds and scores (`fraud.*` in the api's configuration), with defaults a
//! small prepaid service can start from. Money is in micro-units of the account's currency.

use serde::{Deserialize, Serialize};

use crate::call::MAX_SCORE;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// A call is short when answered and billed at most this many seconds.
    pub short_call_seconds: i64,
    /// `short_call_burst`: this many short calls placed within the window fire the rule.
    pub burst_min_calls: u32,
    pub burst_window_minutes: i64,
    pub burst_score: u16,
    /// `many_destinations`: this many distinct destination prefixes within the window.
    pub destinations_min_distinct: u32,
    pub destinations_window_minutes: i64,
    pub destinations_score: u16,
    /// `new_account_high_cost`: an account younger than this calling at `high_cost_rate_micros`
    /// a minute or more.
    pub new_account_hours: i64,
    pub high_cost_rate_micros: i64,
    pub new_account_score: u16,
    /// `spend_after_purchase`: a call placed within this many minutes of a purchase whose cost
    /// reaches `expensive_call_micros`.
    pub after_purchase_minutes: i64,
    pub expensive_call_micros: i64,
    pub after_purchase_score: u16,
    /// `high_risk_range`: a call priced under a prefix inside a listed range.
    pub high_risk_score: u16,
    /// The account is frozen (reason `fraud`) when the scores of flags on its calls placed
    /// within `score_window_hours` before a call add up to this.
    pub freeze_score: u32,
    pub score_window_hours: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            short_call_seconds: 10,
            burst_min_calls: 5,
            burst_window_minutes: 10,
            burst_score: 300,
            destinations_min_distinct: 8,
            destinations_window_minutes: 60,
            destinations_score: 300,
            new_account_hours: 72,
            high_cost_rate_micros: 1_000_000,
            new_account_score: 400,
            after_purchase_minutes: 60,
            expensive_call_micros: 5_000_000,
            after_purchase_score: 400,
            high_risk_score: 600,
            freeze_score: 1_000,
            score_window_hours: 24,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fraud threshold `{name}` is {value}; use {min}..={max}")]
pub struct ThresholdsError {
    pub name: &'static str,
    pub value: i64,
    pub min: i64,
    pub max: i64,
}

fn within(name: &'static str, value: i64, min: i64, max: i64) -> Result<(), ThresholdsError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ThresholdsError {
            name,
            value,
            min,
            max,
        })
    }
}

impl Thresholds {
    pub fn validate(&self) -> Result<(), ThresholdsError> {
        let score = i64::from(MAX_SCORE);
        within("short_call_seconds", self.short_call_seconds, 1, 3_600)?;
        within("burst_min_calls", self.burst_min_calls.into(), 2, 10_000)?;
        within("burst_window_minutes", self.burst_window_minutes, 1, 7 * 24 * 60)?;
        within("burst_score", self.burst_score.into(), 0, score)?;
        within(
            "destinations_min_distinct",
            self.destinations_min_distinct.into(),
            2,
            10_000,
        )?;
        within(
            "destinations_window_minutes",
            self.destinations_window_minutes,
            1,
            7 * 24 * 60,
        )?;
        within("destinations_score", self.destinations_score.into(), 0, score)?;
        within("new_account_hours", self.new_account_hours, 0, 365 * 24)?;
        within(
            "high_cost_rate_micros",
            self.high_cost_rate_micros,
            1,
            i64::MAX / 2,
        )?;
        within("new_account_score", self.new_account_score.into(), 0, score)?;
        within(
            "after_purchase_minutes",
            self.after_purchase_minutes,
            0,
            30 * 24 * 60,
        )?;
        within(
            "expensive_call_micros",
            self.expensive_call_micros,
            1,
            i64::MAX / 2,
        )?;
        within("after_purchase_score", self.after_purchase_score.into(), 0, score)?;
        within("high_risk_score", self.high_risk_score.into(), 0, score)?;
        within("freeze_score", self.freeze_score.into(), 1, 1_000_000)?;
        within("score_window_hours", self.score_window_hours, 1, 365 * 24)?;
        Ok(())
    }

    /// How far back a rule may look from a call's `placed_at`, in minutes: the widest window.
    pub fn lookback_minutes(&self) -> i64 {
        self.burst_window_minutes
            .max(self.destinations_window_minutes)
            .max(self.score_window_hours.saturating_mul(60))
    }
}
