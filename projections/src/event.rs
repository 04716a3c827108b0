//! Events as the runner reads them: in commit order, below the xmin fence.
//!
//! Rows are read with `tx_id < pg_snapshot_xmin(pg_current_snapshot())`, ordered by
//! `(tx_id, global_position)`: no transaction still running can later add a row before that
//! point, so a checkpoint of that pair never skips an event. Never `stream_all_events`.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::ProjectionError;

/// A point in the log, in commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Position {
    pub tx_id: i64,
    pub global_position: i64,
}

/// One event as recorded, with the columns projections need.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_id: Uuid,
    pub event_type: String,
    /// The payload's JSON text, decoded by each projection into its own event type.
    pub payload: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

impl RecordedEvent {
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, ProjectionError> {
        serde_json::from_str(&self.payload).map_err(|e| ProjectionError::Decode {
            global_position: self.position.global_position,
            message: e.to_string(),
        })
    }
}

const READ_SQL: &str = "
SELECT global_position, tx_id::text::bigint AS tx, aggregate_type, aggregate_id, sequence, event_id,
       event_type, payload::text AS payload, occurred_at, recorded_at
  FROM events
 WHERE (tx_id, global_position) > ($1::text::xid8, $2)
   AND (tx_id, global_position) <= ($3::text::xid8, $4)
   AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
   AND aggregate_type = ANY($5)
 ORDER BY tx_id, global_position
 LIMIT $6";

/// Reads up to `limit` events after `after` (and not past `until`, when given), in commit
/// order, below the xmin fence.
pub async fn read_batch(
    pool: &PgPool,
    after: Position,
    until: Option<Position>,
    aggregate_types: &[&str],
    limit: i64,
) -> Result<Vec<RecordedEvent>, ProjectionError> {
    let until = until.unwrap_or(Position {
        tx_id: i64::MAX,
        global_position: i64::MAX,
    });
    let rows = sqlx::query(READ_SQL)
        .bind(after.tx_id.to_string())
        .bind(after.global_position)
        .bind(until.tx_id.to_string())
        .bind(until.global_position)
        .bind(aggregate_types)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(RecordedEvent {
                position: Position {
                    tx_id: row.try_get("tx")?,
                    global_position: row.try_get("global_position")?,
                },
                aggregate_type: row.try_get("aggregate_type")?,
                aggregate_id: row.try_get("aggregate_id")?,
                sequence: row.try_get("sequence")?,
                event_id: row.try_get("event_id")?,
                event_type: row.try_get("event_type")?,
                payload: row.try_get("payload")?,
                occurred_at: row.try_get("occurred_at")?,
                recorded_at: row.try_get("recorded_at")?,
            })
        })
        .collect()
}

/// Whether any event of these types lies after `after`, fenced or not (rows waiting behind the
/// fence mean: poll again soon).
pub async fn any_after(
    pool: &PgPool,
    after: Position,
    aggregate_types: &[&str],
) -> Result<bool, ProjectionError> {
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE (tx_id, global_position) > ($1::text::xid8, $2)
                          AND aggregate_type = ANY($3))",
    )
    .bind(after.tx_id.to_string())
    .bind(after.global_position)
    .bind(aggregate_types)
    .fetch_one(pool)
    .await?;
    Ok(found)
}

/// The newest position in the log (for progress and lag).
pub async fn head(pool: &PgPool) -> Result<Position, ProjectionError> {
    let row = sqlx::query(
        "SELECT tx_id::text::bigint AS tx, global_position FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    match row {
        Some(r) => Ok(Position {
            tx_id: r.try_get("tx")?,
            global_position: r.try_get("global_position")?,
        }),
        None => Ok(Position::default()),
    }
}
