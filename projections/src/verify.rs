//! Rebuild and verify: build a projection from position 0 into tables of its own, bring it to
//! exactly the live version's checkpoint (holding that checkpoint row so the live runner waits
//! for the few milliseconds of the comparison), and diff every table row for row.

use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::event::Position;
use crate::projection::{versioned, Projection};
use crate::runner::{Runner, RunnerConfig, Step};
use crate::versions;
use crate::ProjectionError;

/// Rows that differ between two versions of one table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableDiff {
    pub table: String,
    pub only_in_live: i64,
    pub only_in_rebuilt: i64,
    /// Up to `limit` differing rows of each side, as JSON.
    pub live_rows: Vec<serde_json::Value>,
    pub rebuilt_rows: Vec<serde_json::Value>,
}

impl TableDiff {
    pub fn is_empty(&self) -> bool {
        self.only_in_live == 0 && self.only_in_rebuilt == 0
    }
}

/// Rows of `a` not in `b` (as a multiset): how many, and the first `limit` of them.
async fn side(
    tx: &mut Transaction<'_, Postgres>,
    a: &str,
    b: &str,
    limit: i64,
) -> Result<(i64, Vec<serde_json::Value>), ProjectionError> {
    let sql = format!(
        "WITH d AS (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})
         SELECT count(*) OVER () AS total, to_jsonb(d) AS row FROM d LIMIT $1"
    );
    let rows = sqlx::query(&sql).bind(limit.max(1)).fetch_all(&mut **tx).await?;
    let total = match rows.first() {
        Some(r) => r.try_get("total")?,
        None => 0,
    };
    let rows = rows
        .iter()
        .take(limit.max(0) as usize)
        .map(|r| r.try_get("row"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((total, rows))
}

async fn diff_in(
    tx: &mut Transaction<'_, Postgres>,
    p: &dyn Projection,
    live: i32,
    other: i32,
    limit: i64,
) -> Result<Vec<TableDiff>, ProjectionError> {
    let mut diffs = Vec::new();
    for table in p.tables() {
        let (a, b) = (versioned(table, live), versioned(table, other));
        let (only_in_live, live_rows) = side(tx, &a, &b, limit).await?;
        let (only_in_rebuilt, rebuilt_rows) = side(tx, &b, &a, limit).await?;
        diffs.push(TableDiff {
            table: table.to_string(),
            only_in_live,
            only_in_rebuilt,
            live_rows,
            rebuilt_rows,
        });
    }
    Ok(diffs)
}

/// Brings `other` to exactly the live version's checkpoint and diffs the two while the live
/// runner waits on its checkpoint row.
pub async fn catch_up_and_compare(
    pool: &PgPool,
    p: &std::sync::Arc<dyn Projection>,
    other: i32,
    limit: i64,
    mut progress: impl FnMut(Step),
) -> Result<Vec<TableDiff>, ProjectionError> {
    let (live, _) = versions::registered(pool, p.name()).await?;
    let runner = Runner::new(pool.clone(), p.clone(), other, RunnerConfig::rebuild());
    // Compare at one position. If `other` is already ahead (nothing ran the live version
    // meanwhile), bring the live version up to it first; runners of one version give way to
    // each other, so this is safe beside `ringledger serve`.
    let other_at = runner.checkpoint().await?;
    if crate::runner::checkpoint(pool, p.name(), live).await? < other_at {
        let live_runner = Runner::new(pool.clone(), p.clone(), live, RunnerConfig::rebuild());
        live_runner.catch_up(Some(other_at), |_| {}).await?;
    }
    // Never past the live version: first to where it was, then to where it is, under its lock.
    let first = crate::runner::checkpoint(pool, p.name(), live).await?;
    runner.catch_up(Some(first), &mut progress).await?;
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT tx_id::text::bigint AS tx, global_position FROM projection_checkpoints
          WHERE projection = $1 AND version = $2 FOR UPDATE",
    )
    .bind(p.name())
    .bind(live)
    .fetch_one(&mut *tx)
    .await?;
    let held = Position {
        tx_id: row.try_get("tx")?,
        global_position: row.try_get("global_position")?,
    };
    runner.catch_up(Some(held), &mut progress).await?;
    let reached = runner.checkpoint().await?;
    if reached != held {
        return Err(ProjectionError::Corrupt(format!(
            "{} version {other} stopped at {reached:?}, not at the live checkpoint {held:?}",
            p.name()
        )));
    }
    let diffs = diff_in(&mut tx, p.as_ref(), live, other, limit).await?;
    tx.commit().await?;
    Ok(diffs)
}

/// Rebuilds `p` into scratch tables, diffs them with the live version, drops the scratch.
pub async fn verify(
    pool: &PgPool,
    p: &std::sync::Arc<dyn Projection>,
    limit: i64,
    progress: impl FnMut(Step),
) -> Result<Vec<TableDiff>, ProjectionError> {
    let scratch = versions::create_unregistered(pool, p.as_ref()).await?;
    let result = catch_up_and_compare(pool, p, scratch, limit, progress).await;
    versions::drop_version(pool, p.as_ref(), scratch).await?;
    result
}
