//! Recurring jobs (sweeping, rate imports): a row per schedule, and a tick that enqueues each
//! due one as an ordinary job keyed `name@<due instant>` and moves it to its next period.
//! Every `ringledger serve` process may tick: due rows are taken with `SKIP LOCKED` and the
//! key makes a repeat a no-op, so a period is enqueued once however many processes tick.
//! Periods missed while nothing ticked collapse into one run. A tick must never run a job.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::Row;
use tokio::sync::watch;

use super::limits::{MAX_ATTEMPTS_LIMIT, MAX_EVERY_SECONDS, MAX_RECURRING_PER_TICK};
use super::queue::JobQueue;
use super::types::{JobKind, NewJob, QueueName, RecurringName};
use super::JobsError;

/// A job enqueued every `every_seconds`.
#[derive(Debug, Clone)]
pub struct RecurringJob {
    pub name: RecurringName,
    pub queue: QueueName,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub every_seconds: i32,
    /// Attempts each enqueued run gets.
    pub max_attempts: i32,
}

/// The idempotency key of the run of `name` due at `due`.
pub fn run_key(name: &RecurringName, due: DateTime<Utc>) -> String {
    format!("{name}@{}", due.to_rfc3339_opts(SecondsFormat::Micros, true))
}

impl JobQueue {
    /// Creates or updates the schedule `job.name`. An existing schedule keeps its next due
    /// instant, so every process may declare its schedules at start-up without shifting them;
    /// a new one is first due at `first_run_at` (default: now).
    pub async fn schedule_recurring(
        &self,
        job: &RecurringJob,
        first_run_at: Option<DateTime<Utc>>,
    ) -> Result<(), JobsError> {
        if !(1..=MAX_EVERY_SECONDS).contains(&job.every_seconds) {
            return Err(JobsError::Invalid(format!(
                "recurring job `{}`: every_seconds is {}; use 1 to {MAX_EVERY_SECONDS}",
                job.name, job.every_seconds
            )));
        }
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&job.max_attempts) {
            return Err(JobsError::Invalid(format!(
                "recurring job `{}`: max_attempts is {}; use 1 to {MAX_ATTEMPTS_LIMIT}",
                job.name, job.max_attempts
            )));
        }
        sqlx::query(
            "INSERT INTO recurring_jobs (name, queue, kind, payload, every_seconds, max_attempts, next_run_at)
             VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now()))
             ON CONFLICT (name) DO UPDATE
                SET queue = EXCLUDED.queue, kind = EXCLUDED.kind, payload = EXCLUDED.payload,
                    every_seconds = EXCLUDED.every_seconds, max_attempts = EXCLUDED.max_attempts,
                    updated_at = now()",
        )
        .bind(job.name.as_str())
        .bind(job.queue.as_str())
        .bind(job.kind.as_str())
        .bind(&job.payload)
        .bind(job.every_seconds)
        .bind(job.max_attempts)
        .bind(first_run_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes the schedule `name`; jobs it already enqueued stay. `false` if there was none.
    pub async fn unschedule_recurring(&self, name: &RecurringName) -> Result<bool, JobsError> {
        let deleted = sqlx::query("DELETE FROM recurring_jobs WHERE name = $1")
            .bind(name.as_str())
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Enqueues every due recurring job (at most 100 per call) and advances each to its first
    /// due instant after now, in one short transaction. Returns the jobs created.
    pub async fn tick_recurring(&self) -> Result<usize, JobsError> {
        let mut tx = self.pool.begin().await?;
        let due = sqlx::query(
            "SELECT name, queue, kind, payload, every_seconds, max_attempts, next_run_at
               FROM recurring_jobs
              WHERE next_run_at <= now()
              ORDER BY next_run_at
              LIMIT $1
              FOR UPDATE SKIP LOCKED",
        )
        .bind(MAX_RECURRING_PER_TICK)
        .fetch_all(&mut *tx)
        .await?;
        let mut woken: Vec<QueueName> = Vec::new();
        let mut created = 0;
        for row in &due {
            let corrupt = |e: JobsError| JobsError::Corrupt(format!("recurring_jobs row: {e}"));
            let name = RecurringName::parse(row.try_get("name")?).map_err(corrupt)?;
            let due_at: DateTime<Utc> = row.try_get("next_run_at")?;
            let job = NewJob::new(
                QueueName::parse(row.try_get("queue")?).map_err(corrupt)?,
                JobKind::parse(row.try_get("kind")?).map_err(corrupt)?,
                row.try_get("payload")?,
            )
            .with_idempotency_key(run_key(&name, due_at))
            .with_run_at(due_at)
            .with_max_attempts(row.try_get("max_attempts")?);
            let enqueued = JobQueue::enqueue_in_tx(&mut tx, &job).await?;
            // The first period boundary after now: `due + every × (whole periods elapsed + 1)`.
            sqlx::query(
                "UPDATE recurring_jobs
                    SET next_run_at = next_run_at + every_seconds * interval '1 second'
                            * (floor(extract(epoch FROM now() - next_run_at) / every_seconds) + 1),
                        last_enqueued_at = now(), updated_at = now()
                  WHERE name = $1",
            )
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?;
            if enqueued.created {
                tracing::info!(recurring = %name, job_id = enqueued.id.0, due_at = %due_at, "recurring job enqueued");
                created += 1;
                woken.push(job.queue);
            }
        }
        tx.commit().await?;
        woken.sort();
        woken.dedup();
        for queue in &woken {
            self.wake(queue).await;
        }
        Ok(created)
    }
}

/// Ticks every `tick_ms` until `stop` turns true (run one per `ringledger serve` process).
pub async fn run_ticker(queue: JobQueue, tick_ms: u64, mut stop: watch::Receiver<bool>) {
    let pause = Duration::from_millis(tick_ms.clamp(100, 3_600_000));
    while !*stop.borrow() {
        if let Err(e) = queue.tick_recurring().await {
            tracing::error!(error = %e, "recurring job tick failed; retrying at the next tick");
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
