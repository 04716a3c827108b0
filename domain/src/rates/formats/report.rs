//! A bounded summary of an import for the skip-bad-rows mode: the count of good rows, the
//! first errors in full and a count of the rest. It must never grow with the file.

use super::error::RowError;
use crate::rates::DeckRow;

/// Errors kept in full by [`ImportReport::default`].
pub const DEFAULT_KEPT_ERRORS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub good_rows: u64,
    /// The first errors, in file order, at most `max_kept` of them.
    pub errors: Vec<RowError>,
    /// Errors after the first `max_kept`, counted only.
    pub more_errors: u64,
    /// True when a fatal error (a limit, unreadable input) ended the reading early.
    pub stopped_early: bool,
    max_kept: usize,
}

impl Default for ImportReport {
    fn default() -> ImportReport {
        ImportReport::new(DEFAULT_KEPT_ERRORS)
    }
}

impl ImportReport {
    pub fn new(max_kept: usize) -> ImportReport {
        ImportReport {
            good_rows: 0,
            errors: Vec::new(),
            more_errors: 0,
            stopped_early: false,
            max_kept,
        }
    }

    /// Counts one reader item and hands a good row on, so a caller can write
    /// `reader.filter_map(|item| report.observe(item))`.
    pub fn observe(&mut self, item: Result<DeckRow, RowError>) -> Option<DeckRow> {
        match item {
            Ok(row) => {
                self.good_rows += 1;
                Some(row)
            }
            Err(error) => {
                self.record_error(error);
                None
            }
        }
    }

    pub fn record_error(&mut self, error: RowError) {
        self.stopped_early |= error.is_fatal();
        if self.errors.len() < self.max_kept {
            self.errors.push(error);
        } else {
            self.more_errors += 1;
        }
    }

    /// Every error seen, kept or counted.
    pub fn error_count(&self) -> u64 {
        self.errors.len() as u64 + self.more_errors
    }

    /// True when every row was good and the file was read to its end.
    pub fn is_clean(&self) -> bool {
        self.error_count() == 0
    }
}
