//! The `stripe` queue: the StripeWebhookJob (`stripe.webhook`, one per recorded event) and the
//! recurring purge of old raw payloads (`stripe.purge_inbox`).

use ringledger_projections::jobs::{
    JobError, JobKind, JobQueue, QueueConfig, QueueName, RecurringJob, RecurringName, Registry, WorkerPool,
};

use super::inbox::{self, KIND, QUEUE};
use super::PaymentService;

const PURGE_KIND: &str = "stripe.purge_inbox";
const PURGE_BATCH_ROWS: i64 = 10_000;

#[derive(serde::Deserialize)]
struct WebhookPayload {
    event_id: String,
}

fn parse<T>(f: fn(&str) -> Result<T, ringledger_projections::jobs::JobsError>, s: &str) -> anyhow::Result<T> {
    f(s).map_err(|e| anyhow::anyhow!("{s}: {e}"))
}

/// The handlers of the `stripe` queue.
pub fn registry(payments: PaymentService) -> anyhow::Result<Registry> {
    let webhook = payments.clone();
    let purger = payments;
    Ok(Registry::new()
        .register_fn(parse(JobKind::parse, KIND)?, move |job| {
            let payments = webhook.clone();
            async move {
                let payload: WebhookPayload = job.payload_as()?;
                payments.process_event(&payload.event_id).await.map(|_| ())
            }
        })
        .register_fn(parse(JobKind::parse, PURGE_KIND)?, move |_job| {
            let payments = purger.clone();
            async move {
                let days = payments.config().inbox_retention_days;
                let purged = inbox::purge(payments.pool(), days, PURGE_BATCH_ROWS)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                if purged > 0 {
                    tracing::info!(
                        purged,
                        retention_days = days,
                        "purged raw stripe webhook payloads"
                    );
                }
                Ok(())
            }
        }))
}

/// Schedules the purge and starts the workers of the `stripe` queue.
pub async fn spawn_pool(payments: PaymentService, jobs: JobQueue) -> anyhow::Result<WorkerPool> {
    let queue = parse(QueueName::parse, QUEUE)?;
    let recurring = RecurringJob {
        name: parse(RecurringName::parse, PURGE_KIND)?,
        queue: queue.clone(),
        kind: parse(JobKind::parse, PURGE_KIND)?,
        payload: serde_json::json!({}),
        every_seconds: payments.config().purge_every_seconds,
        max_attempts: 3,
    };
    jobs.schedule_recurring(&recurring, None).await?;
    let config = QueueConfig {
        concurrency: payments.config().worker_concurrency,
        poll_ms: 250,
        ..QueueConfig::default()
    };
    let registry = registry(payments)?;
    Ok(WorkerPool::spawn(jobs, queue, registry, config)?)
}
