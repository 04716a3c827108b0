//! The SQL half of the fraud-signals projection: loads the calls a batch touches, folds them
//! with `fold_call`, writes them back; account facts and flags are inserts.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use futures::future::BoxFuture;
use ringledger_domain::account::AccountEvent;
use ringledger_domain::call::CallEvent;
use ringledger_domain::fraud::CallFacts;
use sqlx::PgConnection;
use uuid::Uuid;

use super::fold::{flag_row, fold_call};
use super::read::call_from_row;
use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

pub struct FraudSignals;

const CREATE: &str = "
CREATE TABLE fraud_accounts_v{v} (
    account_id uuid PRIMARY KEY,
    opened_at  timestamptz NOT NULL
);
CREATE TABLE fraud_calls_v{v} (
    call_id        uuid PRIMARY KEY,
    account_id     uuid        NOT NULL,
    placed_at      timestamptz NOT NULL,
    matched_prefix text        NOT NULL,
    country_iso    text        NOT NULL,
    currency       text        NOT NULL,
    rate_micros    bigint      NOT NULL,
    answered       boolean     NOT NULL,
    ended_at       timestamptz,
    billed_seconds bigint      NOT NULL,
    cost_micros    bigint      NOT NULL
);
CREATE TABLE fraud_purchases_v{v} (
    account_id  uuid        NOT NULL,
    sequence    bigint      NOT NULL,
    at          timestamptz NOT NULL,
    paid_micros bigint      NOT NULL,
    PRIMARY KEY (account_id, sequence)
);
CREATE TABLE fraud_flags_v{v} (
    call_id    uuid        NOT NULL,
    rule       text        NOT NULL,
    account_id uuid        NOT NULL,
    placed_at  timestamptz NOT NULL,
    score      integer     NOT NULL,
    evidence   text        NOT NULL,
    flagged_at timestamptz NOT NULL,
    sequence   bigint      NOT NULL,
    PRIMARY KEY (call_id, sequence)
)";

const INDEX: &str = "
CREATE INDEX IF NOT EXISTS fraud_calls_v{v}_account ON fraud_calls_v{v} (account_id, placed_at);
CREATE INDEX IF NOT EXISTS fraud_flags_v{v}_account ON fraud_flags_v{v} (account_id, placed_at);
CREATE INDEX IF NOT EXISTS fraud_flags_v{v}_flagged ON fraud_flags_v{v} (flagged_at)";

impl Projection for FraudSignals {
    fn name(&self) -> &'static str {
        "fraud_signals"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Account", "Call"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["fraud_accounts", "fraud_calls", "fraud_purchases", "fraud_flags"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn index_sql(&self) -> &'static str {
        INDEX
    }
    fn key_columns(&self, table: &str) -> &'static [&'static str] {
        match table {
            "fraud_accounts" => &["account_id"],
            "fraud_purchases" => &["account_id", "sequence"],
            "fraud_flags" => &["call_id", "sequence"],
            _ => &["call_id"],
        }
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(apply(conn, version, events))
    }
}

async fn apply(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let calls_table = versioned("fraud_calls", version);
    let mut calls: HashMap<Uuid, Option<CallFacts>> = HashMap::new();
    for recorded in events {
        if recorded.aggregate_type == "Account" {
            apply_account(conn, version, recorded).await?;
            continue;
        }
        let id = crate::stream_uuid(recorded, "call")?;
        let event: CallEvent = recorded.decode()?;
        let facts = match calls.entry(id) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => slot.insert(load_call(conn, &calls_table, id).await?),
        };
        fold_call(facts, &event, recorded.occurred_at);
        if let Some(flag) = facts
            .as_ref()
            .and_then(|f| flag_row(f, &event, recorded.occurred_at))
        {
            sqlx::query(&format!(
                "INSERT INTO {} (call_id, rule, account_id, placed_at, score, evidence, flagged_at, sequence)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                versioned("fraud_flags", version)
            ))
            .bind(id)
            .bind(&flag.rule)
            .bind(flag.account_id.0)
            .bind(flag.placed_at)
            .bind(i32::from(flag.score))
            .bind(&flag.evidence)
            .bind(flag.flagged_at)
            .bind(recorded.sequence)
            .execute(&mut *conn)
            .await?;
        }
    }
    for facts in calls.values().flatten() {
        store_call(conn, &calls_table, facts).await?;
    }
    Ok(())
}

async fn apply_account(
    conn: &mut PgConnection,
    version: i32,
    recorded: &RecordedEvent,
) -> Result<(), ProjectionError> {
    if !matches!(recorded.event_type.as_str(), "AccountOpened" | "CreditPurchased") {
        return Ok(());
    }
    let account = crate::account_uuid(recorded)?;
    match recorded.decode::<AccountEvent>()? {
        AccountEvent::AccountOpened { .. } => {
            sqlx::query(&format!(
                "INSERT INTO {} (account_id, opened_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                versioned("fraud_accounts", version)
            ))
            .bind(account)
            .bind(recorded.occurred_at)
            .execute(&mut *conn)
            .await?;
        }
        AccountEvent::CreditPurchased { paid, .. } => {
            sqlx::query(&format!(
                "INSERT INTO {} (account_id, sequence, at, paid_micros) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                versioned("fraud_purchases", version)
            ))
            .bind(account)
            .bind(recorded.sequence)
            .bind(recorded.occurred_at)
            .bind(paid.micros())
            .execute(&mut *conn)
            .await?;
        }
        _ => {}
    }
    Ok(())
}

const COLUMNS: &str = "call_id, account_id, placed_at, matched_prefix, country_iso, currency, rate_micros,
    answered, ended_at, billed_seconds, cost_micros";

async fn load_call(
    conn: &mut PgConnection,
    table: &str,
    id: Uuid,
) -> Result<Option<CallFacts>, ProjectionError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM {table} WHERE call_id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(call_from_row).transpose()
}

async fn store_call(conn: &mut PgConnection, table: &str, f: &CallFacts) -> Result<(), ProjectionError> {
    sqlx::query(&format!(
        "INSERT INTO {table} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (call_id) DO UPDATE SET answered = EXCLUDED.answered, ended_at = EXCLUDED.ended_at,
           billed_seconds = EXCLUDED.billed_seconds, cost_micros = EXCLUDED.cost_micros"
    ))
    .bind(f.call_id.0)
    .bind(f.account_id.0)
    .bind(f.placed_at)
    .bind(&f.matched_prefix)
    .bind(&f.country_iso)
    .bind(&f.currency)
    .bind(f.rate_micros)
    .bind(f.answered)
    .bind(f.ended_at)
    .bind(f.billed_seconds)
    .bind(f.cost_micros)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
