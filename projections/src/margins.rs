//! Margin records: per call, what the customer paid (revenue, after every re-rating refund),
//! what the call cost us (our rate from the quote, then from the latest correction) and the
//! margin between them; and `call_rerates`, one row per `CallReRated` naming the correction
//! and who made it (the audit trail of re-rating). `call_margins` is also how the re-rating
//! process manager finds the calls a correction covers (by matched prefix and placement time)
//! without reading the log. `MarginRow::apply` is the pure fold; the SQL loads and writes a
//! batch's rows in one statement each.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use ringledger_domain::call::{our_cost, talk_seconds, CallEvent};
use ringledger_domain::{BillingPlan, Currency, Money};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

/// One call's money as it stands after corrections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarginRow {
    pub account_id: Uuid,
    pub country_iso: String,
    pub matched_prefix: String,
    pub currency: String,
    /// `live`, `ended` or `failed`.
    pub state: String,
    pub placed_at: Option<DateTime<Utc>>,
    pub talk_ms: i64,
    pub billed_seconds: i64,
    pub selling_rate_micros: i64,
    pub connect_fee_micros: i64,
    pub first_increment: i32,
    pub next_increment: i32,
    pub reserved_micros: i64,
    /// The talk at the selling price in force (the call's `cost`).
    pub price_micros: i64,
    /// What the customer paid: charged at the end, less every re-rating refund.
    pub revenue_micros: i64,
    pub refunded_micros: i64,
    pub our_rate_micros: Option<i64>,
    pub our_cost_micros: Option<i64>,
    pub margin_micros: Option<i64>,
    pub corrections: i32,
    pub last_correction: Option<String>,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl MarginRow {
    /// A row read with [`COLUMNS`].
    pub fn from_row(r: &sqlx::postgres::PgRow) -> Result<MarginRow, sqlx::Error> {
        Ok(MarginRow {
            account_id: r.try_get("account_id")?,
            country_iso: r.try_get("country_iso")?,
            matched_prefix: r.try_get("matched_prefix")?,
            currency: r.try_get("currency")?,
            state: r.try_get("state")?,
            placed_at: r.try_get("placed_at")?,
            talk_ms: r.try_get("talk_ms")?,
            billed_seconds: r.try_get("billed_seconds")?,
            selling_rate_micros: r.try_get("selling_rate_micros")?,
            connect_fee_micros: r.try_get("connect_fee_micros")?,
            first_increment: r.try_get("first_increment")?,
            next_increment: r.try_get("next_increment")?,
            reserved_micros: r.try_get("reserved_micros")?,
            price_micros: r.try_get("price_micros")?,
            revenue_micros: r.try_get("revenue_micros")?,
            refunded_micros: r.try_get("refunded_micros")?,
            our_rate_micros: r.try_get("our_rate_micros")?,
            our_cost_micros: r.try_get("our_cost_micros")?,
            margin_micros: r.try_get("margin_micros")?,
            corrections: r.try_get("corrections")?,
            last_correction: r.try_get("last_correction")?,
        })
    }

    fn currency(&self) -> Currency {
        Currency::parse(&self.currency).unwrap_or(Currency::USD)
    }

    /// The call's billing plan, for our cost side.
    pub fn plan(&self) -> Option<BillingPlan> {
        BillingPlan::new(
            Money::from_micros(self.connect_fee_micros, self.currency()),
            u32::try_from(self.first_increment).ok()?,
            u32::try_from(self.next_increment).ok()?,
        )
        .ok()
    }

    pub fn talk_seconds(&self) -> u64 {
        talk_seconds(u64::try_from(self.talk_ms).unwrap_or(0))
    }

    fn rate_ours(&mut self) {
        let currency = self.currency();
        let cost = match (self.our_rate_micros, self.plan()) {
            (Some(rate), Some(plan)) => {
                our_cost(Money::from_micros(rate, currency), &plan, self.talk_seconds())
                    .ok()
                    .map(|m| m.micros())
            }
            _ => None,
        };
        self.our_cost_micros = cost;
        self.margin();
    }

    fn margin(&mut self) {
        self.margin_micros = self
            .our_cost_micros
            .and_then(|c| self.revenue_micros.checked_sub(c));
    }

    pub fn apply(&mut self, event: &CallEvent) {
        match event {
            CallEvent::CallPlaced {
                account_id,
                country_iso,
                matched_prefix,
                tariff,
                cost_per_minute,
                placed_at,
                ..
            } => {
                self.account_id = account_id.0;
                self.country_iso = country_iso.clone();
                self.matched_prefix = matched_prefix.clone();
                self.currency = tariff.rate_per_minute.currency().to_string();
                self.state = "live".into();
                self.placed_at = Some(*placed_at);
                self.selling_rate_micros = tariff.rate_per_minute.micros();
                self.connect_fee_micros = tariff.plan.connect_fee.micros();
                self.first_increment = i32::try_from(tariff.plan.first_increment_seconds).unwrap_or(i32::MAX);
                self.next_increment = i32::try_from(tariff.plan.next_increment_seconds).unwrap_or(i32::MAX);
                self.our_rate_micros = cost_per_minute.map(|m| m.micros());
            }
            CallEvent::CallGranted { reserved, .. } => self.reserved_micros = reserved.micros(),
            CallEvent::CallEnded {
                talk_ms,
                billed_seconds,
                cost,
                reserved,
                charged,
                ..
            } => {
                self.state = "ended".into();
                self.talk_ms = count(*talk_ms);
                self.billed_seconds = count(*billed_seconds);
                self.reserved_micros = reserved.micros();
                self.price_micros = cost.micros();
                self.revenue_micros = charged.micros();
                self.rate_ours();
            }
            CallEvent::CallFailed { .. } => self.state = "failed".into(),
            CallEvent::CallReRated {
                correction,
                tariff,
                new_cost,
                new_charged,
                refund,
                our_rate_per_minute,
                new_our_cost,
                ..
            } => {
                self.selling_rate_micros = tariff.rate_per_minute.micros();
                self.price_micros = new_cost.micros();
                self.revenue_micros = new_charged.micros();
                self.refunded_micros = self.refunded_micros.saturating_add(refund.micros());
                self.our_rate_micros = our_rate_per_minute.map(|m| m.micros()).or(self.our_rate_micros);
                match new_our_cost {
                    Some(c) => {
                        self.our_cost_micros = Some(c.micros());
                        self.margin();
                    }
                    None => self.rate_ours(),
                }
                self.corrections = self.corrections.saturating_add(1);
                self.last_correction = Some(correction.clone());
            }
            _ => {}
        }
    }
}

pub struct CallMargins;

const CREATE: &str = "
CREATE TABLE call_margins_v{v} (
    call_id             uuid PRIMARY KEY,
    account_id          uuid        NOT NULL,
    country_iso         text        NOT NULL,
    matched_prefix      text        NOT NULL,
    currency            text        NOT NULL,
    state               text        NOT NULL,
    placed_at           timestamptz,
    talk_ms             bigint      NOT NULL,
    billed_seconds      bigint      NOT NULL,
    selling_rate_micros bigint      NOT NULL,
    connect_fee_micros  bigint      NOT NULL,
    first_increment     integer     NOT NULL,
    next_increment      integer     NOT NULL,
    reserved_micros     bigint      NOT NULL,
    price_micros        bigint      NOT NULL,
    revenue_micros      bigint      NOT NULL,
    refunded_micros     bigint      NOT NULL,
    our_rate_micros     bigint,
    our_cost_micros     bigint,
    margin_micros       bigint,
    corrections         integer     NOT NULL,
    last_correction     text
);
CREATE TABLE call_rerates_v{v} (
    call_id             uuid        NOT NULL,
    correction          text        NOT NULL,
    sequence            bigint      NOT NULL,
    account_id          uuid        NOT NULL,
    actor               uuid        NOT NULL,
    old_charged_micros  bigint      NOT NULL,
    new_charged_micros  bigint      NOT NULL,
    refund_micros       bigint      NOT NULL,
    old_our_cost_micros bigint,
    new_our_cost_micros bigint,
    rerated_at          timestamptz NOT NULL,
    position            bigint      NOT NULL,
    PRIMARY KEY (call_id, correction)
);
CREATE INDEX call_margins_v{v}_prefix ON call_margins_v{v} (matched_prefix, placed_at, call_id)";

const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS call_margins_v{v}_account ON call_margins_v{v} (account_id);
CREATE INDEX IF NOT EXISTS call_rerates_v{v}_account ON call_rerates_v{v} (account_id, position)";

/// The columns of a `call_margins` row after `call_id`.
pub const COLUMNS: &str = "account_id, country_iso, matched_prefix, currency, state, placed_at, talk_ms, billed_seconds,
    selling_rate_micros, connect_fee_micros, first_increment, next_increment, reserved_micros, price_micros,
    revenue_micros, refunded_micros, our_rate_micros, our_cost_micros, margin_micros, corrections, last_correction";

impl Projection for CallMargins {
    fn name(&self) -> &'static str {
        "call_margins"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Call"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["call_margins", "call_rerates"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn index_sql(&self) -> &'static str {
        INDEXES
    }
    fn key_columns(&self, table: &str) -> &'static [&'static str] {
        match table {
            "call_rerates" => &["call_id", "correction"],
            _ => &["call_id"],
        }
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

/// Only these events change a margin row; the rest of a call's stream (ticks) is skipped
/// without decoding.
fn relevant(event_type: &str) -> bool {
    matches!(
        event_type,
        "CallPlaced" | "CallGranted" | "CallEnded" | "CallFailed" | "CallReRated"
    )
}

async fn apply_batch(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let table = versioned("call_margins", version);
    let mut ids: Vec<Uuid> = Vec::new();
    let mut decoded = Vec::new();
    for recorded in events.iter().filter(|e| relevant(&e.event_type)) {
        let id = crate::stream_uuid(recorded, "call")?;
        ids.push(id);
        decoded.push((id, recorded, recorded.decode::<CallEvent>()?));
    }
    if decoded.is_empty() {
        return Ok(());
    }
    ids.sort_unstable();
    ids.dedup();
    let mut rows = load_rows(conn, &table, &ids).await?;
    let mut rerates = Vec::new();
    for (id, recorded, event) in &decoded {
        let row = rows.entry(*id).or_default();
        row.apply(event);
        if let CallEvent::CallReRated { .. } = event {
            rerates.push((*id, row.account_id, *recorded, event));
        }
    }
    store_rows(conn, &table, &rows).await?;
    let log = versioned("call_rerates", version);
    for (id, account, recorded, event) in rerates {
        insert_rerate(conn, &log, id, account, recorded, event).await?;
    }
    Ok(())
}

async fn load_rows(
    conn: &mut PgConnection,
    table: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, MarginRow>, ProjectionError> {
    let found = sqlx::query(&format!(
        "SELECT call_id, {COLUMNS} FROM {table} WHERE call_id = ANY($1)"
    ))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut rows = HashMap::with_capacity(ids.len());
    for r in found {
        rows.insert(r.try_get("call_id")?, MarginRow::from_row(&r)?);
    }
    Ok(rows)
}

/// One upsert for the whole batch, column arrays unnested.
async fn store_rows(
    conn: &mut PgConnection,
    table: &str,
    rows: &HashMap<Uuid, MarginRow>,
) -> Result<(), ProjectionError> {
    macro_rules! column {
        ($field:ident) => {
            rows.values().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    let ids: Vec<Uuid> = rows.keys().copied().collect();
    let sql = format!(
        "INSERT INTO {table} (call_id, {COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                              $7::timestamptz[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                              $12::integer[], $13::integer[], $14::bigint[], $15::bigint[], $16::bigint[],
                              $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::integer[], $22::text[])
         ON CONFLICT (call_id) DO UPDATE SET account_id = EXCLUDED.account_id, country_iso = EXCLUDED.country_iso,
           matched_prefix = EXCLUDED.matched_prefix, currency = EXCLUDED.currency, state = EXCLUDED.state,
           placed_at = EXCLUDED.placed_at, talk_ms = EXCLUDED.talk_ms, billed_seconds = EXCLUDED.billed_seconds,
           selling_rate_micros = EXCLUDED.selling_rate_micros, connect_fee_micros = EXCLUDED.connect_fee_micros,
           first_increment = EXCLUDED.first_increment, next_increment = EXCLUDED.next_increment,
           reserved_micros = EXCLUDED.reserved_micros, price_micros = EXCLUDED.price_micros,
           revenue_micros = EXCLUDED.revenue_micros, refunded_micros = EXCLUDED.refunded_micros,
           our_rate_micros = EXCLUDED.our_rate_micros, our_cost_micros = EXCLUDED.our_cost_micros,
           margin_micros = EXCLUDED.margin_micros, corrections = EXCLUDED.corrections,
           last_correction = EXCLUDED.last_correction"
    );
    // Values in the order of `rows.values()`, which is the order of `ids` (same map, unchanged).
    sqlx::query(&sql)
        .bind(&ids)
        .bind(column!(account_id))
        .bind(column!(country_iso))
        .bind(column!(matched_prefix))
        .bind(column!(currency))
        .bind(column!(state))
        .bind(column!(placed_at))
        .bind(column!(talk_ms))
        .bind(column!(billed_seconds))
        .bind(column!(selling_rate_micros))
        .bind(column!(connect_fee_micros))
        .bind(column!(first_increment))
        .bind(column!(next_increment))
        .bind(column!(reserved_micros))
        .bind(column!(price_micros))
        .bind(column!(revenue_micros))
        .bind(column!(refunded_micros))
        .bind(column!(our_rate_micros))
        .bind(column!(our_cost_micros))
        .bind(column!(margin_micros))
        .bind(column!(corrections))
        .bind(column!(last_correction))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

async fn insert_rerate(
    conn: &mut PgConnection,
    table: &str,
    call: Uuid,
    account: Uuid,
    recorded: &RecordedEvent,
    event: &CallEvent,
) -> Result<(), ProjectionError> {
    let CallEvent::CallReRated {
        correction,
        sequence,
        actor,
        old_charged,
        new_charged,
        refund,
        old_our_cost,
        new_our_cost,
        ..
    } = event
    else {
        return Ok(());
    };
    sqlx::query(&format!(
        "INSERT INTO {table} (call_id, correction, sequence, account_id, actor, old_charged_micros, new_charged_micros,
                              refund_micros, old_our_cost_micros, new_our_cost_micros, rerated_at, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (call_id, correction) DO NOTHING"
    ))
    .bind(call)
    .bind(correction)
    .bind(count(*sequence))
    .bind(account)
    .bind(actor.0)
    .bind(old_charged.micros())
    .bind(new_charged.micros())
    .bind(refund.micros())
    .bind(old_our_cost.map(|m| m.micros()))
    .bind(new_our_cost.map(|m| m.micros()))
    .bind(recorded.occurred_at)
    .bind(recorded.position.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests;
