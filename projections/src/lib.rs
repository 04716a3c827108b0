//! Read models folded from the event log: pure `apply` functions over plain structs plus thin
//! SQL stores, driven by the catch-up runner (commit order, below the xmin fence, read model
//! and checkpoint in one transaction); blue/green versions with atomic switch; point-in-time
//! balances; and the durable job queue background work runs on. Projections never write events.

pub mod as_of;
pub mod audit;
pub mod balance;
pub mod cache;
pub mod calls;
pub mod corrections;
pub mod event;
pub mod fraud;
pub mod jobs;
pub mod margins;
pub mod projection;
pub mod rates;
pub mod runner;
pub mod statement;
pub mod supervisor;
pub mod verify;
pub mod versions;

use std::sync::Arc;

pub use event::{Position, RecordedEvent};
pub use projection::Projection;
pub use runner::{Runner, RunnerConfig};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event at global position {global_position} does not decode: {message}")]
    Decode { global_position: i64, message: String },
    #[error("read model is inconsistent: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Usage(String),
}

/// Every projection this build knows, by name.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(balance::Balances::default()),
        Arc::new(statement::Statements::default()),
        Arc::new(audit::AuditTrail),
        Arc::new(rates::RateTable),
        Arc::new(calls::CallLog),
        Arc::new(calls::OpenReservations),
        Arc::new(fraud::FraudSignals),
        Arc::new(corrections::RateCorrectionsTable),
        Arc::new(margins::CallMargins),
        Arc::new(calls::hangups::AccountHangups),
    ]
}

/// The projection called `name`.
pub fn by_name(name: &str) -> Result<Arc<dyn Projection>, ProjectionError> {
    all().into_iter().find(|p| p.name() == name).ok_or_else(|| {
        let known: Vec<&str> = all().iter().map(|p| p.name()).collect();
        ProjectionError::Usage(format!(
            "no projection named `{name}`; known: {}",
            known.join(", ")
        ))
    })
}

/// A count as a gauge value (the `metrics` facade takes small integers exactly; counts
/// beyond `u32::MAX` saturate).
pub fn gauge_count(n: impl TryInto<u32>) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// Streams of accounts, calls and rate decks are named by a UUID; `kind` names the stream
/// in the error.
pub(crate) fn stream_uuid(event: &RecordedEvent, kind: &str) -> Result<uuid::Uuid, ProjectionError> {
    uuid::Uuid::parse_str(&event.aggregate_id).map_err(|_| {
        ProjectionError::Corrupt(format!("{kind} stream id `{}` is not a UUID", event.aggregate_id))
    })
}

/// Account streams are named by the account's UUID.
pub(crate) fn account_uuid(event: &RecordedEvent) -> Result<uuid::Uuid, ProjectionError> {
    stream_uuid(event, "account")
}
