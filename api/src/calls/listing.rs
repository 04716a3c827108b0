//! Calls as pages show them, read from the call read models (`call_log`, `active_calls`):
//! a customer's history, the admin's global log with filters, and the live calls. The number
//! is shown masked only (country code and first digits, the last two), unsealed in memory
//! with the account's key for the rows of one page; a shredded key shows "number erased".
//! Never logs or returns a full number.

use chrono::{DateTime, NaiveDate, Utc};
use ringledger_domain::call::SealedDestination;
use ringledger_domain::{AccountId, CallId, Currency, Money};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{seal, CallsError};

/// Rows per page of a call log.
pub const PAGE_ROWS: i64 = 25;
/// Live calls the admin page lists at most.
pub const MAX_LIVE_ROWS: i64 = 500;

/// One call as a page shows it.
#[derive(Debug, Clone)]
pub struct CallRow {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub placed_at: Option<DateTime<Utc>>,
    pub country_iso: String,
    /// E.g. `+4477••••••78`; never the full number.
    pub number: String,
    pub state: String,
    pub billed_seconds: i64,
    pub charged: Money,
    pub cause: Option<String>,
}

impl CallRow {
    /// `m:ss`, or `h:mm:ss` past an hour.
    pub fn duration(&self) -> String {
        let s = self.billed_seconds.max(0);
        if s >= 3_600 {
            format!("{}:{:02}:{:02}", s / 3_600, (s / 60) % 60, s % 60)
        } else {
            format!("{}:{:02}", s / 60, s % 60)
        }
    }

    /// The cost for people: `0.0570 USD` (four decimals; the ledger keeps micro-units).
    pub fn cost(&self) -> String {
        let m = self.charged.micros();
        format!(
            "{}.{:04} {}",
            m / 1_000_000,
            (m % 1_000_000) / 100,
            self.charged.currency()
        )
    }

    pub fn cause_text(&self) -> String {
        self.cause.as_deref().unwrap_or("—").replace('_', " ")
    }

    pub fn when(&self) -> String {
        self.placed_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }
}

/// Which calls a log page shows.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub account: Option<AccountId>,
    /// UTC days, inclusive.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// An end or fail cause, e.g. `orphaned`, `account_banned`, `caller_hangup`.
    pub cause: Option<String>,
    /// 0-based.
    pub page: i64,
}

/// The number masked: `+`, up to four leading digits, bullets, the last two digits.
pub fn mask(digits: &str) -> String {
    let n = digits.len();
    if n < 6 {
        return format!("+{}", "•".repeat(n));
    }
    let head = 4.min(n - 4);
    format!(
        "+{}{}{}",
        &digits[..head],
        "•".repeat(n - head - 2),
        &digits[n - 2..]
    )
}

const SELECT: &str =
    "SELECT call_id, account_id, placed_at, country_iso, state, billed_seconds, charged_micros,
        currency, cause FROM call_log";

/// A page of the call log matching `filter`, newest first, and whether there is a next page.
pub async fn log_page(pool: &PgPool, filter: &CallFilter) -> Result<(Vec<CallRow>, bool), CallsError> {
    let from = filter
        .from
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let to = filter
        .to
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    let sql = format!(
        "{SELECT} WHERE ($1::uuid IS NULL OR account_id = $1)
            AND ($2::timestamptz IS NULL OR placed_at >= $2)
            AND ($3::timestamptz IS NULL OR placed_at < $3)
            AND ($4::text IS NULL OR cause = $4)
          ORDER BY placed_at DESC NULLS LAST, call_id LIMIT $5 OFFSET $6"
    );
    let rows = sqlx::query(&sql)
        .bind(filter.account.map(|a| a.0))
        .bind(from)
        .bind(to)
        .bind(filter.cause.as_deref())
        .bind(PAGE_ROWS + 1)
        .bind(filter.page.max(0).saturating_mul(PAGE_ROWS))
        .fetch_all(pool)
        .await
        .map_err(internal)?;
    let more = rows.len() as i64 > PAGE_ROWS;
    let mut calls = rows
        .iter()
        .take(PAGE_ROWS as usize)
        .map(row)
        .collect::<Result<Vec<_>, _>>()?;
    unmask_numbers(pool, &mut calls).await?;
    Ok((calls, more))
}

/// The calls live now (the `active_calls` read model), oldest first.
pub async fn live_calls(pool: &PgPool) -> Result<Vec<CallRow>, CallsError> {
    let sql = "SELECT l.call_id, l.account_id, l.placed_at, l.country_iso, l.state, l.billed_seconds,
                      l.charged_micros, l.currency, l.cause
                 FROM active_calls a JOIN call_log l ON l.call_id = a.call_id
                ORDER BY a.placed_at, a.call_id LIMIT $1";
    let rows = sqlx::query(sql)
        .bind(MAX_LIVE_ROWS)
        .fetch_all(pool)
        .await
        .map_err(internal)?;
    let mut calls = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
    unmask_numbers(pool, &mut calls).await?;
    Ok(calls)
}

fn internal(e: sqlx::Error) -> CallsError {
    CallsError::Internal(format!("call log: {e}"))
}

fn row(r: &sqlx::postgres::PgRow) -> Result<CallRow, CallsError> {
    let currency: String = r.try_get("currency").map_err(internal)?;
    let currency = currency.parse::<Currency>().unwrap_or(Currency::USD);
    Ok(CallRow {
        call_id: CallId(r.try_get("call_id").map_err(internal)?),
        account_id: AccountId(r.try_get("account_id").map_err(internal)?),
        placed_at: r.try_get("placed_at").map_err(internal)?,
        country_iso: r.try_get("country_iso").map_err(internal)?,
        number: String::new(),
        state: r.try_get("state").map_err(internal)?,
        billed_seconds: r.try_get("billed_seconds").map_err(internal)?,
        charged: Money::from_micros(r.try_get("charged_micros").map_err(internal)?, currency),
        cause: r.try_get("cause").map_err(internal)?,
    })
}

/// Fills each row's masked number: the sealed destination from its `CallPlaced`, opened with
/// the account's key when it still exists (a deleted key means the number was erased).
async fn unmask_numbers(pool: &PgPool, calls: &mut [CallRow]) -> Result<(), CallsError> {
    if calls.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = calls.iter().map(|c| c.call_id.to_string()).collect();
    let sealed: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, payload::jsonb -> 'destination' FROM events
          WHERE aggregate_type = 'Call' AND aggregate_id = ANY($1) AND event_type = 'CallPlaced'",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .map_err(internal)?;
    let accounts: Vec<Uuid> = calls.iter().map(|c| c.account_id.0).collect();
    let keys: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT account_id, key FROM account_keys WHERE account_id = ANY($1)")
            .bind(&accounts)
            .fetch_all(pool)
            .await
            .map_err(internal)?;
    for call in calls.iter_mut() {
        let id = call.call_id.to_string();
        let destination = sealed
            .iter()
            .find(|(c, _)| *c == id)
            .and_then(|(_, v)| serde_json::from_value::<SealedDestination>(v.clone()).ok());
        let key: Option<[u8; 32]> = keys
            .iter()
            .find(|(a, _)| *a == call.account_id.0)
            .and_then(|(_, k)| k.clone().try_into().ok());
        call.number = match (destination, key) {
            (Some(d), Some(k)) => seal::open(&k, call.call_id, &d)
                .map(|digits| mask(&digits))
                .unwrap_or_else(|| "number unreadable".to_owned()),
            _ => "number erased".to_owned(),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_number_keeps_its_start_and_last_two_digits_only() {
        assert_eq!(mask("447712345678"), "+4477••••••78");
        assert_eq!(mask("12125550100"), "+1212•••••00");
        assert_eq!(mask("3312"), "+••••");
        assert!(!mask("447712345678").contains("123456"));
    }
}
