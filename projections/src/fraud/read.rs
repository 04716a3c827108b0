//! Reading the fraud signals through the live views (`fraud_calls`, …): what the process
//! manager evaluates a call with, and what the admin pages show.

use chrono::{DateTime, Duration, Utc};
use ringledger_domain::fraud::{AccountFacts, CallFacts, Purchase};
use ringledger_domain::{AccountId, CallId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::ProjectionError;

/// Calls looked at around one call at most (a window's worth on a very busy account).
pub const MAX_WINDOW_CALLS: i64 = 5_000;

pub(crate) fn call_from_row(r: &PgRow) -> Result<CallFacts, ProjectionError> {
    Ok(CallFacts {
        call_id: CallId(r.try_get("call_id")?),
        account_id: AccountId(r.try_get("account_id")?),
        placed_at: r.try_get("placed_at")?,
        matched_prefix: r.try_get("matched_prefix")?,
        country_iso: r.try_get("country_iso")?,
        currency: r.try_get("currency")?,
        rate_micros: r.try_get("rate_micros")?,
        answered: r.try_get("answered")?,
        ended_at: r.try_get("ended_at")?,
        billed_seconds: r.try_get("billed_seconds")?,
        cost_micros: r.try_get("cost_micros")?,
    })
}

const COLUMNS: &str = "call_id, account_id, placed_at, matched_prefix, country_iso, currency, rate_micros,
    answered, ended_at, billed_seconds, cost_micros";

pub async fn call_facts(pool: &PgPool, call: CallId) -> Result<Option<CallFacts>, ProjectionError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM fraud_calls WHERE call_id = $1"))
        .bind(call.0)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(call_from_row).transpose()
}

/// The account's calls placed in `[at - lookback_minutes, at]`, newest first, bounded.
pub async fn account_calls(
    pool: &PgPool,
    account: AccountId,
    at: DateTime<Utc>,
    lookback_minutes: i64,
) -> Result<Vec<CallFacts>, ProjectionError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM fraud_calls WHERE account_id = $1 AND placed_at >= $2 AND placed_at <= $3
          ORDER BY placed_at DESC LIMIT $4"
    ))
    .bind(account.0)
    .bind(at - Duration::minutes(lookback_minutes))
    .bind(at)
    .bind(MAX_WINDOW_CALLS)
    .fetch_all(pool)
    .await?;
    rows.iter().map(call_from_row).collect()
}

pub async fn account_facts(pool: &PgPool, account: AccountId) -> Result<AccountFacts, ProjectionError> {
    let opened_at: Option<DateTime<Utc>> =
        sqlx::query_scalar("SELECT opened_at FROM fraud_accounts WHERE account_id = $1")
            .bind(account.0)
            .fetch_optional(pool)
            .await?;
    let rows = sqlx::query(
        "SELECT at, paid_micros FROM fraud_purchases WHERE account_id = $1 ORDER BY at DESC LIMIT 100",
    )
    .bind(account.0)
    .fetch_all(pool)
    .await?;
    let mut purchases = rows
        .iter()
        .map(|r| {
            Ok(Purchase {
                at: r.try_get("at")?,
                paid_micros: r.try_get("paid_micros")?,
            })
        })
        .collect::<Result<Vec<_>, ProjectionError>>()?;
    purchases.reverse();
    Ok(AccountFacts { opened_at, purchases })
}

/// Flags recorded on the account's calls placed in `[from, to]`: (call, rule, placed_at, score).
pub async fn account_flags(
    pool: &PgPool,
    account: AccountId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(CallId, String, DateTime<Utc>, u16)>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT call_id, rule, placed_at, score FROM fraud_flags
          WHERE account_id = $1 AND placed_at >= $2 AND placed_at <= $3 LIMIT $4",
    )
    .bind(account.0)
    .bind(from)
    .bind(to)
    .bind(MAX_WINDOW_CALLS)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let score: i32 = r.try_get("score")?;
            Ok((
                CallId(r.try_get("call_id")?),
                r.try_get("rule")?,
                r.try_get("placed_at")?,
                u16::try_from(score).unwrap_or(u16::MAX),
            ))
        })
        .collect()
}

/// One flag for the admin pages.
#[derive(Debug, Clone)]
pub struct FlagView {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub rule: String,
    pub score: u16,
    pub evidence: String,
    pub placed_at: DateTime<Utc>,
    pub flagged_at: DateTime<Utc>,
}

/// The newest flags, optionally of one account.
pub async fn flags_page(
    pool: &PgPool,
    account: Option<AccountId>,
    limit: i64,
) -> Result<Vec<FlagView>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT call_id, account_id, rule, score, evidence, placed_at, flagged_at FROM fraud_flags
          WHERE $1::uuid IS NULL OR account_id = $1 ORDER BY flagged_at DESC, call_id LIMIT $2",
    )
    .bind(account.map(|a| a.0))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let score: i32 = r.try_get("score")?;
            Ok(FlagView {
                call_id: CallId(r.try_get("call_id")?),
                account_id: AccountId(r.try_get("account_id")?),
                rule: r.try_get("rule")?,
                score: u16::try_from(score).unwrap_or(u16::MAX),
                evidence: r.try_get("evidence")?,
                placed_at: r.try_get("placed_at")?,
                flagged_at: r.try_get("flagged_at")?,
            })
        })
        .collect()
}
