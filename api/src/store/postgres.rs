//! Postgres adapter of the event store. The table is postgres-es's layout plus our columns;
//! streams are read with postgres-es's repository (pure event-store mode, snapshot modes off),
//! and appends are one statement that writes the events and their idempotency keys together,
//! so an append costs one round trip and commits atomically in autocommit.

use cqrs_es::persist::PersistedEventRepository;
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use sqlx::{PgPool, Row};

use super::{Append, EventStore, KeyRecord, Snapshot, StoreError, StoredEvent};

const APPEND_SQL: &str = "
WITH ev AS (
    INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                        payload, metadata, occurred_at)
    SELECT $1, $2, u.seq, u.et, u.ev, u.p::json, u.m::json, $8
      FROM UNNEST($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[]) AS u(seq, et, ev, p, m)
     ORDER BY u.seq
    RETURNING global_position
), k AS (
    INSERT INTO idempotency_keys (aggregate_type, aggregate_id, key, first_sequence, last_sequence)
    SELECT $1, $2, u.key, u.fs, u.ls
      FROM UNNEST($9::text[], $10::bigint[], $11::bigint[]) AS u(key, fs, ls)
)
SELECT max(global_position) AS last_position FROM ev";

/// Postgres-backed event store.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    repository: std::sync::Arc<PostgresEventRepository>,
}

impl PostgresStore {
    pub fn new(pool: PgPool) -> PostgresStore {
        PostgresStore {
            repository: std::sync::Arc::new(PostgresEventRepository::new(pool.clone())),
            pool,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn read(
        &self,
        sql: &str,
        aggregate_type: &str,
        aggregate_id: &str,
        a: i64,
        b: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(sql)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(a)
            .bind(b)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_event).collect()
    }
}

fn row_to_event(row: &sqlx::postgres::PgRow) -> Result<StoredEvent, StoreError> {
    let sequence: i64 = row.try_get("sequence")?;
    Ok(StoredEvent {
        sequence: u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("negative sequence {sequence}")))?,
        event_type: row.try_get("event_type")?,
        payload: row.try_get("payload")?,
        metadata: row.try_get("metadata")?,
    })
}

fn seq(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn is_conflict(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().as_deref() == Some("23505"),
        _ => false,
    }
}

const SELECT_RANGE: &str = "
SELECT sequence, event_type, payload, metadata FROM events
 WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 AND sequence <= $4
 ORDER BY sequence";

impl EventStore for PostgresStore {
    async fn load_after<A: Aggregate>(
        &self,
        aggregate_id: &str,
        after: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let after =
            usize::try_from(after).map_err(|_| StoreError::Corrupt("sequence out of range".into()))?;
        let events = self
            .repository
            .get_last_events::<A>(aggregate_id, after)
            .await
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(events
            .into_iter()
            .map(|e| StoredEvent {
                sequence: e.sequence as u64,
                event_type: e.event_type,
                payload: e.payload,
                metadata: e.metadata,
            })
            .collect())
    }

    async fn load_range(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        first: u64,
        last: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(
            SELECT_RANGE,
            aggregate_type,
            aggregate_id,
            seq(first).saturating_sub(1),
            seq(last),
        )
        .await
    }

    async fn snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT last_sequence, last_occurred_at, payload FROM aggregate_snapshots
              WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let last: i64 = row.try_get("last_sequence")?;
        Ok(Some(Snapshot {
            last_sequence: u64::try_from(last)
                .map_err(|_| StoreError::Corrupt("negative snapshot sequence".into()))?,
            last_occurred_at: row.try_get("last_occurred_at")?,
            payload: row.try_get("payload")?,
        }))
    }

    async fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &Snapshot,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, last_sequence, last_occurred_at, payload)
             VALUES ($1, $2, $3, $4, $5::text::json)
             ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                SET last_sequence = EXCLUDED.last_sequence, last_occurred_at = EXCLUDED.last_occurred_at,
                    payload = EXCLUDED.payload, taken_at = clock_timestamp()
              WHERE aggregate_snapshots.last_sequence < EXCLUDED.last_sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(seq(snapshot.last_sequence))
        .bind(snapshot.last_occurred_at)
        .bind(snapshot.payload.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn find_keys(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        keys: &[String],
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT key, first_sequence, last_sequence FROM idempotency_keys
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND key = ANY($3)",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(keys)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let first: i64 = r.try_get("first_sequence")?;
                let last: i64 = r.try_get("last_sequence")?;
                Ok(KeyRecord {
                    key: r.try_get("key")?,
                    first_sequence: first.max(0) as u64,
                    last_sequence: last.max(0) as u64,
                })
            })
            .collect()
    }

    async fn append(&self, batch: Append<'_>) -> Result<i64, StoreError> {
        let events = batch.events;
        let seqs: Vec<i64> = events.iter().map(|e| seq(e.sequence)).collect();
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        let versions: Vec<&str> = events.iter().map(|e| e.event_version.as_str()).collect();
        let payloads: Vec<String> = events.iter().map(|e| e.payload.to_string()).collect();
        let metadata: Vec<String> = events.iter().map(|e| e.metadata.to_string()).collect();
        let keys: Vec<&str> = batch.keys.iter().map(|k| k.key.as_str()).collect();
        let firsts: Vec<i64> = batch.keys.iter().map(|k| seq(k.first_sequence)).collect();
        let lasts: Vec<i64> = batch.keys.iter().map(|k| seq(k.last_sequence)).collect();
        let row = sqlx::query(APPEND_SQL)
            .bind(batch.aggregate_type)
            .bind(batch.aggregate_id)
            .bind(&seqs)
            .bind(&types)
            .bind(&versions)
            .bind(&payloads)
            .bind(&metadata)
            .bind(batch.occurred_at)
            .bind(&keys)
            .bind(&firsts)
            .bind(&lasts)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| {
                if is_conflict(&e) {
                    StoreError::Conflict
                } else {
                    StoreError::Database(e)
                }
            })?;
        let last: Option<i64> = row.try_get("last_position")?;
        last.ok_or_else(|| StoreError::Corrupt("append wrote no events".into()))
    }
}
