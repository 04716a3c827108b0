//! The catch-up runner: reads events in commit order below the xmin fence, in bounded
//! batches, and writes the read model and its checkpoint in one transaction, so a crash
//! mid-batch applies nothing and a restart neither repeats nor skips.
//!
//! Wake-ups: a `LISTEN ringledger_events` (the appender's coalesced NOTIFY after commit);
//! while rows wait behind the fence it re-polls within milliseconds; otherwise it polls slowly.
//! Two runners of one projection version never interleave: each batch re-checks the checkpoint
//! under a row lock and gives way if it moved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::sync::watch;

use crate::event::{self, Position, RecordedEvent};
use crate::projection::Projection;
use crate::ProjectionError;

pub const EVENTS_CHANNEL: &str = "ringledger_events";

#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Events read and applied per transaction at most.
    pub batch_size: i64,
    /// Re-poll interval while rows wait behind the xmin fence.
    pub fence_poll_ms: u64,
    /// Poll interval when idle (a NOTIFY usually wakes the runner first).
    pub idle_poll_ms: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            batch_size: 5_000,
            fence_poll_ms: 2,
            idle_poll_ms: 500,
        }
    }
}

impl RunnerConfig {
    /// For catching up from position 0 (rebuild, verify): larger batches, so rows touched many
    /// times in one batch are written once.
    pub fn rebuild() -> Self {
        RunnerConfig {
            batch_size: 20_000,
            ..RunnerConfig::default()
        }
    }
}

/// The result of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub applied: usize,
    pub position: Position,
}

/// Called with each batch once it has committed (benchmarks measure lag with it).
pub type Observer = Arc<dyn Fn(&[RecordedEvent]) + Send + Sync>;

pub struct Runner {
    pool: PgPool,
    projection: Arc<dyn Projection>,
    version: i32,
    config: RunnerConfig,
    observer: Option<Observer>,
    /// Where the projection's in-memory rows stand, if this runner put them there. Anything
    /// else (another process advanced the version, a failed batch) means: reload.
    cached_at: std::sync::Mutex<Option<Position>>,
}

impl Runner {
    pub fn new(pool: PgPool, projection: Arc<dyn Projection>, version: i32, config: RunnerConfig) -> Runner {
        Runner {
            pool,
            projection,
            version,
            config,
            observer: None,
            cached_at: std::sync::Mutex::new(None),
        }
    }

    /// Calls `observer` with every batch after it commits.
    pub fn with_observer(mut self, observer: Observer) -> Runner {
        self.observer = Some(observer);
        self
    }

    pub fn projection(&self) -> &Arc<dyn Projection> {
        &self.projection
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub async fn checkpoint(&self) -> Result<Position, ProjectionError> {
        checkpoint(&self.pool, self.projection.name(), self.version).await
    }

    /// Applies at most one batch after the checkpoint (and not past `until`).
    pub async fn step(&self, until: Option<Position>) -> Result<Step, ProjectionError> {
        let from = self.checkpoint().await?;
        let types = self.projection.aggregate_types();
        let events = event::read_batch(&self.pool, from, until, types, self.batch_size()).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(Step {
                applied: 0,
                position: from,
            });
        };
        match self.apply(from, last, &events).await {
            Ok(true) => {}
            Ok(false) => {
                self.projection.forget(self.version);
                return Ok(Step {
                    applied: 0,
                    position: from,
                });
            }
            Err(e) => {
                self.projection.forget(self.version);
                return Err(e);
            }
        }
        self.record_metrics(&events);
        Ok(Step {
            applied: events.len(),
            position: last,
        })
    }

    /// Applies one batch and moves the checkpoint from `from` to `last`, in one transaction;
    /// `false` if the checkpoint was no longer `from`.
    async fn apply(
        &self,
        from: Position,
        last: Position,
        events: &[RecordedEvent],
    ) -> Result<bool, ProjectionError> {
        let mut tx = self.pool.begin().await?;
        // A read model and its checkpoint commit together, so a crash that loses the last
        // batches loses both, and they are applied again: no need to wait for the WAL flush.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        let locked: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx_id::text::bigint, global_position FROM projection_checkpoints
              WHERE projection = $1 AND version = $2 FOR UPDATE",
        )
        .bind(self.projection.name())
        .bind(self.version)
        .fetch_optional(&mut *tx)
        .await?;
        if locked != Some((from.tx_id, from.global_position)) {
            // Another runner of this version moved on (or the version was dropped): give way.
            return Ok(false);
        }
        let cached_at = self.cached_at.lock().ok().and_then(|mut c| c.take());
        if cached_at != Some(from) {
            self.projection.forget(self.version);
        }
        self.projection.apply_batch(&mut tx, self.version, events).await?;
        sqlx::query(
            "UPDATE projection_checkpoints
                SET tx_id = $3::text::xid8, global_position = $4, events_applied = events_applied + $5, updated_at = now()
              WHERE projection = $1 AND version = $2",
        )
        .bind(self.projection.name())
        .bind(self.version)
        .bind(last.tx_id.to_string())
        .bind(last.global_position)
        .bind(events.len() as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if let Ok(mut c) = self.cached_at.lock() {
            *c = Some(last);
        }
        Ok(true)
    }

    fn record_metrics(&self, events: &[RecordedEvent]) {
        if let Some(observe) = &self.observer {
            observe(events);
        }
        let labels = [
            ("projection", self.projection.name().to_owned()),
            ("version", self.version.to_string()),
        ];
        metrics::counter!("ringledger_projection_events_applied_total", &labels)
            .increment(events.len() as u64);
        if let Some(last) = events.last() {
            // The position only grows: exported as a counter set to its value.
            let position = u64::try_from(last.position.global_position).unwrap_or(0);
            metrics::counter!("ringledger_projection_position", &labels).absolute(position);
            let lag = (chrono::Utc::now() - last.recorded_at)
                .to_std()
                .unwrap_or_default();
            metrics::gauge!("ringledger_projection_lag_seconds", &labels).set(lag);
        }
    }

    /// Applies batches until nothing is left below the fence (or `until` is reached), calling
    /// `progress` after each; returns the events applied. The next batch is read while the
    /// current one is applied, so reading and applying overlap.
    pub async fn catch_up(
        &self,
        until: Option<Position>,
        mut progress: impl FnMut(Step),
    ) -> Result<u64, ProjectionError> {
        let mut total = 0u64;
        let mut from = self.checkpoint().await?;
        let mut next = self.read_ahead(from, until);
        loop {
            let events = next
                .await
                .map_err(|e| ProjectionError::Corrupt(format!("read task failed: {e}")))??;
            let Some(last) = events.last().map(|e| e.position) else {
                progress(Step {
                    applied: 0,
                    position: from,
                });
                return Ok(total);
            };
            next = self.read_ahead(last, until);
            let applied = self.apply(from, last, &events).await;
            if !matches!(applied, Ok(true)) {
                self.projection.forget(self.version);
                next.abort();
                applied?;
                // Another runner moved the checkpoint: continue from where it is now.
                from = self.checkpoint().await?;
                next = self.read_ahead(from, until);
                continue;
            }
            self.record_metrics(&events);
            total += events.len() as u64;
            from = last;
            progress(Step {
                applied: events.len(),
                position: last,
            });
            if until.is_some_and(|u| last >= u) {
                return Ok(total);
            }
        }
    }

    /// Catches several runners up together: each batch is read once and applied to every
    /// runner's projection concurrently, each in its own transaction (a rebuild of several
    /// projections from position 0). Runners that do not stand at the same checkpoint, read
    /// other event types, or fall out of step, are caught up one by one instead.
    pub async fn catch_up_together(
        runners: &[Runner],
        until: Option<Position>,
    ) -> Result<u64, ProjectionError> {
        let Some(first) = runners.first() else {
            return Ok(0);
        };
        let mut from = first.checkpoint().await?;
        let mut together = true;
        for r in runners {
            together &= r.checkpoint().await? == from
                && r.projection.aggregate_types() == first.projection.aggregate_types();
        }
        let mut total = 0u64;
        let mut next = first.read_ahead(from, until);
        while together {
            let events = next
                .await
                .map_err(|e| ProjectionError::Corrupt(format!("read task failed: {e}")))??;
            let Some(last) = events.last().map(|e| e.position) else {
                return Ok(total);
            };
            next = first.read_ahead(last, until);
            let applied =
                futures::future::join_all(runners.iter().map(|r| r.apply(from, last, &events))).await;
            for (r, result) in runners.iter().zip(&applied) {
                if !matches!(result, Ok(true)) {
                    r.projection.forget(r.version);
                    together = false;
                } else {
                    r.record_metrics(&events);
                }
            }
            if !together {
                next.abort();
                break;
            }
            total += events.len() as u64;
            from = last;
            if until.is_some_and(|u| last >= u) {
                return Ok(total);
            }
        }
        for r in runners {
            total = total.max(r.catch_up(until, |_| {}).await?);
        }
        Ok(total)
    }

    /// Events per batch: the configured size, or less for a projection whose events are big.
    fn batch_size(&self) -> i64 {
        match self.projection.max_batch_events() {
            Some(max) => self.config.batch_size.min(max.max(1)),
            None => self.config.batch_size,
        }
    }

    fn read_ahead(
        &self,
        after: Position,
        until: Option<Position>,
    ) -> tokio::task::JoinHandle<Result<Vec<RecordedEvent>, ProjectionError>> {
        let (pool, types, limit) = (
            self.pool.clone(),
            self.projection.aggregate_types(),
            self.batch_size(),
        );
        tokio::spawn(async move { event::read_batch(&pool, after, until, types, limit).await })
    }

    /// Runs until `stop` turns true: catch up, then follow the log.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut l) => match l.listen(EVENTS_CHANNEL).await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "runner cannot LISTEN; polling only");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "runner cannot LISTEN; polling only");
                None
            }
        };
        let name = self.projection.name();
        tracing::info!(
            projection = name,
            version = self.version,
            "projection runner started"
        );
        while !*stop.borrow() {
            let wait = match self.step(None).await {
                Ok(step) if step.applied > 0 => continue,
                Ok(step) => {
                    match event::any_after(&self.pool, step.position, self.projection.aggregate_types()).await
                    {
                        Ok(true) => Duration::from_millis(self.config.fence_poll_ms),
                        Ok(false) => Duration::from_millis(self.config.idle_poll_ms),
                        Err(e) => self.pause_after(e),
                    }
                }
                Err(e) => self.pause_after(e),
            };
            let started = Instant::now();
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() {
                        break; // the stop sender is gone: nobody can stop us later
                    }
                }
                _ = tokio::time::sleep(wait) => {}
                _ = recv(&mut listener), if wait.as_millis() > u128::from(self.config.fence_poll_ms) => {
                    metrics::histogram!("ringledger_projection_wakeup_seconds").record(started.elapsed());
                }
            }
        }
        tracing::info!(
            projection = name,
            version = self.version,
            "projection runner stopped"
        );
    }

    fn pause_after(&self, error: ProjectionError) -> Duration {
        tracing::error!(projection = self.projection.name(), version = self.version, error = %error, "projection batch failed; retrying");
        Duration::from_secs(1)
    }
}

async fn recv(listener: &mut Option<PgListener>) {
    match listener {
        Some(l) => {
            if l.recv().await.is_err() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

/// Where a projection version has read up to.
pub async fn checkpoint(pool: &PgPool, projection: &str, version: i32) -> Result<Position, ProjectionError> {
    let row = sqlx::query(
        "SELECT tx_id::text::bigint AS tx, global_position FROM projection_checkpoints WHERE projection = $1 AND version = $2",
    )
    .bind(projection)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or_else(|| ProjectionError::Usage(format!("{projection} has no version {version}")))?;
    Ok(Position {
        tx_id: row.try_get("tx")?,
        global_position: row.try_get("global_position")?,
    })
}
