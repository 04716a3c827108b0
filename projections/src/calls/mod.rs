//! Call read models: `call_log` (one row per call: account, country, matched prefix, state,
//! times, billed seconds, cost, charged, cause — never the number, sealed or not) with
//! `active_calls` (the live ones, for the sweeper and the live view), and `open_reservations`
//! (from Account events: what is held for calls now). `CallLogRow::apply` is the pure fold;
//! the SQL around it loads only the rows a batch touches.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use ringledger_domain::account::AccountEvent;
use ringledger_domain::call::CallEvent;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

pub mod hangups;

use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

/// One call as the log shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallLogRow {
    pub account_id: Uuid,
    pub country_iso: String,
    pub matched_prefix: String,
    pub currency: String,
    /// `placed`, `ringing`, `answered`, `ended` or `failed`.
    pub state: String,
    pub placed_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub granted_seconds: i64,
    pub reserved_micros: i64,
    pub billed_seconds: i64,
    pub cost_micros: i64,
    pub charged_micros: i64,
    pub cause: Option<String>,
}

fn text<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl CallLogRow {
    pub fn is_live(&self) -> bool {
        !matches!(self.state.as_str(), "ended" | "failed")
    }

    /// Folds one event of the call's stream, which occurred at `at`.
    pub fn apply(&mut self, event: &CallEvent, at: DateTime<Utc>) {
        self.last_activity_at = Some(at);
        match event {
            CallEvent::CallPlaced {
                account_id,
                country_iso,
                matched_prefix,
                tariff,
                placed_at,
                ..
            } => {
                self.account_id = account_id.0;
                self.country_iso = country_iso.clone();
                self.matched_prefix = matched_prefix.clone();
                self.currency = tariff.rate_per_minute.currency().to_string();
                self.state = "placed".into();
                self.placed_at = Some(*placed_at);
            }
            CallEvent::CallGranted {
                reserved,
                granted_seconds,
                ..
            } => {
                self.reserved_micros = reserved.micros();
                self.granted_seconds = self.granted_seconds.max(count(*granted_seconds));
            }
            CallEvent::CallRinging { .. } if self.state == "placed" => self.state = "ringing".into(),
            CallEvent::CallAnswered { .. } => {
                self.state = "answered".into();
                self.answered_at = Some(at);
            }
            CallEvent::CallTicked {
                billed_seconds, cost, ..
            } => {
                self.state = "answered".into();
                self.answered_at = self.answered_at.or(Some(at));
                self.billed_seconds = count(*billed_seconds);
                self.cost_micros = cost.micros();
            }
            CallEvent::CallEnded {
                cause,
                billed_seconds,
                cost,
                charged,
                ..
            } => {
                self.state = "ended".into();
                self.ended_at = Some(at);
                self.billed_seconds = count(*billed_seconds);
                self.cost_micros = cost.micros();
                self.charged_micros = charged.micros();
                self.cause = text(cause);
            }
            CallEvent::CallFailed { cause, .. } => {
                self.state = "failed".into();
                self.ended_at = Some(at);
                self.cause = text(cause);
            }
            CallEvent::CallReRated {
                new_cost,
                new_charged,
                ..
            } => {
                self.cost_micros = new_cost.micros();
                self.charged_micros = new_charged.micros();
            }
            _ => {}
        }
    }
}

pub struct CallLog;

const CALL_LOG_CREATE: &str = "
CREATE TABLE call_log_v{v} (
    call_id          uuid PRIMARY KEY,
    account_id       uuid        NOT NULL,
    country_iso      text        NOT NULL,
    matched_prefix   text        NOT NULL,
    currency         text        NOT NULL,
    state            text        NOT NULL,
    placed_at        timestamptz,
    answered_at      timestamptz,
    ended_at         timestamptz,
    last_activity_at timestamptz,
    granted_seconds  bigint      NOT NULL,
    reserved_micros  bigint      NOT NULL,
    billed_seconds   bigint      NOT NULL,
    cost_micros      bigint      NOT NULL,
    charged_micros   bigint      NOT NULL,
    cause            text
);
CREATE TABLE active_calls_v{v} (
    call_id          uuid PRIMARY KEY,
    account_id       uuid        NOT NULL,
    state            text        NOT NULL,
    placed_at        timestamptz,
    last_activity_at timestamptz
)";

const CALL_LOG_INDEX: &str = "
CREATE INDEX IF NOT EXISTS call_log_v{v}_account ON call_log_v{v} (account_id, placed_at);
CREATE INDEX IF NOT EXISTS active_calls_v{v}_activity ON active_calls_v{v} (last_activity_at)";

const COLUMNS: &str =
    "account_id, country_iso, matched_prefix, currency, state, placed_at, answered_at, ended_at,
    last_activity_at, granted_seconds, reserved_micros, billed_seconds, cost_micros, charged_micros, cause";

impl Projection for CallLog {
    fn name(&self) -> &'static str {
        "call_log"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Call"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["call_log", "active_calls"]
    }
    fn create_sql(&self) -> &'static str {
        CALL_LOG_CREATE
    }
    fn index_sql(&self) -> &'static str {
        CALL_LOG_INDEX
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["call_id"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(apply_call_log(conn, version, events))
    }
}

async fn apply_call_log(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let log = versioned("call_log", version);
    let active = versioned("active_calls", version);
    let mut rows: HashMap<Uuid, CallLogRow> = HashMap::new();
    for recorded in events {
        let id = crate::stream_uuid(recorded, "call")?;
        let event: CallEvent = recorded.decode()?;
        let row = match rows.entry(id) {
            Entry::Occupied(row) => row.into_mut(),
            Entry::Vacant(slot) => slot.insert(load_row(conn, &log, id).await?.unwrap_or_default()),
        };
        row.apply(&event, recorded.occurred_at);
    }
    for (id, row) in &rows {
        store_row(conn, &log, *id, row).await?;
        sqlx::query(&format!("DELETE FROM {active} WHERE call_id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
        if row.is_live() {
            sqlx::query(&format!(
                "INSERT INTO {active} (call_id, account_id, state, placed_at, last_activity_at) VALUES ($1, $2, $3, $4, $5)"
            ))
            .bind(id)
            .bind(row.account_id)
            .bind(&row.state)
            .bind(row.placed_at)
            .bind(row.last_activity_at)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

async fn load_row(
    conn: &mut PgConnection,
    table: &str,
    id: Uuid,
) -> Result<Option<CallLogRow>, ProjectionError> {
    let found = sqlx::query(&format!("SELECT {COLUMNS} FROM {table} WHERE call_id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(r) = found else { return Ok(None) };
    Ok(Some(CallLogRow {
        account_id: r.try_get("account_id")?,
        country_iso: r.try_get("country_iso")?,
        matched_prefix: r.try_get("matched_prefix")?,
        currency: r.try_get("currency")?,
        state: r.try_get("state")?,
        placed_at: r.try_get("placed_at")?,
        answered_at: r.try_get("answered_at")?,
        ended_at: r.try_get("ended_at")?,
        last_activity_at: r.try_get("last_activity_at")?,
        granted_seconds: r.try_get("granted_seconds")?,
        reserved_micros: r.try_get("reserved_micros")?,
        billed_seconds: r.try_get("billed_seconds")?,
        cost_micros: r.try_get("cost_micros")?,
        charged_micros: r.try_get("charged_micros")?,
        cause: r.try_get("cause")?,
    }))
}

async fn store_row(
    conn: &mut PgConnection,
    table: &str,
    id: Uuid,
    row: &CallLogRow,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO {table} (call_id, {COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (call_id) DO UPDATE SET account_id = EXCLUDED.account_id, country_iso = EXCLUDED.country_iso,
           matched_prefix = EXCLUDED.matched_prefix, currency = EXCLUDED.currency, state = EXCLUDED.state,
           placed_at = EXCLUDED.placed_at, answered_at = EXCLUDED.answered_at, ended_at = EXCLUDED.ended_at,
           last_activity_at = EXCLUDED.last_activity_at, granted_seconds = EXCLUDED.granted_seconds,
           reserved_micros = EXCLUDED.reserved_micros, billed_seconds = EXCLUDED.billed_seconds,
           cost_micros = EXCLUDED.cost_micros, charged_micros = EXCLUDED.charged_micros, cause = EXCLUDED.cause"
    );
    sqlx::query(&sql)
        .bind(id)
        .bind(row.account_id)
        .bind(&row.country_iso)
        .bind(&row.matched_prefix)
        .bind(&row.currency)
        .bind(&row.state)
        .bind(row.placed_at)
        .bind(row.answered_at)
        .bind(row.ended_at)
        .bind(row.last_activity_at)
        .bind(row.granted_seconds)
        .bind(row.reserved_micros)
        .bind(row.billed_seconds)
        .bind(row.cost_micros)
        .bind(row.charged_micros)
        .bind(&row.cause)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What is held on accounts for calls now: one row per open reservation.
pub struct OpenReservations;

const RESERVATIONS_CREATE: &str = "
CREATE TABLE open_reservations_v{v} (
    reservation_id uuid PRIMARY KEY,
    account_id     uuid        NOT NULL,
    call_id        uuid        NOT NULL,
    amount_micros  bigint      NOT NULL,
    currency       text        NOT NULL,
    reserved_at    timestamptz NOT NULL
);
CREATE INDEX open_reservations_v{v}_call ON open_reservations_v{v} (call_id)";

impl Projection for OpenReservations {
    fn name(&self) -> &'static str {
        "open_reservations"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Account"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["open_reservations"]
    }
    fn create_sql(&self) -> &'static str {
        RESERVATIONS_CREATE
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["reservation_id"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(apply_reservations(conn, version, events))
    }
}

async fn apply_reservations(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let table = versioned("open_reservations", version);
    for recorded in events {
        let event: AccountEvent = recorded.decode()?;
        match event {
            AccountEvent::CreditReserved {
                reservation_id,
                call_id,
                amount,
                ..
            } => {
                sqlx::query(&format!(
                    "INSERT INTO {table} (reservation_id, account_id, call_id, amount_micros, currency, reserved_at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (reservation_id) DO NOTHING"
                ))
                .bind(reservation_id.0)
                .bind(crate::account_uuid(recorded)?)
                .bind(call_id.0)
                .bind(amount.micros())
                .bind(amount.currency().to_string())
                .bind(recorded.occurred_at)
                .execute(&mut *conn)
                .await?;
            }
            AccountEvent::ReservationSettled { reservation_ids, .. } => {
                let ids: Vec<Uuid> = reservation_ids.iter().map(|r| r.0).collect();
                sqlx::query(&format!("DELETE FROM {table} WHERE reservation_id = ANY($1)"))
                    .bind(ids)
                    .execute(&mut *conn)
                    .await?;
            }
            AccountEvent::ReservationReleased { reservation_id, .. } => {
                sqlx::query(&format!("DELETE FROM {table} WHERE reservation_id = $1"))
                    .bind(reservation_id.0)
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
