//! Command services: run an aggregate's commands through a per-aggregate queue, against a
//! cached state checked by stream version on append, and persist the events atomically with
//! their idempotency keys.
//!
//! One worker task owns each busy aggregate: commands to one stream are serialised in-process,
//! and whatever has queued up while an append was in flight is decided and appended as one
//! batch, so a hot account pays one round trip per batch rather than per command. A write from
//! another process shows up as a conflict on append: the worker reads the events it missed and
//! decides again, a bounded number of times. This module never reads a balance from a
//! projection and never holds a transaction open while deciding.

mod account;
mod call;
mod payment;
mod rates;
mod topup;
mod worker;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use tokio::sync::{mpsc, oneshot};

use crate::store::{EventStore, StoreError};

pub use account::AccountService;

/// An aggregate the command service can drive: a pure decision and a fold.
pub trait Decider:
    Aggregate<Command: Send + Sync + 'static, Error: Clone + Send + Sync + 'static> + Clone + 'static
{
    fn decide_command(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;
    fn fold_event(&mut self, event: &Self::Event);
    fn command_name(command: &Self::Command) -> &'static str;
    /// Return the state after each command in its `Outcome` (a clone per command): for
    /// aggregates whose answer is more than their events, such as the Call's grant.
    const STATE_IN_OUTCOME: bool = false;
}

/// Limits of the command service (docs/configuration.md, `[ledger]`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct LedgerConfig {
    /// Commands waiting per aggregate before callers are told the account is busy.
    pub queue_capacity: usize,
    /// Commands decided and appended together at most.
    pub max_batch: usize,
    /// Times a batch is re-decided after another process wrote to the stream first.
    pub max_conflict_retries: u32,
    /// Take a snapshot once this many events follow the last one.
    pub snapshot_every: u64,
    /// A worker with nothing to do for this long exits and drops its cached state.
    pub idle_ms: u64,
    /// Aggregates held hot in memory at most; past this, commands are refused as busy.
    pub max_hot_aggregates: usize,
    /// How long a caller waits for room in a queue.
    pub enqueue_timeout_ms: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            queue_capacity: 1_024,
            max_batch: 256,
            max_conflict_retries: 16,
            snapshot_every: 100,
            idle_ms: 60_000,
            max_hot_aggregates: 100_000,
            enqueue_timeout_ms: 5_000,
        }
    }
}

/// A command with what the service needs around it.
#[derive(Debug, Clone)]
pub struct Envelope<C> {
    pub command: C,
    /// A retried command carries the same key; a repeat returns the first outcome.
    pub idempotency_key: Option<String>,
}

impl<C> Envelope<C> {
    pub fn new(command: C) -> Self {
        Envelope {
            command,
            idempotency_key: None,
        }
    }
    pub fn with_key(command: C, key: impl Into<String>) -> Self {
        Envelope {
            command,
            idempotency_key: Some(key.into()),
        }
    }
}

/// An event as committed: its place in the stream and when it occurred.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed<E> {
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    pub event: E,
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome<E, A = ()> {
    pub events: Vec<Committed<E>>,
    /// True when this is the stored answer to an idempotency key seen before.
    pub replayed: bool,
    /// Rows the worker read to load the aggregate for this command (0 when it was cached).
    pub rows_loaded: u64,
    /// The aggregate right after this command, when `Decider::STATE_IN_OUTCOME` asks for it;
    /// for a replayed idempotency key, the state when the answer was read.
    pub state: Option<A>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    #[error("refused: {0}")]
    Rejected(E),
    #[error("this account is busy; try again shortly")]
    Busy,
    #[error("gave up after {0} conflicting writes from other processes")]
    Conflict(u32),
    #[error("idempotency key must be 1-255 characters")]
    BadKey,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the command service is shutting down")]
    ShuttingDown,
}

/// What `Ledger::execute` answers.
pub type Answer<A> = Result<Outcome<<A as Aggregate>::Event, A>, CommandError<<A as Aggregate>::Error>>;

pub(crate) type Reply<A> = oneshot::Sender<Answer<A>>;

pub(crate) struct Job<A: Aggregate> {
    pub envelope: Envelope<A::Command>,
    pub reply: Reply<A>,
}

/// Counters a test or `/metrics` can read.
#[derive(Debug, Default)]
pub struct LedgerStats {
    pub batches: AtomicU64,
    pub commands: AtomicU64,
    pub events_appended: AtomicU64,
    pub conflicts: AtomicU64,
    pub loads: AtomicU64,
    pub rows_loaded: AtomicU64,
}

impl LedgerStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

pub(crate) struct Shared<A: Aggregate, S> {
    pub store: Arc<S>,
    pub config: LedgerConfig,
    pub workers: Mutex<HashMap<String, mpsc::Sender<Job<A>>>>,
    pub stats: LedgerStats,
    pub appended: Arc<tokio::sync::Notify>,
}

/// A command queued on its aggregate's worker; `outcome` waits for the decision.
pub struct Pending<A: Aggregate> {
    answer: oneshot::Receiver<Answer<A>>,
}

impl<A: Aggregate> Pending<A> {
    pub async fn outcome(self) -> Answer<A> {
        self.answer.await.map_err(|_| CommandError::ShuttingDown)?
    }
}

/// The command service for one aggregate type.
pub struct Ledger<A: Decider, S: EventStore> {
    shared: Arc<Shared<A, S>>,
}

impl<A: Decider, S: EventStore> Clone for Ledger<A, S> {
    fn clone(&self) -> Self {
        Ledger {
            shared: self.shared.clone(),
        }
    }
}

impl<A: Decider, S: EventStore> Ledger<A, S> {
    pub fn new(store: Arc<S>, config: LedgerConfig) -> Self {
        Self::with_appended(store, config, Arc::new(tokio::sync::Notify::new()))
    }

    /// A ledger that wakes `appended` after its appends: several aggregate types share one
    /// wake-up, so one NOTIFY sender serves them all.
    pub fn with_appended(store: Arc<S>, config: LedgerConfig, appended: Arc<tokio::sync::Notify>) -> Self {
        Ledger {
            shared: Arc::new(Shared {
                store,
                config,
                workers: Mutex::new(HashMap::new()),
                stats: LedgerStats::default(),
                appended,
            }),
        }
    }

    pub fn stats(&self) -> &LedgerStats {
        &self.shared.stats
    }

    pub fn store(&self) -> &Arc<S> {
        &self.shared.store
    }

    /// Woken after each successful append (the coalesced NOTIFY sender listens here).
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.shared.appended.clone()
    }

    /// Runs one command on the aggregate `aggregate_id`.
    pub async fn execute(&self, aggregate_id: &str, envelope: Envelope<A::Command>) -> Answer<A> {
        self.submit(aggregate_id, envelope).await?.outcome().await
    }

    /// Queues one command on `aggregate_id`'s worker and returns without waiting for it to be
    /// decided. Commands submitted one after another are decided in that order, and whatever
    /// has queued up is appended as one batch: a caller streaming many commands to one stream
    /// (a deck import's chunks) keeps a few in flight instead of paying a commit per command.
    pub async fn submit(
        &self,
        aggregate_id: &str,
        envelope: Envelope<A::Command>,
    ) -> Result<Pending<A>, CommandError<A::Error>> {
        if let Some(key) = &envelope.idempotency_key {
            if key.is_empty() || key.len() > 255 {
                return Err(CommandError::BadKey);
            }
        }
        let timeout = Duration::from_millis(self.shared.config.enqueue_timeout_ms);
        let (reply, answer) = oneshot::channel();
        let mut job = Job { envelope, reply };
        // A worker may exit between our lookup and our send; then start a fresh one.
        for _ in 0..3 {
            let sender = self.worker_for(aggregate_id)?;
            match tokio::time::timeout(timeout, sender.send(job)).await {
                Ok(Ok(())) => return Ok(Pending { answer }),
                Ok(Err(mpsc::error::SendError(returned))) => {
                    self.forget_worker(aggregate_id, &sender);
                    job = returned;
                }
                Err(_) => return Err(CommandError::Busy),
            }
        }
        Err(CommandError::Busy)
    }

    fn worker_for(&self, aggregate_id: &str) -> Result<mpsc::Sender<Job<A>>, CommandError<A::Error>> {
        let mut workers = self
            .shared
            .workers
            .lock()
            .map_err(|_| CommandError::ShuttingDown)?;
        if let Some(sender) = workers.get(aggregate_id) {
            if !sender.is_closed() {
                return Ok(sender.clone());
            }
        }
        if workers.len() >= self.shared.config.max_hot_aggregates {
            workers.retain(|_, s| !s.is_closed());
            if workers.len() >= self.shared.config.max_hot_aggregates {
                return Err(CommandError::Busy);
            }
        }
        let (sender, receiver) = mpsc::channel(self.shared.config.queue_capacity.max(1));
        workers.insert(aggregate_id.to_owned(), sender.clone());
        tokio::spawn(worker::run(
            self.shared.clone(),
            aggregate_id.to_owned(),
            receiver,
        ));
        Ok(sender)
    }

    /// The aggregate as stored now (snapshot and the events after it), read outside its queue:
    /// for facts a decision elsewhere needs, and to resume a process after a crash.
    pub async fn load(&self, aggregate_id: &str) -> Result<A, StoreError> {
        worker::load_fresh(&self.shared, aggregate_id).await
    }

    fn forget_worker(&self, aggregate_id: &str, dead: &mpsc::Sender<Job<A>>) {
        if let Ok(mut workers) = self.shared.workers.lock() {
            if workers.get(aggregate_id).is_some_and(|s| s.same_channel(dead)) {
                workers.remove(aggregate_id);
            }
        }
    }
}
