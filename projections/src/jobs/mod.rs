//! Durable jobs: the background work of RingLedger (email, Stripe webhooks, sweeping, fraud
//! checks, rate imports), in Postgres. A job is enqueued (optionally in the caller's
//! transaction, with an idempotency key), claimed by a worker with `FOR UPDATE SKIP LOCKED` and
//! a lease in one short statement, run outside any transaction, then completed or failed with
//! the claim's lease token. Delivery is at-least-once: a worker that dies loses its lease and
//! the job runs again, so every handler makes its effect idempotent. Failures retry with
//! exponential backoff and jitter, then land on a dead-letter list with their last error.
//! Recurring jobs are enqueued once per period however many processes tick.
//!
//! This module must never run a job inside a transaction (a slow job would hold the xmin
//! fence every projection runner waits on), never let a worker whose lease was reclaimed
//! record a result, and never log a job's payload (it may hold an email address or a phone
//! number).
//!
//! Map: `types` (ids, names, rows), `queue` (enqueue), `lease` (claim, complete, fail,
//! heartbeat, release), `admin` (dead letters, depths), `recurring`, `handler` (handlers and
//! their registry), `config` and `worker` (the pool per queue), `execute` (one run), `backoff`, `limits`.

mod admin;
mod backoff;
mod config;
mod execute;
mod handler;
mod lease;
pub mod limits;
mod queue;
mod recurring;
mod types;
mod worker;

#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use config::{QueueConfig, ShutdownReport};
pub use handler::{JobError, JobHandler, Registry};
pub use lease::FailOutcome;
pub use queue::{JobQueue, JOBS_CHANNEL};
pub use recurring::{run_key, run_ticker, RecurringJob};
pub use types::{
    ClaimedJob, DeadJob, Enqueued, JobId, JobKind, JobSnapshot, JobStatus, Lease, NewJob, QueueDepth,
    QueueName, RecurringName, WorkerId,
};
pub use worker::WorkerPool;

/// What the job queue's operations can fail with.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("job queue database: {0}")]
    Database(#[from] sqlx::Error),
    /// Input refused before it reached the database; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// The claim no longer holds the job: its lease expired and another worker took it, or it
    /// was finished or handed back. The result of this run was not recorded.
    #[error("job {id}: this worker no longer holds its lease (it expired and the job was reclaimed); the result was not recorded")]
    LeaseLost { id: JobId },
    #[error("job queue is inconsistent: {0}")]
    Corrupt(String),
}
