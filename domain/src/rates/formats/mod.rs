//! Rate deck files in and out: a streaming reader for Twilio's voice pricing CSV and our generic
//! CSV, and exporters that write rows back so that reading an export gives the same rows.
//!
//! Pure: files arrive as `std::io::Read`, leave as `std::io::Write`. The reader never holds the
//! whole file: it yields one row at a time, and only remembers the prefixes it has seen (to
//! report duplicates). Columns are found by header name, never by position. Every error names
//! the line and the column and says what to do. Money is parsed as exact decimals, never floats.
//! The formats, defaults and limits are written down in docs/rate-deck-formats.md.

mod error;
mod fields;
mod header;
mod reader;
mod report;
mod routes;
mod source;
mod writer;

#[cfg(test)]
mod tests;

pub use error::{HeaderError, InputError, Origin, RowError, RowErrorKind, WriteError};
pub use reader::DeckReader;
pub use report::{ImportReport, DEFAULT_KEPT_ERRORS};
pub use writer::{write_generic, write_twilio};

use crate::money::{Currency, Money};
use crate::rates::DeckFormat;
use crate::rating::BillingPlan;

/// E.164 numbers have at most 15 digits, so no prefix can be longer.
pub const MAX_PREFIX_DIGITS: usize = 15;

/// How to read a deck: its currency, the plan for rows that carry none, and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// The deck's one currency; a row in another currency is an error.
    pub currency: Currency,
    /// Plan for Twilio rows (the format has none) and generic cells left empty.
    pub default_plan: BillingPlan,
    /// `None` detects the format from the header.
    pub format: Option<DeckFormat>,
    pub limits: Limits,
}

impl ReadOptions {
    /// Detected format, default limits and a 60/60 plan with no connect fee: how Twilio bills
    /// voice (per minute, rounded up to the whole minute).
    pub fn new(currency: Currency) -> ReadOptions {
        ReadOptions {
            currency,
            default_plan: BillingPlan {
                connect_fee: Money::zero(currency),
                first_increment_seconds: 60,
                next_increment_seconds: 60,
            },
            format: None,
            limits: Limits::default(),
        }
    }

    /// Reads the file as `format` whatever its header looks like.
    pub fn with_format(mut self, format: DeckFormat) -> ReadOptions {
        self.format = Some(format);
        self
    }

    pub fn with_plan(mut self, plan: BillingPlan) -> ReadOptions {
        self.default_plan = plan;
        self
    }

    pub fn with_limits(mut self, limits: Limits) -> ReadOptions {
        self.limits = limits;
        self
    }
}

/// Upper bounds on what one upload may hold; each is named in the error that reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole file, in bytes. Reading stops at the limit.
    pub max_input_bytes: u64,
    /// One row, in bytes as written (quotes and commas included). A longer row stops the
    /// reading: it is most likely a quote left open, and nothing after it can be trusted.
    pub max_row_bytes: usize,
    /// One cell, in bytes.
    pub max_field_bytes: usize,
    /// Data rows (blank lines not counted).
    pub max_rows: u64,
    /// Prefixes in one cell (`"1201, 1202"` is two).
    pub max_prefixes_per_cell: usize,
    /// Distinct (origination, destination) prefix pairs remembered to find duplicates.
    pub max_routes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_input_bytes: 256 * 1024 * 1024,
            max_row_bytes: 64 * 1024,
            max_field_bytes: 32 * 1024,
            max_rows: 2_000_000,
            max_prefixes_per_cell: 1_000,
            max_routes: 5_000_000,
        }
    }
}
