//! What operators see and do (the `ringledger-replay jobs` command and the admin pages): the
//! dead-letter list with each job's last error, sending a dead job back to the queue, depths
//! per queue and status, one job's row, and pruning old finished jobs. These must never
//! claim or run a job, and never touch a running one.

use sqlx::postgres::PgRow;
use sqlx::Row;

use super::limits::{MAX_LIST_ROWS, MAX_PRUNE_ROWS};
use super::queue::JobQueue;
use super::types::{DeadJob, JobId, JobSnapshot, JobStatus, QueueDepth, QueueName};
use super::JobsError;

impl JobQueue {
    /// The dead-letter list, newest first, at most `limit` (≤ 1000) entries.
    pub async fn dead_letters(&self, limit: i64) -> Result<Vec<DeadJob>, JobsError> {
        let rows = sqlx::query(
            "SELECT id, queue, kind, attempts, max_attempts, last_error, created_at, finished_at
               FROM jobs WHERE status = 'dead'
              ORDER BY finished_at DESC, id DESC
              LIMIT $1",
        )
        .bind(limit.clamp(0, MAX_LIST_ROWS))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeadJob {
                    id: JobId(r.try_get("id")?),
                    queue: r.try_get("queue")?,
                    kind: r.try_get("kind")?,
                    attempts: r.try_get("attempts")?,
                    max_attempts: r.try_get("max_attempts")?,
                    last_error: r.try_get("last_error")?,
                    created_at: r.try_get("created_at")?,
                    finished_at: r.try_get("finished_at")?,
                })
            })
            .collect()
    }

    /// Sends dead job `id` back to the queue with its attempts reset (its last error is kept
    /// until the next run). `false` if no dead job has that id.
    pub async fn retry_dead(&self, id: JobId) -> Result<bool, JobsError> {
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE jobs SET status = 'queued', attempts = 0, run_at = now(), finished_at = NULL,
                    updated_at = now()
              WHERE id = $1 AND status = 'dead'
             RETURNING queue",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some((queue,)) = row else {
            return Ok(false);
        };
        tracing::info!(job_id = id.0, queue, "dead job sent back to the queue");
        if let Ok(queue) = QueueName::parse(&queue) {
            self.wake(&queue).await;
        }
        Ok(true)
    }

    /// Jobs per queue and status. Also sets the `ringledger_jobs_depth` gauges.
    pub async fn depths(&self) -> Result<Vec<QueueDepth>, JobsError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT queue, status, count(*) FROM jobs GROUP BY queue, status ORDER BY queue, status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut depths = Vec::with_capacity(rows.len());
        for (queue, status, jobs) in rows {
            let status = JobStatus::parse(&status)?;
            metrics::gauge!("ringledger_jobs_depth", "queue" => queue.clone(), "status" => status.as_str())
                .set(crate::gauge_count(jobs));
            depths.push(QueueDepth { queue, status, jobs });
        }
        Ok(depths)
    }

    /// Jobs of `queue` waiting to run (due or not); cheap (a partial index).
    pub async fn queued_count(&self, queue: &QueueName) -> Result<i64, JobsError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE queue = $1 AND status = 'queued'")
            .bind(queue.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// One job's row, if it exists.
    pub async fn snapshot(&self, id: JobId) -> Result<Option<JobSnapshot>, JobsError> {
        let row = sqlx::query(
            "SELECT id, queue, kind, status, attempts, max_attempts, run_at, lease_until, worker,
                    last_error, finished_at
               FROM jobs WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    /// Deletes at most `max_rows` (≤ 100 000) jobs that finished successfully more than
    /// `keep_hours` ago; their idempotency keys go with them. Dead jobs are kept for people to
    /// look at. Returns the rows deleted.
    pub async fn prune_done(&self, keep_hours: u32, max_rows: i64) -> Result<u64, JobsError> {
        let deleted = sqlx::query(
            "DELETE FROM jobs WHERE id IN (
                 SELECT id FROM jobs
                  WHERE status = 'done' AND finished_at < now() - make_interval(hours => $1)
                  ORDER BY finished_at
                  LIMIT $2)",
        )
        .bind(i32::try_from(keep_hours).unwrap_or(i32::MAX))
        .bind(max_rows.clamp(0, MAX_PRUNE_ROWS))
        .execute(&self.pool)
        .await?;
        Ok(deleted.rows_affected())
    }
}

fn snapshot_from_row(r: &PgRow) -> Result<JobSnapshot, JobsError> {
    Ok(JobSnapshot {
        id: JobId(r.try_get("id")?),
        queue: r.try_get("queue")?,
        kind: r.try_get("kind")?,
        status: JobStatus::parse(r.try_get("status")?)?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        run_at: r.try_get("run_at")?,
        lease_until: r.try_get("lease_until")?,
        worker: r.try_get("worker")?,
        last_error: r.try_get("last_error")?,
        finished_at: r.try_get("finished_at")?,
    })
}
