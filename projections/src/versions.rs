//! Blue/green versions of a projection. Each version has its own tables (`{table}_v{n}`) and
//! checkpoint; readers use views named `{table}` that point at the live version. A rebuild
//! builds a new version from position 0 while the live one serves, and `switch` repoints the
//! views and the registry in one transaction. Old versions stay until dropped explicitly.

use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::event::Position;
use crate::projection::{ddl_for, index_ddl_for, versioned, Projection};
use crate::ProjectionError;

#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionStatus {
    pub projection: String,
    pub version: i32,
    pub state: &'static str,
    pub position: Position,
    pub events_applied: i64,
    /// Events in the log after this version's checkpoint (of any type).
    pub behind_events: i64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

async fn lock(tx: &mut Transaction<'_, Postgres>, projection: &str) -> Result<(), ProjectionError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('projection:' || $1))")
        .bind(projection)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn run_ddl(tx: &mut Transaction<'_, Postgres>, ddl: &str) -> Result<(), ProjectionError> {
    for statement in ddl.split(';').filter(|s| !s.trim().is_empty()) {
        sqlx::query(statement).execute(&mut **tx).await?;
    }
    Ok(())
}

async fn create_tables(
    tx: &mut Transaction<'_, Postgres>,
    p: &dyn Projection,
    version: i32,
) -> Result<(), ProjectionError> {
    run_ddl(tx, &ddl_for(p, version)).await?;
    sqlx::query("INSERT INTO projection_checkpoints (projection, version) VALUES ($1, $2)")
        .bind(p.name())
        .bind(version)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn point_views(
    tx: &mut Transaction<'_, Postgres>,
    p: &dyn Projection,
    version: i32,
) -> Result<(), ProjectionError> {
    for table in p.tables() {
        let sql = format!(
            "CREATE OR REPLACE VIEW {table} AS SELECT * FROM {}",
            versioned(table, version)
        );
        sqlx::query(&sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// The live version, creating version 1 (tables, checkpoint, views) the first time.
pub async fn ensure_live(pool: &PgPool, p: &dyn Projection) -> Result<i32, ProjectionError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, p.name()).await?;
    let live: Option<i32> =
        sqlx::query_scalar("SELECT live_version FROM projection_versions WHERE projection = $1")
            .bind(p.name())
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(v) = live {
        tx.commit().await?;
        return Ok(v);
    }
    create_tables(&mut tx, p, 1).await?;
    run_ddl(&mut tx, &index_ddl_for(p, 1)).await?;
    sqlx::query("INSERT INTO projection_versions (projection, live_version) VALUES ($1, 1)")
        .bind(p.name())
        .execute(&mut *tx)
        .await?;
    point_views(&mut tx, p, 1).await?;
    tx.commit().await?;
    Ok(1)
}

/// The live and building versions of a projection.
pub async fn registered(pool: &PgPool, projection: &str) -> Result<(i32, Option<i32>), ProjectionError> {
    let row =
        sqlx::query("SELECT live_version, building_version FROM projection_versions WHERE projection = $1")
            .bind(projection)
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| {
                ProjectionError::Usage(format!("projection {projection} has no live version yet"))
            })?;
    Ok((row.try_get("live_version")?, row.try_get("building_version")?))
}

/// Creates the next version's tables and checkpoint, known to no reader or runner yet.
pub async fn create_unregistered(pool: &PgPool, p: &dyn Projection) -> Result<i32, ProjectionError> {
    ensure_live(pool, p).await?;
    let mut tx = pool.begin().await?;
    lock(&mut tx, p.name()).await?;
    let next: i32 = sqlx::query_scalar(
        "SELECT COALESCE(max(version), 0) + 1 FROM projection_checkpoints WHERE projection = $1",
    )
    .bind(p.name())
    .fetch_one(&mut *tx)
    .await?;
    create_tables(&mut tx, p, next).await?;
    tx.commit().await?;
    Ok(next)
}

/// Starts building a new version (empty tables, checkpoint at 0) and registers it as the
/// one being built; returns its number.
pub async fn create_version(pool: &PgPool, p: &dyn Projection) -> Result<i32, ProjectionError> {
    let next = create_unregistered(pool, p).await?;
    sqlx::query("UPDATE projection_versions SET building_version = $2 WHERE projection = $1")
        .bind(p.name())
        .bind(next)
        .execute(pool)
        .await?;
    Ok(next)
}

/// Creates a version's secondary indexes (after a rebuild's bulk catch-up; idempotent).
pub async fn create_indexes(pool: &PgPool, p: &dyn Projection, version: i32) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    run_ddl(&mut tx, &index_ddl_for(p, version)).await?;
    tx.commit().await?;
    Ok(())
}

/// Makes `version` live (creating its indexes if the build has not yet): views and registry change in one transaction.
pub async fn switch(pool: &PgPool, p: &dyn Projection, version: i32) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, p.name()).await?;
    run_ddl(&mut tx, &index_ddl_for(p, version)).await?;
    point_views(&mut tx, p, version).await?;
    sqlx::query(
        "UPDATE projection_versions SET live_version = $2, building_version = NULL, switched_at = now() WHERE projection = $1",
    )
    .bind(p.name())
    .bind(version)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Drops an old version's tables and checkpoint; the live or building version is refused.
pub async fn drop_version(pool: &PgPool, p: &dyn Projection, version: i32) -> Result<(), ProjectionError> {
    let mut tx = pool.begin().await?;
    lock(&mut tx, p.name()).await?;
    let (live, building): (i32, Option<i32>) = sqlx::query_as(
        "SELECT live_version, building_version FROM projection_versions WHERE projection = $1",
    )
    .bind(p.name())
    .fetch_one(&mut *tx)
    .await?;
    if version == live || Some(version) == building {
        return Err(ProjectionError::Usage(format!(
            "{} version {version} is in use; switch first",
            p.name()
        )));
    }
    for table in p.tables().iter().rev() {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", versioned(table, version)))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM projection_checkpoints WHERE projection = $1 AND version = $2")
        .bind(p.name())
        .bind(version)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every version of every projection, with position and how far behind the log it is.
pub async fn status(pool: &PgPool) -> Result<Vec<VersionStatus>, ProjectionError> {
    let rows = sqlx::query(
        "SELECT c.projection, c.version, c.tx_id::text::bigint AS tx, c.global_position, c.events_applied, c.updated_at,
                v.live_version, v.building_version,
                (SELECT count(*) FROM events e WHERE (e.tx_id, e.global_position) > (c.tx_id, c.global_position)) AS behind
           FROM projection_checkpoints c LEFT JOIN projection_versions v USING (projection)
          ORDER BY c.projection, c.version",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let version: i32 = r.try_get("version")?;
            let live: Option<i32> = r.try_get("live_version")?;
            let building: Option<i32> = r.try_get("building_version")?;
            let state = if live == Some(version) {
                "live"
            } else if building == Some(version) {
                "building"
            } else {
                "retired"
            };
            Ok(VersionStatus {
                projection: r.try_get("projection")?,
                version,
                state,
                position: Position {
                    tx_id: r.try_get("tx")?,
                    global_position: r.try_get("global_position")?,
                },
                events_applied: r.try_get("events_applied")?,
                behind_events: r.try_get("behind")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .collect()
}
