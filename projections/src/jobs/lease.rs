//! Claiming and finishing jobs. A claim is one short autocommit statement (`FOR UPDATE SKIP
//! LOCKED`, so workers never wait on each other's rows) that marks jobs running under a lease;
//! the work happens afterwards, outside any transaction. Finishing (complete, fail, extend,
//! release) presents the claim's `lease_token`: a worker whose lease expired and whose job was
//! reclaimed finds its token gone and must never record a result.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::Row;

use super::handler::JobError;
use super::limits::{truncate, MAX_CLAIM_BATCH, MAX_ERROR_BYTES, MAX_LEASE_MS, MAX_REAP_BATCH, MIN_LEASE_MS};
use super::queue::JobQueue;
use super::types::{ClaimedJob, JobId, JobKind, Lease, QueueName, WorkerId};
use super::JobsError;

const CLAIMED_COLUMNS: &str = "j.id, j.queue, j.kind, j.payload, j.idempotency_key, j.attempts, \
     j.max_attempts, j.run_at, j.created_at, j.worker, j.lease_token, j.lease_until";

/// What became of a failed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailOutcome {
    /// Queued again, not before `run_at`.
    Retrying { run_at: DateTime<Utc>, delay_ms: u64 },
    /// On the dead-letter list, with its last error.
    Dead,
}

pub(super) fn check_lease_ms(lease_ms: u64) -> Result<(), JobsError> {
    if (MIN_LEASE_MS..=MAX_LEASE_MS).contains(&lease_ms) {
        return Ok(());
    }
    Err(JobsError::Invalid(format!(
        "lease_ms is {lease_ms}; use {MIN_LEASE_MS} to {MAX_LEASE_MS}"
    )))
}

impl JobQueue {
    /// Claims up to `max_jobs` due jobs of `queue` for `worker`, leased for `lease_ms`. Jobs
    /// whose lease expired (their worker died) are first handed back to the queue, or
    /// dead-lettered when that was their last attempt.
    pub async fn claim(
        &self,
        queue: &QueueName,
        worker: &WorkerId,
        max_jobs: usize,
        lease_ms: u64,
    ) -> Result<Vec<ClaimedJob>, JobsError> {
        check_lease_ms(lease_ms)?;
        let max_jobs = max_jobs.min(MAX_CLAIM_BATCH);
        if max_jobs == 0 {
            return Ok(Vec::new());
        }
        self.reap_expired(queue).await?;
        let sql = format!(
            "WITH picked AS (
                 SELECT id FROM jobs
                  WHERE queue = $1 AND status = 'queued' AND run_at <= now()
                  ORDER BY run_at, id
                  LIMIT $2
                  FOR UPDATE SKIP LOCKED)
             UPDATE jobs j
                SET status = 'running', attempts = j.attempts + 1, worker = $3,
                    lease_token = gen_random_uuid(),
                    lease_until = now() + $4::float8 * interval '1 millisecond', updated_at = now()
               FROM picked
              WHERE j.id = picked.id
             RETURNING {CLAIMED_COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(queue.as_str())
            .bind(max_jobs as i64)
            .bind(worker.as_str())
            .bind(lease_ms as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut jobs = rows.iter().map(claimed_from_row).collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by_key(|j| (j.run_at, j.id));
        if !jobs.is_empty() {
            metrics::counter!("ringledger_jobs_claimed_total", "queue" => queue.to_string())
                .increment(jobs.len() as u64);
        }
        Ok(jobs)
    }

    /// Hands running jobs of `queue` whose lease expired back to the queue (their worker is
    /// gone); a job on its last attempt goes to the dead-letter list instead.
    pub async fn reap_expired(&self, queue: &QueueName) -> Result<u64, JobsError> {
        let rows = sqlx::query(
            "WITH expired AS (
                 SELECT id FROM jobs
                  WHERE queue = $1 AND status = 'running' AND lease_until < now()
                  ORDER BY lease_until
                  LIMIT $2
                  FOR UPDATE SKIP LOCKED)
             UPDATE jobs j
                SET status = CASE WHEN j.attempts >= j.max_attempts THEN 'dead' ELSE 'queued' END,
                    finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END,
                    last_error = left(format('lease expired: worker %s stopped without finishing attempt %s of %s',
                                             j.worker, j.attempts, j.max_attempts), $3),
                    run_at = now(), lease_until = NULL, lease_token = NULL, updated_at = now()
               FROM expired
              WHERE j.id = expired.id
             RETURNING j.id, j.kind, j.status, j.worker",
        )
        .bind(queue.as_str())
        .bind(MAX_REAP_BATCH)
        .bind(MAX_ERROR_BYTES as i32)
        .fetch_all(&self.pool)
        .await?;
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            let kind: String = row.try_get("kind")?;
            let status: String = row.try_get("status")?;
            let worker: Option<String> = row.try_get("worker")?;
            tracing::warn!(job_id = id, queue = %queue, kind, status, worker, "job lease expired; its worker is presumed dead");
            if status == "dead" {
                metrics::counter!("ringledger_jobs_dead_total", "queue" => queue.to_string(), "kind" => kind)
                    .increment(1);
            }
        }
        if !rows.is_empty() {
            metrics::counter!("ringledger_jobs_reclaimed_total", "queue" => queue.to_string())
                .increment(rows.len() as u64);
        }
        Ok(rows.len() as u64)
    }

    /// Records that `job` succeeded. [`JobsError::LeaseLost`] if this claim no longer holds it.
    pub async fn complete(&self, job: &ClaimedJob) -> Result<(), JobsError> {
        let done = sqlx::query(
            "UPDATE jobs
                SET status = 'done', finished_at = now(), lease_until = NULL, lease_token = NULL,
                    updated_at = now()
              WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(job.id.0)
        .bind(job.lease.token)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(lease_lost(job, "complete"));
        }
        metrics::counter!("ringledger_jobs_completed_total", "queue" => job.queue.to_string(), "kind" => job.kind.to_string())
            .increment(1);
        Ok(())
    }

    /// Records that a run of `job` failed: queued again after the backoff, or dead-lettered
    /// when the error is permanent or this was the last attempt. The error text is kept
    /// (truncated) as `last_error`.
    pub async fn fail(&self, job: &ClaimedJob, error: &JobError) -> Result<FailOutcome, JobsError> {
        let dead = error.is_permanent() || job.is_last_attempt();
        let delay_ms = if dead {
            0
        } else {
            self.backoff.delay_ms(job.attempts, &mut rand::thread_rng())
        };
        let message = truncate(&error.to_string(), MAX_ERROR_BYTES);
        let run_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE jobs
                SET status = CASE WHEN $3 THEN 'dead' ELSE 'queued' END,
                    finished_at = CASE WHEN $3 THEN now() END,
                    run_at = CASE WHEN $3 THEN run_at ELSE now() + $4::float8 * interval '1 millisecond' END,
                    last_error = $5, lease_until = NULL, lease_token = NULL, updated_at = now()
              WHERE id = $1 AND status = 'running' AND lease_token = $2
             RETURNING run_at",
        )
        .bind(job.id.0)
        .bind(job.lease.token)
        .bind(dead)
        .bind(i64::try_from(delay_ms).unwrap_or(i64::MAX))
        .bind(&message)
        .fetch_optional(&self.pool)
        .await?;
        let run_at = run_at.ok_or_else(|| lease_lost(job, "fail"))?;
        let labels = [("queue", job.queue.to_string()), ("kind", job.kind.to_string())];
        metrics::counter!("ringledger_jobs_failed_total", &labels).increment(1);
        if dead {
            metrics::counter!("ringledger_jobs_dead_total", &labels).increment(1);
            return Ok(FailOutcome::Dead);
        }
        Ok(FailOutcome::Retrying { run_at, delay_ms })
    }

    /// Extends the lease of a long job to `lease_ms` from now (a heartbeat).
    pub async fn extend_lease(&self, job: &ClaimedJob, lease_ms: u64) -> Result<DateTime<Utc>, JobsError> {
        check_lease_ms(lease_ms)?;
        let until: Option<DateTime<Utc>> = sqlx::query_scalar(
            "UPDATE jobs SET lease_until = now() + $3::float8 * interval '1 millisecond', updated_at = now()
              WHERE id = $1 AND status = 'running' AND lease_token = $2
             RETURNING lease_until",
        )
        .bind(job.id.0)
        .bind(job.lease.token)
        .bind(lease_ms as i64)
        .fetch_optional(&self.pool)
        .await?;
        until.ok_or_else(|| lease_lost(job, "extend the lease of"))
    }

    /// Hands `job` back unfinished (a graceful shutdown): queued now, and the interrupted run
    /// does not count as an attempt. `false` if this claim no longer held it.
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool, JobsError> {
        let released = sqlx::query(
            "UPDATE jobs
                SET status = 'queued', attempts = GREATEST(attempts - 1, 0), run_at = now(),
                    lease_until = NULL, lease_token = NULL, updated_at = now()
              WHERE id = $1 AND status = 'running' AND lease_token = $2",
        )
        .bind(job.id.0)
        .bind(job.lease.token)
        .execute(&self.pool)
        .await?;
        Ok(released.rows_affected() == 1)
    }
}

fn lease_lost(job: &ClaimedJob, action: &str) -> JobsError {
    metrics::counter!("ringledger_jobs_lease_lost_total", "queue" => job.queue.to_string()).increment(1);
    tracing::warn!(job_id = job.id.0, queue = %job.queue, kind = %job.kind, worker = %job.lease.worker, attempt = job.attempts,
        "cannot {action} job: this worker no longer holds its lease");
    JobsError::LeaseLost { id: job.id }
}

fn claimed_from_row(row: &PgRow) -> Result<ClaimedJob, JobsError> {
    let corrupt = |e: JobsError| JobsError::Corrupt(format!("jobs row: {e}"));
    let worker: String = row.try_get("worker")?;
    Ok(ClaimedJob {
        id: JobId(row.try_get("id")?),
        queue: QueueName::parse(row.try_get("queue")?).map_err(corrupt)?,
        kind: JobKind::parse(row.try_get("kind")?).map_err(corrupt)?,
        payload: row.try_get("payload")?,
        idempotency_key: row.try_get("idempotency_key")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        run_at: row.try_get("run_at")?,
        created_at: row.try_get("created_at")?,
        lease: Lease {
            worker: WorkerId::parse(&worker).map_err(corrupt)?,
            token: row.try_get("lease_token")?,
            until: row.try_get("lease_until")?,
        },
    })
}
