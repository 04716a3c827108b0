//! The RateDeck aggregate: decides on chunked imports and activation; holds only counters, never
//! the rows.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::{ActorId, DeckId};
use crate::money::Currency;
use crate::rates::deck::commands::DeckCommand;
use crate::rates::deck::events::{DeckEvent, DeckSummary};
use crate::rates::DeckRow;

/// Rows per `RateDeckRowsImported` at most (ARCHITECTURE.md, "Rate decks").
pub const MAX_CHUNK_ROWS: usize = 5_000;
/// Problems listed in a deck's summary at most; the rest are counted.
pub const MAX_REPORTED_PROBLEMS: usize = 1_000;
const MAX_FILE_NAME_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateDeckError {
    #[error("this command names deck {got}, but the stream is deck {expected}")]
    WrongDeck { expected: DeckId, got: DeckId },
    #[error("chunk {got} arrived, but chunk {expected} is next; chunks must arrive in order")]
    ChunkOutOfOrder { expected: u32, got: u32 },
    #[error("a chunk holds 1 to {MAX_CHUNK_ROWS} rows (got {0})")]
    ChunkSize(usize),
    #[error("row at line {line} is in {got}, but this deck is in {expected}; one deck has one currency")]
    MixedCurrency {
        line: u64,
        expected: Currency,
        got: Currency,
    },
    #[error("this deck was already imported (from {file_name}); activate it instead of importing it again")]
    AlreadyImported { file_name: String },
    #[error("the summary counts {claimed} rows but {imported} were imported; the import is incomplete")]
    RowCountMismatch { claimed: u64, imported: u64 },
    #[error("the summary lists {listed} problems; at most {MAX_REPORTED_PROBLEMS} are listed and {counted} were counted")]
    ProblemList { listed: usize, counted: u64 },
    #[error("file name must be 1-{MAX_FILE_NAME_CHARS} characters")]
    FileName,
    #[error("`{0}` is not a hex SHA-256")]
    BadSha256(String),
    #[error("this deck's import has not finished; wait for it, or import the file again")]
    NotImported,
    #[error("this deck has no usable rows; fix the file and import it again")]
    Empty,
    #[error(
        "{0} rows of this deck were refused; fix the file and import it again, \
         or activate with skip-bad-rows to use the deck without them"
    )]
    HasBadRows(u64),
}

/// What a deck's stream says so far. Small: counters, not rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateDeck {
    id: Option<DeckId>,
    currency: Option<Currency>,
    chunks: u32,
    rows: u64,
    summary: Option<Finished>,
    activations: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Finished {
    file_name: String,
    error_count: u64,
}

/// The deck id of a file: its SHA-256's first 16 bytes as a UUID (version 8, custom), so
/// importing the same bytes twice addresses the same stream.
pub fn deck_id_for_sha256(sha256: &[u8; 32]) -> DeckId {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&sha256[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    DeckId(Uuid::from_bytes(bytes))
}

impl RateDeck {
    pub fn id(&self) -> Option<DeckId> {
        self.id
    }
    /// Chunks imported so far; the next chunk's number.
    pub fn chunks(&self) -> u32 {
        self.chunks
    }
    pub fn rows(&self) -> u64 {
        self.rows
    }
    pub fn is_imported(&self) -> bool {
        self.summary.is_some()
    }
    pub fn activations(&self) -> u32 {
        self.activations
    }

    fn check_deck(&self, deck_id: DeckId) -> Result<(), RateDeckError> {
        match self.id {
            Some(expected) if expected != deck_id => Err(RateDeckError::WrongDeck {
                expected,
                got: deck_id,
            }),
            _ => Ok(()),
        }
    }

    pub fn decide(&self, command: &DeckCommand) -> Result<Vec<DeckEvent>, RateDeckError> {
        match command {
            DeckCommand::ImportRows { deck_id, chunk, rows } => self.import_rows(*deck_id, *chunk, rows),
            DeckCommand::FinishImport { deck_id, summary } => self.finish(*deck_id, summary),
            DeckCommand::Activate {
                deck_id,
                actor,
                skip_bad_rows,
            } => self.activate(*deck_id, *actor, *skip_bad_rows),
        }
    }

    fn import_rows(
        &self,
        deck_id: DeckId,
        chunk: u32,
        rows: &[DeckRow],
    ) -> Result<Vec<DeckEvent>, RateDeckError> {
        self.check_deck(deck_id)?;
        if let Some(done) = &self.summary {
            return Err(RateDeckError::AlreadyImported {
                file_name: done.file_name.clone(),
            });
        }
        if chunk != self.chunks {
            return Err(RateDeckError::ChunkOutOfOrder {
                expected: self.chunks,
                got: chunk,
            });
        }
        if rows.is_empty() || rows.len() > MAX_CHUNK_ROWS {
            return Err(RateDeckError::ChunkSize(rows.len()));
        }
        let expected = match self.currency {
            Some(c) => c,
            None => rows[0].cost_per_minute.currency(),
        };
        for row in rows {
            for got in [row.cost_per_minute.currency(), row.plan.connect_fee.currency()] {
                if got != expected {
                    return Err(RateDeckError::MixedCurrency {
                        line: row.line,
                        expected,
                        got,
                    });
                }
            }
        }
        Ok(vec![DeckEvent::RateDeckRowsImported {
            deck_id,
            chunk,
            rows: rows.to_vec(),
        }])
    }

    fn finish(&self, deck_id: DeckId, summary: &DeckSummary) -> Result<Vec<DeckEvent>, RateDeckError> {
        self.check_deck(deck_id)?;
        if let Some(done) = &self.summary {
            return Err(RateDeckError::AlreadyImported {
                file_name: done.file_name.clone(),
            });
        }
        if summary.row_count != self.rows {
            return Err(RateDeckError::RowCountMismatch {
                claimed: summary.row_count,
                imported: self.rows,
            });
        }
        let listed = summary.problems.len();
        if listed > MAX_REPORTED_PROBLEMS || listed as u64 > summary.error_count {
            return Err(RateDeckError::ProblemList {
                listed,
                counted: summary.error_count,
            });
        }
        let name_chars = summary.file_name.chars().count();
        if name_chars == 0 || name_chars > MAX_FILE_NAME_CHARS {
            return Err(RateDeckError::FileName);
        }
        let hex_ok = summary.sha256.len() == 64 && summary.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex_ok {
            return Err(RateDeckError::BadSha256(
                summary.sha256.chars().take(80).collect(),
            ));
        }
        if let Some(currency) = self.currency {
            if currency != summary.currency {
                return Err(RateDeckError::MixedCurrency {
                    line: 0,
                    expected: currency,
                    got: summary.currency,
                });
            }
        }
        Ok(vec![DeckEvent::RateDeckImported {
            deck_id,
            summary: summary.clone(),
        }])
    }

    fn activate(
        &self,
        deck_id: DeckId,
        actor: ActorId,
        skip_bad_rows: bool,
    ) -> Result<Vec<DeckEvent>, RateDeckError> {
        self.check_deck(deck_id)?;
        let done = self.summary.as_ref().ok_or(RateDeckError::NotImported)?;
        if self.rows == 0 {
            return Err(RateDeckError::Empty);
        }
        if done.error_count > 0 && !skip_bad_rows {
            return Err(RateDeckError::HasBadRows(done.error_count));
        }
        Ok(vec![DeckEvent::RateDeckActivated {
            deck_id,
            activated_by: actor,
            skipped_rows: done.error_count,
        }])
    }

    pub fn fold(&mut self, event: &DeckEvent) {
        match event {
            DeckEvent::RateDeckRowsImported { deck_id, rows, .. } => {
                self.id = Some(*deck_id);
                if self.currency.is_none() {
                    self.currency = rows.first().map(|r| r.cost_per_minute.currency());
                }
                self.chunks += 1;
                self.rows += rows.len() as u64;
            }
            DeckEvent::RateDeckImported { deck_id, summary } => {
                self.id = Some(*deck_id);
                self.currency = Some(summary.currency);
                self.summary = Some(Finished {
                    file_name: summary.file_name.clone(),
                    error_count: summary.error_count,
                });
            }
            DeckEvent::RateDeckActivated { .. } => self.activations += 1,
        }
    }
}

impl Aggregate for RateDeck {
    const TYPE: &'static str = "RateDeck";
    type Command = DeckCommand;
    type Event = DeckEvent;
    type Error = RateDeckError;
    type Services = ();

    async fn handle(
        &mut self,
        command: DeckCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), RateDeckError> {
        for event in self.decide(&command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: DeckEvent) {
        self.fold(&event);
    }
}
