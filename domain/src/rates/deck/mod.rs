//! The RateDeck aggregate: one stream per imported deck. Rows arrive in chunks of at most
//! `MAX_CHUNK_ROWS` (each with its source line), then one summary, then activations. A deck's
//! id is derived from its file's SHA-256, so the same file imported twice lands on the same
//! stream and is recognised. No command ever carries a whole deck.

pub mod aggregate;
pub mod commands;
mod compact;
pub mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{deck_id_for_sha256, RateDeck, RateDeckError, MAX_CHUNK_ROWS, MAX_REPORTED_PROBLEMS};
pub use commands::DeckCommand;
pub use events::{DeckEvent, DeckSummary, RowProblem, RowsImported};
