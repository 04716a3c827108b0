//! The event store trait and its Postgres adapter.
//!
//! The trait is what command services see, so another backend (KurrentDB through the
//! `eventstore` crate) could sit behind it. An append is atomic: the events and the idempotency
//! keys they answer are written together or not at all. The store never decides anything.

mod postgres;

use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use postgres::PostgresStore;

/// One event as read back from a stream.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence: u64,
    pub event_type: String,
    pub payload: Value,
    pub metadata: Value,
}

/// One event to append at an exact stream position.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub sequence: u64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    pub metadata: Value,
}

/// An idempotency key and the stream range its command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub key: String,
    pub first_sequence: u64,
    pub last_sequence: u64,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub last_sequence: u64,
    pub last_occurred_at: DateTime<Utc>,
    pub payload: Value,
}

/// A batch of events for one stream, stamped with one `occurred_at`.
#[derive(Debug)]
pub struct Append<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub occurred_at: DateTime<Utc>,
    pub events: &'a [NewEvent],
    pub keys: &'a [KeyRecord],
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer got to this stream position or idempotency key first: reload and retry.
    #[error("another writer appended to this stream first")]
    Conflict,
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("event store unavailable: {0}")]
    Database(#[from] sqlx::Error),
    /// The same failure, told to every command of a batch.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// A copy to hand to each waiting caller (database errors are not `Clone`).
    pub fn shared(&self) -> StoreError {
        match self {
            StoreError::Conflict => StoreError::Conflict,
            StoreError::Corrupt(m) => StoreError::Corrupt(m.clone()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

pub trait EventStore: Send + Sync + 'static {
    /// Events of a stream with `sequence > after`, in order.
    fn load_after<A: cqrs_es::Aggregate>(
        &self,
        aggregate_id: &str,
        after: u64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Events of a stream with `first <= sequence <= last`, in order.
    fn load_range(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        first: u64,
        last: u64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    fn snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;

    /// Replaces the stream's snapshot if this one is newer.
    fn save_snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        snapshot: &Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Which of `keys` this stream has already answered, and with what range.
    fn find_keys(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        keys: &[String],
    ) -> impl Future<Output = Result<Vec<KeyRecord>, StoreError>> + Send;

    /// Appends atomically; `Conflict` if any position or key is taken. Returns the last
    /// global position written.
    fn append(&self, batch: Append<'_>) -> impl Future<Output = Result<i64, StoreError>> + Send;
}
