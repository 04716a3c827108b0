//! Limits and grant policy for calls, and `authorise`: the pure check that a caller may start a
//! call. Every denial names the limit and its value, for the person and for the machine
//! (`code`, `limit`). Nothing here reads a balance or a clock: the api gathers the facts
//! (`CallerFacts`) and passes them in.

use serde::{Deserialize, Serialize};

use crate::account::FreezeReason;
use crate::money::{Currency, Money};

/// Per-account limits on calls. Defaults are in `Limits::default`; configuration may change them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    pub max_concurrent_calls: u32,
    /// Spend per account per UTC day, in micro-units of the account's currency.
    pub daily_spend_cap_micros: i64,
    /// A destination dearer than this selling rate per minute is refused.
    pub max_rate_per_minute_micros: i64,
    pub max_ring_seconds: u32,
    pub max_call_seconds: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_calls: 3,
            daily_spend_cap_micros: 50_000_000,
            max_rate_per_minute_micros: 2_000_000,
            max_ring_seconds: 60,
            max_call_seconds: 4 * 3_600,
        }
    }
}

/// How credit is granted to a live call (docs/metering-protocol.md, "Money and timing rules").
/// Recorded in `CallPlaced`, so a call runs under one policy even if configuration changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrantPolicy {
    pub interim_seconds: u32,
    /// Talk time each grant adds to the ceiling.
    pub grant_seconds: u32,
    /// A grant's validity after each answer; the sweeper waits twice this.
    pub validity_seconds: u32,
    /// Re-grant when the money left would not pay for this much more talk.
    pub regrant_lead_seconds: u32,
}

impl Default for GrantPolicy {
    fn default() -> Self {
        GrantPolicy {
            interim_seconds: 6,
            grant_seconds: 60,
            validity_seconds: 30,
            regrant_lead_seconds: 12,
        }
    }
}

/// Configuration that cannot work, named with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    #[error("{name} must be between {min} and {max} (got {value})")]
    OutOfRange {
        name: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error("regrant_lead_seconds ({lead}) must be below grant_seconds ({grant}), or every tick re-grants")]
    LeadNotBelowGrant { lead: u32, grant: u32 },
}

fn in_range(name: &'static str, value: i64, min: i64, max: i64) -> Result<(), LimitsError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(LimitsError::OutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), LimitsError> {
        in_range("max_concurrent_calls", self.max_concurrent_calls.into(), 1, 1_000)?;
        in_range(
            "daily_spend_cap_micros",
            self.daily_spend_cap_micros,
            1,
            i64::MAX / 2,
        )?;
        in_range(
            "max_rate_per_minute_micros",
            self.max_rate_per_minute_micros,
            0,
            i64::MAX / 2,
        )?;
        in_range("max_ring_seconds", self.max_ring_seconds.into(), 1, 600)?;
        in_range("max_call_seconds", self.max_call_seconds.into(), 1, 86_400)
    }
}

impl GrantPolicy {
    pub fn validate(&self) -> Result<(), LimitsError> {
        in_range("interim_seconds", self.interim_seconds.into(), 1, 300)?;
        in_range("grant_seconds", self.grant_seconds.into(), 1, 3_600)?;
        in_range("validity_seconds", self.validity_seconds.into(), 1, 3_600)?;
        in_range("regrant_lead_seconds", self.regrant_lead_seconds.into(), 1, 3_600)?;
        if self.regrant_lead_seconds >= self.grant_seconds {
            return Err(LimitsError::LeadNotBelowGrant {
                lead: self.regrant_lead_seconds,
                grant: self.grant_seconds,
            });
        }
        Ok(())
    }
}

/// The account's state as its Account aggregate shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    NotOpen,
    Open,
    Frozen(Vec<FreezeReason>),
    Banned,
}

/// What the api knows about the caller when a call starts: from the Account (standing,
/// currency, available), the active-calls projection, today's spend, and the block list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerFacts {
    pub standing: Standing,
    pub currency: Currency,
    pub available: Money,
    /// Calls of this account that are live now, not counting this one.
    pub live_calls: u32,
    /// Charged so far this UTC day (settled calls plus the cost of live calls).
    pub spent_today: Money,
    /// The block list's notice when the number is blocked (emergency, premium, satellite, admin).
    pub blocked: Option<String>,
}

/// Why a call may not start. `code` and `limit` are the protocol's machine fields; the message
/// is for people and names the limit and its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("the quote expired at {expired_at}; ask for a new quote and dial again")]
    QuoteExpired {
        expired_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("the quote was made for another account; ask for a new quote")]
    QuoteOtherAccount,
    #[error(
        "the quote was made for another destination (prefix +{prefix}); ask for a quote for this number"
    )]
    QuoteOtherNumber { prefix: String },
    #[error("the quote is in {quote}, but this account keeps {account}; ask for a new quote")]
    QuoteCurrency { quote: Currency, account: Currency },
    #[error("the account has not been opened")]
    AccountNotOpen,
    #[error("the account is frozen ({}); calls are refused until it is unfrozen", reasons_text(.reasons))]
    AccountFrozen { reasons: Vec<FreezeReason> },
    #[error("the account is banned; calls are refused")]
    AccountBanned,
    #[error("{notice}")]
    DestinationBlocked { notice: String },
    #[error("at most {limit} calls may be live at once on this account (limit concurrent_calls = {limit}); end a call first")]
    ConcurrentCalls { limit: u32 },
    #[error("today's spend of {spent} has reached the daily spend cap of {cap} (limit daily_spend_cap = {cap}); calls resume tomorrow (UTC)")]
    DailySpendCap { cap: Money, spent: Money },
    #[error("this destination costs {rate} per minute, above the maximum price of {limit} per minute (limit max_price_per_minute = {limit})")]
    MaxPricePerMinute { limit: Money, rate: Money },
    #[error("{available} available does not pay the first billed increment ({needed}); buy credit first")]
    InsufficientCredit { available: Money, needed: Money },
}

fn reasons_text(reasons: &[FreezeReason]) -> String {
    let names: Vec<String> = reasons.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
    names.join(", ")
}

impl Denial {
    /// The protocol's machine code (docs/metering-protocol.md, "Errors").
    pub fn code(&self) -> &'static str {
        match self {
            Denial::QuoteExpired { .. } => "quote_expired",
            Denial::QuoteOtherAccount | Denial::QuoteCurrency { .. } => "quote_other_account",
            Denial::QuoteOtherNumber { .. } => "quote_other_number",
            Denial::AccountNotOpen => "account_not_open",
            Denial::AccountFrozen { .. } => "account_frozen",
            Denial::AccountBanned => "account_banned",
            Denial::DestinationBlocked { .. } => "destination_blocked",
            Denial::ConcurrentCalls { .. } => "concurrent_calls",
            Denial::DailySpendCap { .. } => "daily_spend_cap",
            Denial::MaxPricePerMinute { .. } => "max_price_per_minute",
            Denial::InsufficientCredit { .. } => "insufficient_credit",
        }
    }

    /// The limit a denial names and its value (micro-units for money), for the `limit` field.
    pub fn limit(&self) -> Option<(&'static str, i64)> {
        match self {
            Denial::ConcurrentCalls { limit } => Some(("max_concurrent_calls", (*limit).into())),
            Denial::DailySpendCap { cap, .. } => Some(("daily_spend_cap_micros", cap.micros())),
            Denial::MaxPricePerMinute { limit, .. } => Some(("max_rate_per_minute_micros", limit.micros())),
            _ => None,
        }
    }
}

/// May this caller start a call to a destination sold at `rate_per_minute`? Checks, in order:
/// account standing, block list, price, concurrent calls, daily spend. Credit for the first
/// increment is checked with the first grant, which knows the tariff's increments.
pub fn authorise(limits: &Limits, facts: &CallerFacts, rate_per_minute: Money) -> Result<(), Denial> {
    match &facts.standing {
        Standing::NotOpen => return Err(Denial::AccountNotOpen),
        Standing::Banned => return Err(Denial::AccountBanned),
        Standing::Frozen(reasons) => {
            return Err(Denial::AccountFrozen {
                reasons: reasons.clone(),
            })
        }
        Standing::Open => {}
    }
    if let Some(notice) = &facts.blocked {
        return Err(Denial::DestinationBlocked {
            notice: notice.clone(),
        });
    }
    if rate_per_minute.currency() != facts.currency {
        return Err(Denial::QuoteCurrency {
            quote: rate_per_minute.currency(),
            account: facts.currency,
        });
    }
    if rate_per_minute.micros() > limits.max_rate_per_minute_micros {
        return Err(Denial::MaxPricePerMinute {
            limit: Money::from_micros(limits.max_rate_per_minute_micros, facts.currency),
            rate: rate_per_minute,
        });
    }
    if facts.live_calls >= limits.max_concurrent_calls {
        return Err(Denial::ConcurrentCalls {
            limit: limits.max_concurrent_calls,
        });
    }
    if facts.spent_today.micros() >= limits.daily_spend_cap_micros {
        return Err(Denial::DailySpendCap {
            cap: Money::from_micros(limits.daily_spend_cap_micros, facts.currency),
            spent: facts.spent_today,
        });
    }
    Ok(())
}
