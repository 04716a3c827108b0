//! The rate table read model: every imported deck (summary, status, activation), its rows as
//! the file gave them, and the pricing policy in force. The api's in-memory lookup is rebuilt
//! from these tables when a deck is activated or the policy changes: this projection sends
//! `NOTIFY ringledger_rates` in the same transaction, so the wake-up arrives only once the rows
//! it announces are committed. The active deck is the one activated last in the log.

use futures::future::BoxFuture;
use ringledger_domain::rates::deck::{DeckEvent, RowsImported};
use ringledger_domain::rates::policy::PolicyEvent;
use ringledger_domain::rates::DeckRow;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

/// The channel the api listens on to rebuild its lookup.
pub const RATES_CHANNEL: &str = "ringledger_rates";

pub struct RateTable;

const CREATE: &str = "
CREATE TABLE rate_decks_v{v} (
    deck_id            uuid PRIMARY KEY,
    file_name          text,
    sha256             text,
    format             text,
    currency           text,
    row_count          bigint NOT NULL DEFAULT 0,
    error_count        bigint NOT NULL DEFAULT 0,
    chunks             integer NOT NULL DEFAULT 0,
    problems           jsonb  NOT NULL DEFAULT '[]',
    effective_from     timestamptz,
    imported_by        uuid,
    imported_at        timestamptz,
    activated_at       timestamptz,
    activated_by       uuid,
    activated_position bigint,
    skipped_rows       bigint NOT NULL DEFAULT 0
);
CREATE TABLE rate_rows_v{v} (
    deck_id              uuid    NOT NULL,
    line                 bigint  NOT NULL,
    iso                  text    NOT NULL,
    country              text    NOT NULL,
    description          text    NOT NULL,
    destination_prefixes text[]  NOT NULL,
    origination_prefixes text[]  NOT NULL,
    cost_micros          bigint  NOT NULL,
    connect_fee_micros   bigint  NOT NULL,
    first_increment      integer NOT NULL,
    next_increment       integer NOT NULL,
    PRIMARY KEY (deck_id, line)
);
CREATE TABLE rate_policy_v{v} (
    id               smallint PRIMARY KEY CHECK (id = 1),
    pricing          jsonb,
    blocks           jsonb   NOT NULL DEFAULT '[]',
    pricing_position bigint,
    blocks_position  bigint,
    updated_at       timestamptz NOT NULL
)";

impl Projection for RateTable {
    fn name(&self) -> &'static str {
        "rate_table"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["RateDeck", "RatePolicy"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["rate_decks", "rate_rows", "rate_policy"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn max_batch_events(&self) -> Option<i64> {
        // 20 chunks: at most 100,000 rows (about 20 MB of JSON) per transaction.
        Some(20)
    }
    fn key_columns(&self, table: &str) -> &'static [&'static str] {
        match table {
            "rate_rows" => &["deck_id", "line"],
            "rate_policy" => &["id"],
            _ => &["deck_id"],
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

async fn apply_batch(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let mut announce = false;
    for recorded in events {
        match recorded.aggregate_type.as_str() {
            "RateDeck" => announce |= apply_deck(conn, version, recorded).await?,
            "RatePolicy" => {
                apply_policy(conn, version, recorded).await?;
                announce = true;
            }
            _ => {}
        }
    }
    if announce {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(RATES_CHANNEL)
            .bind(version.to_string())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Applies one deck event; true when the active deck may have changed.
async fn apply_deck(
    conn: &mut PgConnection,
    version: i32,
    recorded: &RecordedEvent,
) -> Result<bool, ProjectionError> {
    let decks = versioned("rate_decks", version);
    let deck_id = crate::stream_uuid(recorded, "rate deck")?;
    if recorded.event_type == "RateDeckRowsImported" {
        let chunk: RowsImported = recorded.decode()?;
        return apply_chunk(conn, version, deck_id, &chunk.rows).await;
    }
    match recorded.decode::<DeckEvent>()? {
        DeckEvent::RateDeckRowsImported { rows, .. } => apply_chunk(conn, version, deck_id, &rows).await,
        DeckEvent::RateDeckImported { summary, .. } => {
            let problems = serde_json::to_value(&summary.problems).map_err(|e| ProjectionError::Decode {
                global_position: recorded.position.global_position,
                message: e.to_string(),
            })?;
            let sql = format!(
                "INSERT INTO {decks} (deck_id, file_name, sha256, format, currency, row_count, error_count, problems,
                                      effective_from, imported_by, imported_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (deck_id) DO UPDATE SET file_name = EXCLUDED.file_name, sha256 = EXCLUDED.sha256,
                   format = EXCLUDED.format, currency = EXCLUDED.currency, row_count = EXCLUDED.row_count,
                   error_count = EXCLUDED.error_count, problems = EXCLUDED.problems,
                   effective_from = EXCLUDED.effective_from, imported_by = EXCLUDED.imported_by,
                   imported_at = EXCLUDED.imported_at"
            );
            sqlx::query(&sql)
                .bind(deck_id)
                .bind(&summary.file_name)
                .bind(&summary.sha256)
                .bind(summary.format.as_str())
                .bind(summary.currency.as_str())
                .bind(summary.row_count as i64)
                .bind(summary.error_count as i64)
                .bind(problems)
                .bind(summary.effective_from)
                .bind(summary.imported_by.0)
                .bind(recorded.occurred_at)
                .execute(&mut *conn)
                .await?;
            Ok(false)
        }
        DeckEvent::RateDeckActivated {
            activated_by,
            skipped_rows,
            ..
        } => {
            let sql = format!(
                "UPDATE {decks} SET activated_at = $2, activated_by = $3, activated_position = $4, skipped_rows = $5
                  WHERE deck_id = $1"
            );
            sqlx::query(&sql)
                .bind(deck_id)
                .bind(recorded.occurred_at)
                .bind(activated_by.0)
                .bind(recorded.position.global_position)
                .bind(skipped_rows as i64)
                .execute(&mut *conn)
                .await?;
            Ok(true)
        }
    }
}

async fn apply_chunk(
    conn: &mut PgConnection,
    version: i32,
    deck_id: Uuid,
    rows: &[DeckRow],
) -> Result<bool, ProjectionError> {
    let decks = versioned("rate_decks", version);
    copy_rows(conn, &versioned("rate_rows", version), deck_id, rows).await?;
    let sql = format!(
        "INSERT INTO {decks} (deck_id, row_count, chunks) VALUES ($1, $2, 1)
         ON CONFLICT (deck_id) DO UPDATE
           SET row_count = {decks}.row_count + EXCLUDED.row_count, chunks = {decks}.chunks + 1"
    );
    sqlx::query(&sql)
        .bind(deck_id)
        .bind(rows.len() as i64)
        .execute(&mut *conn)
        .await?;
    Ok(false)
}

/// Writes a chunk's rows with `COPY ... (FORMAT csv)`: a deck is hundreds of thousands of rows
/// and this is the import's bulk path. An empty text cell is an empty string, not NULL.
async fn copy_rows(
    conn: &mut PgConnection,
    table: &str,
    deck_id: Uuid,
    rows: &[DeckRow],
) -> Result<(), ProjectionError> {
    let mut out = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 96));
    let deck = deck_id.to_string();
    for row in rows {
        let record = [
            deck.as_str(),
            &row.line.to_string(),
            &row.iso,
            &row.country,
            &row.description,
            &pg_array(&row.destination_prefixes),
            &pg_array(&row.origination_prefixes),
            &row.cost_per_minute.micros().to_string(),
            &row.plan.connect_fee.micros().to_string(),
            &row.plan.first_increment_seconds.to_string(),
            &row.plan.next_increment_seconds.to_string(),
        ];
        out.write_record(record)
            .map_err(|e| ProjectionError::Corrupt(format!("encoding deck rows: {e}")))?;
    }
    let data = out
        .into_inner()
        .map_err(|e| ProjectionError::Corrupt(format!("encoding deck rows: {e}")))?;
    let statement = format!(
        "COPY {table} (deck_id, line, iso, country, description, destination_prefixes, origination_prefixes,
                       cost_micros, connect_fee_micros, first_increment, next_increment)
         FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (iso, country, description))"
    );
    let mut copy = conn.copy_in_raw(&statement).await?;
    if let Err(e) = copy.send(data).await {
        let _ = copy.abort("sending deck rows failed").await;
        return Err(e.into());
    }
    copy.finish().await?;
    Ok(())
}

/// A Postgres array literal of digit strings (`{4471,4472}`); prefixes are digits only, so
/// nothing needs quoting.
fn pg_array(items: &[String]) -> String {
    debug_assert!(items.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())));
    let mut s = String::with_capacity(2 + items.iter().map(|p| p.len() + 1).sum::<usize>());
    s.push('{');
    for (i, p) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(p);
    }
    s.push('}');
    s
}

async fn apply_policy(
    conn: &mut PgConnection,
    version: i32,
    recorded: &RecordedEvent,
) -> Result<(), ProjectionError> {
    let table = versioned("rate_policy", version);
    let encode = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| ProjectionError::Decode {
            global_position: recorded.position.global_position,
            message: e.to_string(),
        })
    };
    let (sql, value) = match recorded.decode::<PolicyEvent>()? {
        PolicyEvent::PricingRulesChanged { rules, .. } => (
            format!(
                "INSERT INTO {table} (id, pricing, pricing_position, updated_at) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET pricing = EXCLUDED.pricing,
                   pricing_position = EXCLUDED.pricing_position, updated_at = EXCLUDED.updated_at"
            ),
            encode(serde_json::to_value(&rules))?,
        ),
        PolicyEvent::BlockListChanged { rules, .. } => (
            format!(
                "INSERT INTO {table} (id, blocks, blocks_position, updated_at) VALUES (1, $1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET blocks = EXCLUDED.blocks,
                   blocks_position = EXCLUDED.blocks_position, updated_at = EXCLUDED.updated_at"
            ),
            encode(serde_json::to_value(&rules))?,
        ),
    };
    sqlx::query(&sql)
        .bind(value)
        .bind(recorded.position.global_position)
        .bind(recorded.occurred_at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
