//! Background work of `ringledger serve` on the durable job queue: the recurring-job ticker and
//! one worker pool per queue this build handles. Today that is the `maintenance` queue, whose
//! recurring `prune_done_jobs` keeps finished jobs from piling up, and the `mail` queue, whose
//! workers send email (`crate::mail`). Stripe webhooks run on the `stripe` queue
//! (`crate::payments::jobs`); later features register their queues here. Never runs work inside a
//! request.

use std::time::Duration;

use ringledger_projections::jobs::{
    JobError, JobKind, JobQueue, QueueConfig, QueueName, RecurringJob, RecurringName, Registry, WorkerPool,
};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const TICK_MS: u64 = 1_000;
/// Finished jobs are kept this long for inspection.
const KEEP_DONE_HOURS: u32 = 24 * 7;
const PRUNE_BATCH_ROWS: i64 = 10_000;

pub struct Background {
    pools: Vec<WorkerPool>,
    ticker: JoinHandle<()>,
    stop_ticker: watch::Sender<bool>,
}

fn name<T>(
    parse: fn(&str) -> Result<T, ringledger_projections::jobs::JobsError>,
    text: &str,
) -> anyhow::Result<T> {
    parse(text).map_err(|e| anyhow::anyhow!("{text}: {e}"))
}

impl Background {
    pub async fn start(
        pool: PgPool,
        mailer: crate::mail::Mailer,
        rates: crate::rates::RateService,
        calls: crate::calls::CallService,
        fraud: crate::fraud::FraudService,
        payments: crate::payments::PaymentService,
    ) -> anyhow::Result<Background> {
        let jobs = JobQueue::new(pool);
        let maintenance = name(QueueName::parse, "maintenance")?;
        let prune = name(JobKind::parse, "prune_done_jobs")?;
        let recurring = RecurringJob {
            name: name(RecurringName::parse, "prune_done_jobs")?,
            queue: maintenance.clone(),
            kind: prune.clone(),
            payload: serde_json::json!({}),
            every_seconds: 3_600,
            max_attempts: 3,
        };
        jobs.schedule_recurring(&recurring, None).await?;
        let prune_sessions = name(JobKind::parse, "prune_sessions")?;
        jobs.schedule_recurring(
            &RecurringJob {
                name: name(RecurringName::parse, "prune_sessions")?,
                queue: maintenance.clone(),
                kind: prune_sessions.clone(),
                payload: serde_json::json!({}),
                every_seconds: 3_600,
                max_attempts: 3,
            },
            None,
        )
        .await?;
        let auth_pool = jobs.pool().clone();
        let pruner = jobs.clone();
        let registry = Registry::new().register_fn(prune, move |_job| {
            let jobs = pruner.clone();
            async move {
                let pruned = jobs
                    .prune_done(KEEP_DONE_HOURS, PRUNE_BATCH_ROWS)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                tracing::info!(pruned, "pruned finished jobs");
                Ok(())
            }
        });
        // Expired sessions and spent email tokens (issue 7), bounded per run.
        let registry = registry.register_fn(prune_sessions, move |_job| {
            let pool = auth_pool.clone();
            async move {
                let retry = |e: sqlx::Error| JobError::Retry(e.to_string());
                let sessions = crate::auth::sessions::prune_expired(&pool, PRUNE_BATCH_ROWS)
                    .await
                    .map_err(retry)?;
                let tokens = crate::auth::tokens::prune(&pool, PRUNE_BATCH_ROWS)
                    .await
                    .map_err(retry)?;
                tracing::info!(sessions, tokens, "pruned expired sessions and tokens");
                Ok(())
            }
        });
        let config = QueueConfig {
            concurrency: 1,
            ..QueueConfig::default()
        };
        let pools = vec![
            WorkerPool::spawn(jobs.clone(), maintenance, registry, config)?,
            crate::mail::mail_worker_pool(jobs.clone(), mailer, crate::mail::MailQueueSettings::default())?,
            crate::rates::jobs::spawn_pool(rates, jobs.clone()).await?,
            crate::rerate::jobs::spawn_pool(
                crate::rerate::ReRater::new(
                    jobs.pool().clone(),
                    calls.ledger().clone(),
                    calls.accounts().clone(),
                ),
                jobs.clone(),
            )?,
            sweeper_pool(calls.clone(), jobs.clone()).await?,
            crate::calls::hangup::spawn_pool(calls, jobs.clone()).await?,
            fraud_pool(fraud, jobs.clone()).await?,
            crate::payments::jobs::spawn_pool(payments, jobs.clone()).await?,
        ];
        let (stop_ticker, stop) = watch::channel(false);
        let ticker = tokio::spawn(ringledger_projections::jobs::run_ticker(jobs, TICK_MS, stop));
        Ok(Background {
            pools,
            ticker,
            stop_ticker,
        })
    }

    /// Stops claiming, lets running jobs finish for up to `timeout`, and hands the rest back.
    pub async fn shutdown(self, timeout: Duration) {
        let _ = self.stop_ticker.send(true);
        let _ = self.ticker.await;
        for pool in self.pools {
            let report = pool.shutdown(timeout).await;
            tracing::info!(?report, "job workers stopped");
        }
    }
}

/// The `calls` queue: the recurring sweep of silent calls and orphaned reservations, every
/// grant validity.
async fn sweeper_pool(calls: crate::calls::CallService, jobs: JobQueue) -> anyhow::Result<WorkerPool> {
    let queue = name(QueueName::parse, "calls")?;
    let kind = name(JobKind::parse, "sweep_calls")?;
    let recurring = RecurringJob {
        name: name(RecurringName::parse, "sweep_calls")?,
        queue: queue.clone(),
        kind: kind.clone(),
        payload: serde_json::json!({}),
        every_seconds: i32::try_from(calls.config().policy.validity_seconds.max(1)).unwrap_or(3_600),
        max_attempts: 3,
    };
    jobs.schedule_recurring(&recurring, None).await?;
    let registry = Registry::new().register_fn(kind, move |_job| {
        let calls = calls.clone();
        async move {
            let report = calls
                .sweep_once(chrono::Utc::now())
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            if report != crate::calls::SweepReport::default() {
                tracing::info!(?report, "ended orphaned calls");
            }
            Ok(())
        }
    });
    let config = QueueConfig {
        concurrency: 1,
        ..QueueConfig::default()
    };
    Ok(WorkerPool::spawn(jobs, queue, registry, config)?)
}

/// The `fraud` queue: the recurring scan of the fraud process manager (docs/fraud.md). Seeds
/// the starter high-risk list the first time.
async fn fraud_pool(fraud: crate::fraud::FraudService, jobs: JobQueue) -> anyhow::Result<WorkerPool> {
    crate::fraud::ranges::seed(fraud.pool()).await?;
    let queue = name(QueueName::parse, "fraud")?;
    let kind = name(JobKind::parse, "fraud_scan")?;
    let recurring = RecurringJob {
        name: name(RecurringName::parse, "fraud_scan")?,
        queue: queue.clone(),
        kind: kind.clone(),
        payload: serde_json::json!({}),
        every_seconds: i32::try_from(fraud.config().scan_every_seconds).unwrap_or(5),
        max_attempts: 5,
    };
    jobs.schedule_recurring(&recurring, None).await?;
    let registry = Registry::new().register_fn(kind, move |_job| {
        let fraud = fraud.clone();
        async move {
            let report = fraud
                .scan_once()
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            if report.flags > 0 || report.freezes > 0 {
                tracing::info!(?report, "fraud scan");
            }
            Ok(())
        }
    });
    let config = QueueConfig {
        concurrency: 1,
        ..QueueConfig::default()
    };
    Ok(WorkerPool::spawn(jobs, queue, registry, config)?)
}
