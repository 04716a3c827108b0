//! The caller's facts a `start` is decided on, read fresh: standing, currency and available
//! from the Account stream (not a projection, which may lag), live calls as the distinct calls
//! holding open reservations on it, and today's spend as what settled today plus what live
//! calls hold. A race between two starts is bounded by the Account itself: it never reserves
//! beyond what is available.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ringledger_domain::account::Account;
use ringledger_domain::call::{CallerFacts, Standing};
use ringledger_domain::{AccountId, CallId, Money};
use sqlx::PgPool;

use super::CallsError;
use crate::ledger::AccountService;
use crate::store::PostgresStore;

pub(super) async fn gather(
    pool: &PgPool,
    accounts: &AccountService<PostgresStore>,
    account_id: AccountId,
    call_id: CallId,
    now: DateTime<Utc>,
) -> Result<CallerFacts, CallsError> {
    let account: Account = accounts
        .ledger()
        .load(&account_id.to_string())
        .await
        .map_err(|e| CallsError::Internal(e.to_string()))?;
    let standing = if account.id().is_none() {
        Standing::NotOpen
    } else if account.is_banned() {
        Standing::Banned
    } else if !account.frozen_reasons().is_empty() {
        Standing::Frozen(account.frozen_reasons().iter().copied().collect())
    } else {
        Standing::Open
    };
    let currency = account.currency().unwrap_or(ringledger_domain::Currency::USD);
    let open = account.open_reservations();
    let live: BTreeSet<CallId> = open
        .values()
        .map(|r| r.call_id)
        .filter(|c| *c != call_id)
        .collect();
    let held: i64 = open.values().map(|r| r.amount_micros).sum();
    let settled = settled_today(pool, account_id, now).await?;
    Ok(CallerFacts {
        standing,
        currency,
        available: account.money(account.balances().available),
        live_calls: u32::try_from(live.len()).unwrap_or(u32::MAX),
        spent_today: Money::from_micros(settled.saturating_add(held), currency),
        // Quotes are issued only for numbers the block list lets through.
        blocked: None,
    })
}

/// What calls settled on the account since midnight UTC charged, in micro-units.
async fn settled_today(pool: &PgPool, account_id: AccountId, now: DateTime<Utc>) -> Result<i64, CallsError> {
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or(now);
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload::jsonb -> 'charged' FROM events
          WHERE aggregate_type = 'Account' AND aggregate_id = $1
            AND event_type = 'ReservationSettled' AND occurred_at >= $2",
    )
    .bind(account_id.to_string())
    .bind(midnight)
    .fetch_all(pool)
    .await
    .map_err(|e| CallsError::Internal(e.to_string()))?;
    let mut total = 0i64;
    for value in rows {
        let charged: Money =
            serde_json::from_value(value).map_err(|e| CallsError::Internal(e.to_string()))?;
        total = total.saturating_add(charged.micros());
    }
    Ok(total)
}
