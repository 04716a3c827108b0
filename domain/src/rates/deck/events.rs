//! Rate deck events: rows in chunks, the summary, activations.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{ActorId, DeckId};
use crate::money::Currency;
use crate::rates::{DeckFormat, DeckRow};

/// A row the importer could not use: where it is and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowProblem {
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
}

/// What the file was, recorded once every row is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeckSummary {
    pub file_name: String,
    /// Hex SHA-256 of the file's bytes.
    pub sha256: String,
    pub format: DeckFormat,
    pub currency: Currency,
    /// Good rows imported (the sum over the chunks).
    pub row_count: u64,
    /// Rows refused; the first `MAX_REPORTED_PROBLEMS` are listed in `problems`.
    pub error_count: u64,
    pub problems: Vec<RowProblem>,
    /// Calls placed from this instant on may use the deck once it is activated.
    pub effective_from: DateTime<Utc>,
    pub imported_by: ActorId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum DeckEvent {
    RateDeckRowsImported {
        deck_id: DeckId,
        /// 0-based chunk number; chunks arrive in order.
        chunk: u32,
        #[serde(with = "super::compact")]
        rows: Vec<DeckRow>,
    },
    RateDeckImported {
        deck_id: DeckId,
        summary: DeckSummary,
    },
    RateDeckActivated {
        deck_id: DeckId,
        activated_by: ActorId,
        /// Bad rows the admin chose to go without (0 for a clean deck).
        skipped_rows: u64,
    },
}

/// The payload of `RateDeckRowsImported`, decoded on its own: serde's tagged-enum decoding
/// buffers the whole payload once before decoding it, which for a 5,000-row chunk is the
/// rate table projection's largest cost. Consumers that know the event type use this.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RowsImported {
    pub deck_id: DeckId,
    pub chunk: u32,
    #[serde(with = "super::compact")]
    pub rows: Vec<DeckRow>,
}

impl DeckEvent {
    pub fn name(&self) -> &'static str {
        match self {
            DeckEvent::RateDeckRowsImported { .. } => "RateDeckRowsImported",
            DeckEvent::RateDeckImported { .. } => "RateDeckImported",
            DeckEvent::RateDeckActivated { .. } => "RateDeckActivated",
        }
    }
}

impl DomainEvent for DeckEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
