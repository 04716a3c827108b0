//! The forced-hangup process manager's first step (ARCHITECTURE.md, "Projections, jobs and
//! process managers"): it follows the Account events on the runner and, for every
//! `AccountFrozen` (any reason: admin, dispute, fraud, receivable) or `AccountBanned`, enqueues
//! one durable `end_account_calls` job in the runner's own transaction, so the job exists if
//! and only if the checkpoint past the event commits. The job (in the api) ends the account's
//! live calls with a `hangup` to their media nodes. It keeps a small table of the triggers it
//! saw (the audit of why calls were ended) and writes no events.
//!
//! Jobs are keyed by the event's id, so a rebuild re-enqueues nothing still known to the
//! queue; and the job decides on the account's standing *now*, so a trigger replayed long
//! after an unfreeze ends nothing.

use futures::future::BoxFuture;
use ringledger_domain::account::AccountEvent;
use sqlx::PgConnection;

use crate::event::RecordedEvent;
use crate::jobs::{JobKind, JobQueue, NewJob, QueueName, JOBS_CHANNEL};
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

/// The queue forced hangups run on.
pub const HANGUP_QUEUE: &str = "hangups";
/// The job that ends an account's live calls: payload [`EndAccountCalls`].
pub const END_ACCOUNT_CALLS: &str = "end_account_calls";
/// Attempts an `end_account_calls` job gets before it is dead-lettered.
pub const END_ACCOUNT_CALLS_ATTEMPTS: i32 = 10;

/// The payload of an `end_account_calls` job.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EndAccountCalls {
    pub account_id: uuid::Uuid,
    /// What happened: `frozen:<reason>` or `banned` (for logs; the job reads the standing).
    pub trigger: String,
}

pub struct AccountHangups;

const CREATE: &str = "
CREATE TABLE account_hangups_v{v} (
    event_id    uuid PRIMARY KEY,
    account_id  uuid        NOT NULL,
    trigger     text        NOT NULL,
    occurred_at timestamptz NOT NULL
)";

const INDEX: &str = "
CREATE INDEX IF NOT EXISTS account_hangups_v{v}_account ON account_hangups_v{v} (account_id, occurred_at)";

impl Projection for AccountHangups {
    fn name(&self) -> &'static str {
        "account_hangups"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Account"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["account_hangups"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn index_sql(&self) -> &'static str {
        INDEX
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["event_id"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(apply(conn, version, events))
    }
}

/// What an Account event asks of the account's calls, if anything.
pub fn trigger(event: &AccountEvent) -> Option<String> {
    match event {
        AccountEvent::AccountFrozen { reason, .. } => {
            let name = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            Some(format!("frozen:{name}"))
        }
        AccountEvent::AccountBanned { .. } => Some("banned".to_owned()),
        _ => None,
    }
}

async fn apply(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let table = versioned("account_hangups", version);
    let queue = QueueName::parse(HANGUP_QUEUE).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let kind = JobKind::parse(END_ACCOUNT_CALLS).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
    let mut enqueued = false;
    for recorded in events {
        // Most Account events are money; only these two are decoded.
        if !matches!(recorded.event_type.as_str(), "AccountFrozen" | "AccountBanned") {
            continue;
        }
        let event: AccountEvent = recorded.decode()?;
        let Some(trigger) = trigger(&event) else { continue };
        let account_id = crate::account_uuid(recorded)?;
        sqlx::query(&format!(
            "INSERT INTO {table} (event_id, account_id, trigger, occurred_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_id) DO NOTHING"
        ))
        .bind(recorded.event_id)
        .bind(account_id)
        .bind(&trigger)
        .bind(recorded.occurred_at)
        .execute(&mut *conn)
        .await?;
        let payload = serde_json::to_value(EndAccountCalls { account_id, trigger })
            .map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        let job = NewJob::new(queue.clone(), kind.clone(), payload)
            .with_idempotency_key(format!("{account_id}:{}", recorded.event_id))
            .with_max_attempts(END_ACCOUNT_CALLS_ATTEMPTS);
        JobQueue::enqueue_in_tx(conn, &job)
            .await
            .map_err(|e| ProjectionError::Corrupt(format!("enqueueing end_account_calls: {e}")))?;
        enqueued = true;
    }
    if enqueued {
        // Delivered at commit. Freezes and bans are rare, so this NOTIFY does not serialise
        // the busy commits the appender's coalesced NOTIFY is there to keep apart; it saves
        // the hangup workers a poll interval on the way to the media node.
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(JOBS_CHANNEL)
            .bind(HANGUP_QUEUE)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
