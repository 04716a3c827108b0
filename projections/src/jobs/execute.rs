//! One run of one claimed job, as a worker pool's task: find the handler, run it (outside any
//! transaction) under a timeout while a heartbeat extends the lease, then record the result
//! with the claim's lease token. A panicking handler counts as a failed run. A run whose lease
//! was lost stops at once and records nothing: another worker has the job. This module must
//! never open a transaction around a handler.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;

use super::handler::{JobError, JobHandler, Registry};
use super::lease::FailOutcome;
use super::queue::JobQueue;
use super::types::{ClaimedJob, JobId};
use super::JobsError;

/// What every run of one pool shares.
pub(super) struct ExecContext {
    pub queue: JobQueue,
    pub registry: Registry,
    pub lease_ms: u64,
    pub heartbeat_ms: u64,
    pub job_timeout_ms: u64,
}

enum RunOutcome {
    Finished(Result<(), JobError>),
    LeaseLost,
}

/// Runs `job` to the end and records the result; returns its id for the pool's bookkeeping.
pub(super) async fn execute(ctx: Arc<ExecContext>, job: ClaimedJob) -> JobId {
    let started = Instant::now();
    tracing::debug!(job_id = job.id.0, queue = %job.queue, kind = %job.kind, attempt = job.attempts, "job started");
    let outcome = match ctx.registry.get(&job.kind) {
        Some(handler) => run_with_heartbeat(&ctx, handler.as_ref(), &job).await,
        None => RunOutcome::Finished(Err(JobError::Retry(format!(
            "no handler for job kind `{}` on queue `{}` in this build (known: {}); it is retried in \
             case a newer worker knows it, and dead-lettered after max_attempts",
            job.kind,
            job.queue,
            ctx.registry.kinds().join(", ")
        )))),
    };
    metrics::histogram!("ringledger_jobs_run_seconds", "queue" => job.queue.to_string(), "kind" => job.kind.to_string())
        .record(started.elapsed());
    if let RunOutcome::Finished(result) = outcome {
        record(&ctx.queue, &job, result, started).await;
    }
    job.id
}

async fn run_with_heartbeat(ctx: &ExecContext, handler: &dyn JobHandler, job: &ClaimedJob) -> RunOutcome {
    let timeout = Duration::from_millis(ctx.job_timeout_ms);
    let run = tokio::time::timeout(timeout, AssertUnwindSafe(handler.run(job)).catch_unwind());
    tokio::pin!(run);
    let every = Duration::from_millis(ctx.heartbeat_ms);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            finished = &mut run => {
                return RunOutcome::Finished(match finished {
                    Err(_) => Err(JobError::Retry(format!("timed out after {} ms", ctx.job_timeout_ms))),
                    Ok(Err(panic)) => Err(JobError::Retry(format!("handler panicked: {}", panic_text(&*panic)))),
                    Ok(Ok(result)) => result,
                });
            }
            _ = beat.tick() => match ctx.queue.extend_lease(job, ctx.lease_ms).await {
                Ok(_) => {}
                // Another worker has the job now: stop, so the work is not done twice at once.
                Err(JobsError::LeaseLost { .. }) => return RunOutcome::LeaseLost,
                Err(e) => tracing::warn!(job_id = job.id.0, queue = %job.queue, error = %e,
                    "cannot extend the job's lease; trying again at the next heartbeat"),
            },
        }
    }
}

async fn record(queue: &JobQueue, job: &ClaimedJob, result: Result<(), JobError>, started: Instant) {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let (id, q, kind, attempt) = (job.id.0, &job.queue, &job.kind, job.attempts);
    match result {
        Ok(()) => match queue.complete(job).await {
            Ok(()) => tracing::info!(job_id = id, queue = %q, kind = %kind, attempt, elapsed_ms, "job done"),
            Err(JobsError::LeaseLost { .. }) => {}
            Err(e) => tracing::error!(job_id = id, queue = %q, kind = %kind, error = %e,
                "job ran but its completion was not recorded; it will run again when its lease expires"),
        },
        Err(error) => match queue.fail(job, &error).await {
            Ok(FailOutcome::Retrying { run_at, delay_ms }) => {
                tracing::warn!(job_id = id, queue = %q, kind = %kind,
                attempt, max_attempts = job.max_attempts, delay_ms, run_at = %run_at, error = %error, "job failed; will retry")
            }
            Ok(FailOutcome::Dead) => tracing::error!(job_id = id, queue = %q, kind = %kind, attempt,
                permanent = error.is_permanent(), error = %error, "job failed for the last time; dead-lettered"),
            Err(JobsError::LeaseLost { .. }) => {}
            Err(e) => tracing::error!(job_id = id, queue = %q, kind = %kind, error = %e,
                "job failed and the failure was not recorded; it will run again when its lease expires"),
        },
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
