//! The rate corrections read model, beside the rate table: one row per `RatesCorrected`. It
//! sends `NOTIFY ringledger_rates` in the same transaction, so the api's rate book picks a
//! correction up as soon as it is committed and quotes within its range use the new price.
//! A projection of its own (not new tables in `rate_table`), so existing rate table versions
//! keep working without a rebuild.

use futures::future::BoxFuture;
use ringledger_domain::rates::correction::{CorrectionEvent, RatesCorrected};
use sqlx::PgConnection;

use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::rates::RATES_CHANNEL;
use crate::ProjectionError;

pub struct RateCorrectionsTable;

const CREATE: &str = "
CREATE TABLE rate_corrections_v{v} (
    number                  bigint PRIMARY KEY,
    prefix                  text        NOT NULL,
    deck_id                 uuid,
    currency                text        NOT NULL,
    old_cost_micros         bigint      NOT NULL,
    old_selling_micros      bigint      NOT NULL,
    new_cost_micros         bigint      NOT NULL,
    new_selling_micros      bigint      NOT NULL,
    effective_from          timestamptz NOT NULL,
    effective_to            timestamptz,
    reason                  text        NOT NULL,
    actor                   uuid        NOT NULL,
    corrected_at            timestamptz NOT NULL,
    position                bigint      NOT NULL
)";

impl Projection for RateCorrectionsTable {
    fn name(&self) -> &'static str {
        "rate_corrections"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["RateCorrections"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rate_corrections"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["number"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(apply_batch(conn, version, events))
    }
}

async fn apply_batch(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let table = versioned("rate_corrections", version);
    for recorded in events {
        let CorrectionEvent::RatesCorrected(c) = recorded.decode::<CorrectionEvent>()?;
        insert(conn, &table, &c, recorded).await?;
    }
    if !events.is_empty() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RATES_CHANNEL)
            .bind(version.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

async fn insert(
    conn: &mut PgConnection,
    table: &str,
    c: &RatesCorrected,
    recorded: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let number = i64::try_from(c.number)
        .map_err(|_| ProjectionError::Corrupt(format!("correction number {} is too large", c.number)))?;
    sqlx::query(&format!(
        "INSERT INTO {table} (number, prefix, deck_id, currency, old_cost_micros, old_selling_micros,
                              new_cost_micros, new_selling_micros, effective_from, effective_to, reason, actor,
                              corrected_at, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (number) DO NOTHING"
    ))
    .bind(number)
    .bind(&c.prefix)
    .bind(c.deck_id.map(|d| d.0))
    .bind(c.new.cost_per_minute.currency().as_str())
    .bind(c.old.cost_per_minute.micros())
    .bind(c.old.selling_per_minute.micros())
    .bind(c.new.cost_per_minute.micros())
    .bind(c.new.selling_per_minute.micros())
    .bind(c.effective_from)
    .bind(c.effective_to)
    .bind(&c.reason)
    .bind(c.actor.0)
    .bind(recorded.occurred_at)
    .bind(recorded.position.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
