//! Point in time: an account's balances as of any instant, computed two ways that must agree
//! — by folding its stream, and from the statement projection. "As of T" is each stream up to
//! its last event with `occurred_at ≤ T` (ARCHITECTURE.md).

use chrono::{DateTime, Utc};
use ringledger_domain::account::{Account, AccountEvent};
use ringledger_domain::LedgerAccount;
use serde::Serialize;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::ProjectionError;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Balances {
    pub available_micros: i64,
    pub reserved_micros: i64,
    pub receivable_micros: i64,
    pub disputed_micros: i64,
    /// The last event that moved money on the stream, up to the instant (0: none).
    pub last_sequence: i64,
}

/// One event of an account's stream, as an audit shows it.
#[derive(Debug, Clone, Serialize)]
pub struct TracedEvent {
    pub sequence: i64,
    pub global_position: i64,
    pub event_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event: AccountEvent,
}

/// The account's events with `occurred_at ≤ at` (all of them when `at` is `None`).
pub async fn events(
    pool: &PgPool,
    account: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<TracedEvent>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT sequence, global_position, event_id, payload::text AS payload, occurred_at FROM events
          WHERE aggregate_type = 'Account' AND aggregate_id = $1 AND ($2::timestamptz IS NULL OR occurred_at <= $2)
          ORDER BY sequence",
    )
    .bind(account.to_string())
    .bind(at)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let global_position: i64 = r.try_get("global_position")?;
            let payload: String = r.try_get("payload")?;
            let event = serde_json::from_str(&payload).map_err(|e| ProjectionError::Decode {
                global_position,
                message: e.to_string(),
            })?;
            Ok(TracedEvent {
                sequence: r.try_get("sequence")?,
                global_position,
                event_id: r.try_get("event_id")?,
                occurred_at: r.try_get("occurred_at")?,
                event,
            })
        })
        .collect()
}

/// Balances as of `at`, by folding the stream with the domain's own fold.
pub async fn by_fold(pool: &PgPool, account: Uuid, at: DateTime<Utc>) -> Result<Balances, ProjectionError> {
    let mut state = Account::default();
    let mut last_sequence = 0;
    for traced in events(pool, account, Some(at)).await? {
        state.fold(&traced.event);
        // Like the statement projection, count only events that moved money.
        if traced.event.postings().is_some() {
            last_sequence = traced.sequence;
        }
    }
    let b = state.balances();
    Ok(Balances {
        available_micros: b.available,
        reserved_micros: b.reserved,
        receivable_micros: b.receivable,
        disputed_micros: b.disputed,
        last_sequence,
    })
}

/// Balances as of `at`, from the running balances of the (live) statement projection.
pub async fn from_statements(
    pool: &PgPool,
    account: Uuid,
    at: DateTime<Utc>,
) -> Result<Balances, ProjectionError> {
    let rows = sqlx::query(
        "SELECT DISTINCT ON (ledger_account) ledger_account, running_balance_micros, sequence
           FROM statement_lines WHERE account_id = $1 AND occurred_at <= $2
          ORDER BY ledger_account, sequence DESC",
    )
    .bind(account)
    .bind(at)
    .fetch_all(pool)
    .await?;
    let mut out = Balances::default();
    for r in rows {
        let ledger: String = r.try_get("ledger_account")?;
        let running: i64 = r.try_get("running_balance_micros")?;
        out.last_sequence = out.last_sequence.max(r.try_get("sequence")?);
        match LedgerAccount::CUSTOMER.into_iter().find(|a| a.as_str() == ledger) {
            Some(LedgerAccount::Available) => out.available_micros = running,
            Some(LedgerAccount::Reserved) => out.reserved_micros = running,
            Some(LedgerAccount::Receivable) => out.receivable_micros = running,
            Some(LedgerAccount::Disputed) => out.disputed_micros = running,
            _ => {
                return Err(ProjectionError::Corrupt(format!(
                    "statement line on unknown ledger account {ledger}"
                )))
            }
        }
    }
    Ok(out)
}
