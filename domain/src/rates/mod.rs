//! Rates: what a call costs us (imported decks) and what it costs the caller (pricing rules),
//! the lookup from a dialled number to a rate, and quotes. Pure: files arrive as readers, the
//! clock arrives with commands. Nothing here ever holds a whole deck in one event or command.

pub mod correction;
pub mod deck;
pub mod formats;
pub mod lookup;
pub mod policy;
pub mod pricing;
pub mod quote;
mod row;

pub use formats::{
    write_generic, write_twilio, DeckReader, HeaderError, ImportReport, ReadOptions, RowError,
};
pub use lookup::{
    AdminBlock, AdminTarget, BlockKind, BlockList, Blocked, DialError, Match, PrefixEntry, PrefixTable,
    PrefixTableError,
};
pub use row::{DeckFormat, DeckRow};
