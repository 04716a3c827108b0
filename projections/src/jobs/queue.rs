//! The queue's handle and the way in: [`JobQueue`] over a pool, `enqueue` (its own short
//! statement, then a wake-up NOTIFY) and `enqueue_in_tx` (inside a caller's transaction, so a
//! process manager records its checkpoint and the jobs it causes atomically). Enqueueing must
//! never run a job, and never wait on workers.

use sqlx::{PgConnection, PgPool};

use super::backoff::Backoff;
use super::limits::{MAX_ATTEMPTS_LIMIT, MAX_IDEMPOTENCY_KEY_BYTES, MAX_PAYLOAD_BYTES};
use super::types::{Enqueued, JobId, NewJob, QueueName};
use super::JobsError;

/// The channel workers LISTEN on; the payload is the queue name.
pub const JOBS_CHANNEL: &str = "ringledger_jobs";

/// The durable job queue in Postgres. Cheap to clone.
#[derive(Debug, Clone)]
pub struct JobQueue {
    pub(super) pool: PgPool,
    pub(super) backoff: Backoff,
}

impl JobQueue {
    pub fn new(pool: PgPool) -> JobQueue {
        JobQueue {
            pool,
            backoff: Backoff::default(),
        }
    }

    /// The same queue with another retry policy for [`JobQueue::fail`].
    pub fn with_backoff(mut self, backoff: Backoff) -> Result<JobQueue, JobsError> {
        backoff.validate()?;
        self.backoff = backoff;
        Ok(self)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// Enqueues `job` in a statement of its own and wakes the queue's workers.
    pub async fn enqueue(&self, job: &NewJob) -> Result<Enqueued, JobsError> {
        let mut conn = self.pool.acquire().await?;
        let enqueued = JobQueue::enqueue_in_tx(&mut conn, job).await?;
        drop(conn);
        if enqueued.created {
            self.wake(&job.queue).await;
        }
        Ok(enqueued)
    }

    /// Enqueues `job` on `conn`, typically inside the caller's transaction: the job exists if
    /// and only if that transaction commits. Sends no NOTIFY (a NOTIFY in a transaction
    /// serialises commits); call [`JobQueue::wake`] after committing, or let workers poll.
    pub async fn enqueue_in_tx(conn: &mut PgConnection, job: &NewJob) -> Result<Enqueued, JobsError> {
        check_new_job(job)?;
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO jobs (queue, kind, payload, idempotency_key, run_at, max_attempts)
             VALUES ($1, $2, $3, $4, COALESCE($5, now()), $6)
             ON CONFLICT (queue, kind, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING id",
        )
        .bind(job.queue.as_str())
        .bind(job.kind.as_str())
        .bind(&job.payload)
        .bind(job.idempotency_key.as_deref())
        .bind(job.run_at)
        .bind(job.max_attempts)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = inserted {
            metrics::counter!("ringledger_jobs_enqueued_total", "queue" => job.queue.to_string())
                .increment(1);
            tracing::debug!(job_id = id, queue = %job.queue, kind = %job.kind, "job enqueued");
            return Ok(Enqueued {
                id: JobId(id),
                created: true,
            });
        }
        // The key was used before: the first job stands, unchanged.
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE queue = $1 AND kind = $2 AND idempotency_key = $3")
                .bind(job.queue.as_str())
                .bind(job.kind.as_str())
                .bind(job.idempotency_key.as_deref())
                .fetch_optional(&mut *conn)
                .await?;
        let id = existing.ok_or_else(|| {
            JobsError::Corrupt(format!(
                "enqueue on queue `{}` kind `{}`: the idempotency key conflicted but no job holds it; retry",
                job.queue, job.kind
            ))
        })?;
        tracing::debug!(job_id = id, queue = %job.queue, kind = %job.kind, "idempotency key seen before; job not enqueued again");
        Ok(Enqueued {
            id: JobId(id),
            created: false,
        })
    }

    /// Wakes the workers of `queue` (best effort: a lost wake-up only costs a poll interval).
    pub async fn wake(&self, queue: &QueueName) {
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(JOBS_CHANNEL)
            .bind(queue.as_str())
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(queue = %queue, error = %e, "cannot NOTIFY job workers; they will poll");
        }
    }
}

fn check_new_job(job: &NewJob) -> Result<(), JobsError> {
    if let Some(key) = &job.idempotency_key {
        if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(JobsError::Invalid(format!(
                "idempotency key of a `{}` job is {} bytes; use 1 to {MAX_IDEMPOTENCY_KEY_BYTES}",
                job.kind,
                key.len()
            )));
        }
    }
    if !(1..=MAX_ATTEMPTS_LIMIT).contains(&job.max_attempts) {
        return Err(JobsError::Invalid(format!(
            "max_attempts of a `{}` job is {}; use 1 to {MAX_ATTEMPTS_LIMIT}",
            job.kind, job.max_attempts
        )));
    }
    let payload_bytes = serde_json::to_vec(&job.payload)
        .map_err(|e| JobsError::Invalid(format!("payload of a `{}` job is not JSON: {e}", job.kind)))?
        .len();
    if payload_bytes > MAX_PAYLOAD_BYTES {
        return Err(JobsError::Invalid(format!(
            "payload of a `{}` job is {payload_bytes} bytes; the limit is {MAX_PAYLOAD_BYTES}: \
             store the data elsewhere and pass its id",
            job.kind
        )));
    }
    Ok(())
}
