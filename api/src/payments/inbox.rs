//! The inbox: the webhook's receiving end. `receive` verifies the signature, parses the
//! envelope and records the raw event with its processing job in one short transaction, then
//! answers; nothing here decides anything about money. Also the inbox's upkeep: marking rows
//! processed, purging old payloads, and the dead letters admins see.
//!
//! A refusal is logged with its reason and the event id when the body has one, never with the
//! body, the header, a signature or a secret.

use chrono::{DateTime, Utc};
use ringledger_projections::jobs::{JobKind, JobQueue, NewJob, QueueName};
use sqlx::PgPool;

use super::PaymentService;
use crate::stripe::event::{event_id_hint, is_handled, Envelope, EnvelopeError};
use crate::stripe::signature::{self, SignatureError};

/// The queue and job kind that process recorded events.
pub const QUEUE: &str = "stripe";
pub const KIND: &str = "stripe.webhook";

/// What became of a verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New, and a job will process it.
    Recorded { event_id: String },
    /// New, of a type we do not handle: stored and marked ignored.
    Ignored { event_id: String },
    /// Seen before: nothing changed.
    Duplicate { event_id: String },
}

/// Why a request was refused (answered 400; Stripe retries for days, so nothing is lost).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Malformed(#[from] EnvelopeError),
}

impl Refusal {
    /// The metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Signature(SignatureError::OutsideTolerance { .. }) => "timestamp",
            Refusal::Signature(SignatureError::NoSecret) => "no_secret_configured",
            Refusal::Signature(SignatureError::Missing) => "no_signature",
            Refusal::Signature(_) => "signature",
            Refusal::Malformed(_) => "malformed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    #[error("could not record the event: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not enqueue the event: {0}")]
    Queue(#[from] ringledger_projections::jobs::JobsError),
}

impl PaymentService {
    /// Verifies and records one webhook delivery; `now` is our clock in unix seconds.
    pub async fn receive(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Received, ReceiveError> {
        match self.verify_and_parse(header, body, now) {
            Ok(envelope) => {
                let received = self.record(&envelope, body).await?;
                let outcome = match &received {
                    Received::Recorded { .. } => "recorded",
                    Received::Ignored { .. } => "ignored",
                    Received::Duplicate { .. } => "duplicate",
                };
                metrics::counter!("ringledger_stripe_webhooks_received_total", "outcome" => outcome)
                    .increment(1);
                tracing::info!(event_id = %envelope.id, event_type = %envelope.event_type, outcome, "stripe webhook");
                Ok(received)
            }
            Err(refusal) => {
                let reason = refusal.reason();
                metrics::counter!("ringledger_stripe_webhooks_refused_total", "reason" => reason)
                    .increment(1);
                let event_id = event_id_hint(body);
                if matches!(refusal, Refusal::Signature(SignatureError::NoSecret)) {
                    tracing::error!(event_id, reason, "stripe webhook refused: no webhook secret is configured (RINGLEDGER_STRIPE_WEBHOOK_SECRET)");
                } else {
                    tracing::warn!(event_id, reason, error = %refusal, bytes = body.len(), "stripe webhook refused");
                }
                Err(refusal.into())
            }
        }
    }

    fn verify_and_parse(&self, header: Option<&str>, body: &[u8], now: i64) -> Result<Envelope, Refusal> {
        let secrets: Vec<&str> = self.secrets.iter().map(|s| s.expose()).collect();
        signature::verify(header, body, &secrets, now, signature::DEFAULT_TOLERANCE_SECS)?;
        Ok(Envelope::parse(body)?)
    }

    /// Records the event and, for a handled type, its job, in one transaction.
    async fn record(&self, envelope: &Envelope, raw: &[u8]) -> Result<Received, ReceiveError> {
        let event_id = envelope.id.clone();
        let handled = is_handled(&envelope.event_type);
        // Verified and parsed as JSON, so it is UTF-8.
        let payload = String::from_utf8_lossy(raw);
        let created = DateTime::<Utc>::from_timestamp(envelope.created, 0).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO stripe_inbox (event_id, event_type, livemode, api_version, stripe_created,
                                       payload, payload_bytes, status, outcome, processed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7,
                     CASE WHEN $8 THEN 'received' ELSE 'ignored' END,
                     CASE WHEN $8 THEN NULL ELSE 'event type not handled' END,
                     CASE WHEN $8 THEN NULL ELSE now() END)
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event_id)
        .bind(&envelope.event_type)
        .bind(envelope.livemode)
        .bind(
            envelope
                .api_version
                .as_deref()
                .map(|v| v.chars().take(64).collect::<String>()),
        )
        .bind(created)
        .bind(payload.as_ref())
        .bind(i32::try_from(raw.len()).unwrap_or(i32::MAX))
        .bind(handled)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            tx.rollback().await?;
            return Ok(Received::Duplicate { event_id });
        }
        if !handled {
            tx.commit().await?;
            return Ok(Received::Ignored { event_id });
        }
        let job = webhook_job(&event_id, self.config.max_attempts)?;
        JobQueue::enqueue_in_tx(&mut tx, &job).await?;
        tx.commit().await?;
        JobQueue::new(self.pool.clone()).wake(&job.queue).await;
        Ok(Received::Recorded { event_id })
    }
}

/// The job that processes recorded event `event_id` (keyed by it: one job per event).
pub fn webhook_job(
    event_id: &str,
    max_attempts: i32,
) -> Result<NewJob, ringledger_projections::jobs::JobsError> {
    Ok(NewJob::new(
        QueueName::parse(QUEUE)?,
        JobKind::parse(KIND)?,
        serde_json::json!({ "event_id": event_id }),
    )
    .with_idempotency_key(event_id)
    .with_max_attempts(max_attempts))
}

/// A recorded event as the job reads it.
pub(super) struct InboxRow {
    pub status: String,
    pub payload: Option<String>,
}

pub(super) async fn load(pool: &PgPool, event_id: &str) -> Result<Option<InboxRow>, sqlx::Error> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT status, payload FROM stripe_inbox WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(status, payload)| InboxRow { status, payload }))
}

pub(super) async fn mark_processed(
    pool: &PgPool,
    event_id: &str,
    outcome: &str,
    payment_intent: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE stripe_inbox SET status = 'processed', outcome = left($2, 1000), payment_intent = $3,
                processed_at = COALESCE(processed_at, now())
          WHERE event_id = $1",
    )
    .bind(event_id)
    .bind(outcome)
    .bind(payment_intent)
    .execute(pool)
    .await?;
    Ok(())
}

/// Purges at most `max_rows` payloads of events processed or ignored more than
/// `retention_days` ago. Returns the rows purged.
pub async fn purge(pool: &PgPool, retention_days: u32, max_rows: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE stripe_inbox SET payload = NULL, purged_at = now()
          WHERE event_id IN (
                SELECT event_id FROM stripe_inbox
                 WHERE payload IS NOT NULL AND status <> 'received'
                   AND received_at < now() - make_interval(days => $1)
                 ORDER BY received_at
                 LIMIT $2)",
    )
    .bind(i32::try_from(retention_days).unwrap_or(i32::MAX))
    .bind(max_rows.clamp(0, 100_000))
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// A dead-lettered webhook event, for the admin page.
#[derive(Debug, Clone)]
pub struct DeadWebhook {
    pub job_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub received_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: String,
    pub payload_kept: bool,
}

/// The newest `limit` (≤ 200) dead-lettered webhook events.
pub async fn dead_letters(pool: &PgPool, limit: i64) -> Result<Vec<DeadWebhook>, sqlx::Error> {
    type Row = (i64, String, String, DateTime<Utc>, i32, Option<String>, bool);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT j.id, i.event_id, i.event_type, i.received_at, j.attempts, j.last_error, i.payload IS NOT NULL
           FROM jobs j JOIN stripe_inbox i ON i.event_id = j.idempotency_key
          WHERE j.queue = $1 AND j.kind = $2 AND j.status = 'dead'
          ORDER BY j.finished_at DESC, j.id DESC
          LIMIT $3",
    )
    .bind(QUEUE)
    .bind(KIND)
    .bind(limit.clamp(0, 200))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(job_id, event_id, event_type, received_at, attempts, last_error, payload_kept)| DeadWebhook {
                job_id,
                event_id,
                event_type,
                received_at,
                attempts,
                last_error: last_error.unwrap_or_default(),
                payload_kept,
            },
        )
        .collect())
}

/// Sends dead webhook job `job_id` back to its queue. `false` if it is not a dead webhook job.
pub async fn retry_dead(pool: &PgPool, job_id: i64) -> Result<bool, ringledger_projections::jobs::JobsError> {
    let is_webhook: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE id = $1 AND queue = $2 AND kind = $3 AND status = 'dead'",
    )
    .bind(job_id)
    .bind(QUEUE)
    .bind(KIND)
    .fetch_optional(pool)
    .await?;
    if is_webhook.is_none() {
        return Ok(false);
    }
    JobQueue::new(pool.clone())
        .retry_dead(ringledger_projections::jobs::JobId(job_id))
        .await
}
