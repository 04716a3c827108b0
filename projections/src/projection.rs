//! What a projection is to the runner: the event types it reads, its tables (one set per
//! version, `{table}_v{version}`, read through views named `{table}`), and how it applies a
//! batch inside the runner's transaction. The fold itself is a pure function beside each
//! projection; `apply_batch` only loads the rows it touches, folds, and writes them back.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::event::RecordedEvent;
use crate::ProjectionError;

pub trait Projection: Send + Sync + 'static {
    /// Stable name, used for checkpoints, the version registry and the CLI.
    fn name(&self) -> &'static str;
    /// Aggregate types whose events it reads.
    fn aggregate_types(&self) -> &'static [&'static str];
    /// Base names of its tables, in creation order.
    fn tables(&self) -> &'static [&'static str];
    /// DDL for one version's tables; `{v}` stands for the version number.
    fn create_sql(&self) -> &'static str;
    /// Secondary indexes of one version (`{v}` for the version), created after a rebuild's bulk
    /// catch-up rather than maintained row by row during it. Must use `IF NOT EXISTS`.
    fn index_sql(&self) -> &'static str {
        ""
    }
    /// Events per batch at most, for projections whose events are large (a deck chunk holds
    /// 5,000 rows); `None` takes the runner's batch size.
    fn max_batch_events(&self) -> Option<i64> {
        None
    }
    /// Columns that identify a row, for diffs (`verify`, rebuild comparison).
    fn key_columns(&self, table: &str) -> &'static [&'static str];
    /// Drops whatever this projection caches in memory for `version` (called by the runner
    /// when a batch did not commit, so the cache never runs ahead of the tables).
    fn forget(&self, _version: i32) {}
    /// Applies `events` (in commit order) to version `version`'s tables.
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>>;
}

/// The physical table of one version.
pub fn versioned(table: &str, version: i32) -> String {
    format!("{table}_v{version}")
}

/// The DDL of one version, with `{v}` filled in.
pub fn ddl_for(projection: &dyn Projection, version: i32) -> String {
    projection.create_sql().replace("{v}", &version.to_string())
}

/// The secondary indexes of one version, with `{v}` filled in.
pub fn index_ddl_for(projection: &dyn Projection, version: i32) -> String {
    projection.index_sql().replace("{v}", &version.to_string())
}
