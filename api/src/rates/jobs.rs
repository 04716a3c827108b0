//! The `rates` job queue: deck imports (`rate_deck_import`, one per upload) and the hourly
//! removal of expired quotes (`prune_quotes`).

use std::time::Duration;

use ringledger_projections::jobs::{
    JobError, JobKind, JobQueue, NewJob, QueueConfig, QueueName, RecurringJob, RecurringName, Registry,
    WorkerPool,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{RateError, RateService};

pub const QUEUE: &str = "rates";
pub const IMPORT_KIND: &str = "rate_deck_import";
pub const PRUNE_KIND: &str = "prune_quotes";
/// Quotes are kept this long after they expire (for support questions), then deleted.
const KEEP_EXPIRED_QUOTES_HOURS: i32 = 24;

fn name<T>(
    parse: fn(&str) -> Result<T, ringledger_projections::jobs::JobsError>,
    text: &str,
) -> Result<T, RateError> {
    parse(text).map_err(|e| RateError::Invalid(format!("{text}: {e}")))
}

pub(super) async fn enqueue_import(conn: &mut PgConnection, import_id: Uuid) -> Result<(), RateError> {
    let mut job = NewJob::new(
        name(QueueName::parse, QUEUE)?,
        name(JobKind::parse, IMPORT_KIND)?,
        serde_json::json!({ "import_id": import_id }),
    );
    job.idempotency_key = Some(import_id.to_string());
    job.max_attempts = 5;
    JobQueue::enqueue_in_tx(conn, &job)
        .await
        .map_err(|e| RateError::Invalid(format!("queueing the import: {e}")))?;
    Ok(())
}

/// The registry and recurring jobs of the `rates` queue.
pub async fn registry(service: RateService, jobs: &JobQueue) -> Result<Registry, RateError> {
    let prune = RecurringJob {
        name: name(RecurringName::parse, PRUNE_KIND)?,
        queue: name(QueueName::parse, QUEUE)?,
        kind: name(JobKind::parse, PRUNE_KIND)?,
        payload: serde_json::json!({}),
        every_seconds: 3_600,
        max_attempts: 3,
    };
    jobs.schedule_recurring(&prune, None)
        .await
        .map_err(|e| RateError::Invalid(format!("scheduling {PRUNE_KIND}: {e}")))?;
    let importer = service.clone();
    let pruner = service;
    Ok(Registry::new()
        .register_fn(name(JobKind::parse, IMPORT_KIND)?, move |job| {
            let service = importer.clone();
            async move {
                let id = job
                    .payload
                    .get("import_id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .ok_or_else(|| JobError::Permanent("payload has no import_id".into()))?;
                match service.run_import(id).await {
                    Ok(status) => {
                        tracing::info!(import = %id, deck = %status.deck_id, rows = status.rows_done,
                            errors = status.error_count, "rate deck imported");
                        Ok(())
                    }
                    Err(e @ (RateError::Invalid(_) | RateError::NotFound(_))) => {
                        Err(JobError::Permanent(e.to_string()))
                    }
                    Err(e) => Err(JobError::Retry(e.to_string())),
                }
            }
        })
        .register_fn(name(JobKind::parse, PRUNE_KIND)?, move |_job| {
            let pool = pruner.pool.clone();
            async move {
                let deleted =
                    sqlx::query("DELETE FROM quotes WHERE expires_at < now() - make_interval(hours => $1)")
                        .bind(KEEP_EXPIRED_QUOTES_HOURS)
                        .execute(&pool)
                        .await
                        .map_err(|e| JobError::Retry(e.to_string()))?
                        .rows_affected();
                tracing::info!(deleted, "pruned expired quotes");
                Ok(())
            }
        }))
}

/// A worker pool for the `rates` queue: one import at a time (an import is bulk work).
pub async fn spawn_pool(service: RateService, jobs: JobQueue) -> Result<WorkerPool, RateError> {
    let registry = registry(service, &jobs).await?;
    let config = QueueConfig {
        concurrency: 1,
        job_timeout_ms: Duration::from_secs(3_600).as_millis() as u64,
        ..QueueConfig::default()
    };
    WorkerPool::spawn(jobs, name(QueueName::parse, QUEUE)?, registry, config)
        .map_err(|e| RateError::Invalid(format!("starting the rates workers: {e}")))
}
