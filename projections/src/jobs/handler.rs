//! What a job does: a [`JobHandler`] per kind, gathered in a [`Registry`] that a worker pool
//! dispatches from. Handlers run outside any transaction and may run more than once for one
//! job (at-least-once), so each must make its effect idempotent — keyed by the job id or by
//! its own idempotency key. A handler must never hold a transaction open while it waits on
//! something slow (SMTP, Stripe): that would hold the xmin fence for every projection.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::types::{ClaimedJob, JobKind};

/// How a run failed. The text is kept as the job's `last_error` and logged: it must say what
/// went wrong without a secret, token, card data, email address or full phone number in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Might work later (a timeout, a 503): retried after a backoff until `max_attempts`.
    #[error("{0}")]
    Retry(String),
    /// Will never work (a payload that does not decode, an account that no longer exists):
    /// dead-lettered at once.
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn is_permanent(&self) -> bool {
        matches!(self, JobError::Permanent(_))
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Retry(format!("database: {e}"))
    }
}

/// The code behind one job kind.
pub trait JobHandler: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>>;
}

/// A handler written as a closure over an owned copy of the job.
struct FnHandler<F>(F);

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(ClaimedJob) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin((self.0)(job.clone()))
    }
}

/// Handlers by kind.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<JobKind, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers `handler` for `kind`, replacing any earlier one.
    pub fn register(mut self, kind: JobKind, handler: Arc<dyn JobHandler>) -> Registry {
        self.handlers.insert(kind, handler);
        self
    }

    /// Registers an async closure for `kind`.
    pub fn register_fn<F, Fut>(self, kind: JobKind, f: F) -> Registry
    where
        F: Fn(ClaimedJob) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), JobError>> + Send + 'static,
    {
        self.register(kind, Arc::new(FnHandler(f)))
    }

    pub fn get(&self, kind: &JobKind) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(kind)
    }

    /// The kinds this registry knows, for error messages.
    pub fn kinds(&self) -> Vec<&str> {
        self.handlers.keys().map(JobKind::as_str).collect()
    }
}
