//! The `rerate` job queue: one `rerate_correction` job per correction, queued when the
//! correction is recorded. A job that dies (or a process killed mid-run) runs again and resumes
//! after the run's last recorded page; the events' keys make every step idempotent.

use std::time::Duration;

use ringledger_projections::jobs::{
    JobError, JobKind, JobQueue, NewJob, QueueConfig, QueueName, Registry, WorkerPool,
};

use super::{ReRater, RerateError, RunOptions};

pub const QUEUE: &str = "rerate";
pub const KIND: &str = "rerate_correction";

fn names() -> Result<(QueueName, JobKind), RerateError> {
    let queue = QueueName::parse(QUEUE).map_err(|e| RerateError::Invalid(e.to_string()))?;
    let kind = JobKind::parse(KIND).map_err(|e| RerateError::Invalid(e.to_string()))?;
    Ok((queue, kind))
}

/// Queues the re-rating of correction `number` (once: the job's key is the correction).
pub async fn enqueue(jobs: &JobQueue, number: u64) -> Result<(), RerateError> {
    let (queue, kind) = names()?;
    let mut job = NewJob::new(queue, kind, serde_json::json!({ "correction": number }));
    job.idempotency_key = Some(format!("rc-{number}"));
    job.max_attempts = 10;
    jobs.enqueue(&job)
        .await
        .map_err(|e| RerateError::Invalid(format!("queueing the re-rating of rc-{number}: {e}")))?;
    Ok(())
}

pub fn registry(rerater: ReRater) -> Result<Registry, RerateError> {
    let (_, kind) = names()?;
    Ok(Registry::new().register_fn(kind, move |job| {
        let rerater = rerater.clone();
        async move {
            let number = job
                .payload
                .get("correction")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| JobError::Permanent("payload has no correction number".into()))?;
            match rerater.run(number, RunOptions::default(), |_| {}).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let _ = rerater.mark_failed(number, &e.to_string()).await;
                    if e.is_transient() {
                        Err(JobError::Retry(e.to_string()))
                    } else {
                        Err(JobError::Permanent(e.to_string()))
                    }
                }
            }
        }
    }))
}

/// One re-rating at a time: each is bulk work over many calls.
pub fn spawn_pool(rerater: ReRater, jobs: JobQueue) -> Result<WorkerPool, RerateError> {
    let (queue, _) = names()?;
    let config = QueueConfig {
        concurrency: 1,
        job_timeout_ms: Duration::from_secs(3_600).as_millis() as u64,
        ..QueueConfig::default()
    };
    WorkerPool::spawn(jobs, queue, registry(rerater)?, config)
        .map_err(|e| RerateError::Invalid(format!("starting the rerate workers: {e}")))
}
