//! The byte source under the CSV parser: counts what it hands out and refuses input past the
//! size limits, so a 10 GB upload, a file with no line breaks or a quote that never closes
//! stops at a limit instead of filling memory. It must never buffer: it only passes bytes on.
//!
//! To bound one row it follows csv-core's quoting (a quote opens only at the start of a cell,
//! `""` inside quotes is a quote, only `\n` ends a record), so it knows where each record ends
//! and on which line it began, without parsing cells.

use std::io::{self, Read};

use super::error::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    Start,
    Unquoted,
    Quoted,
    /// A quote inside a quoted cell: the cell's end, or the first half of `""`.
    QuoteInQuoted,
}

pub(super) struct LimitedSource<R> {
    inner: R,
    max_input_bytes: u64,
    max_row_bytes: usize,
    bytes_read: u64,
    cell: Cell,
    row_bytes: usize,
    /// 1-based line of the next byte, and the line the current record began on.
    line: u64,
    row_line: u64,
    last_byte: Option<u8>,
    at_eof: bool,
    tripped: Option<InputError>,
}

impl<R: Read> LimitedSource<R> {
    pub(super) fn new(inner: R, max_input_bytes: u64, max_row_bytes: usize) -> Self {
        LimitedSource {
            inner,
            max_input_bytes,
            max_row_bytes,
            bytes_read: 0,
            cell: Cell::Start,
            row_bytes: 0,
            line: 1,
            row_line: 1,
            last_byte: None,
            at_eof: false,
            tripped: None,
        }
    }

    /// The limit that stopped the input, if one did.
    pub(super) fn tripped(&self) -> Option<&InputError> {
        self.tripped.as_ref()
    }

    /// The line the record being read when the input stopped began on.
    pub(super) fn row_line(&self) -> u64 {
        self.row_line
    }

    /// True when the parser has consumed everything up to `consumed` and that is the whole
    /// input and it does not end in a line break: the last record had no terminator.
    pub(super) fn ends_unterminated_at(&self, consumed: u64) -> bool {
        self.at_eof && consumed == self.bytes_read && self.last_byte != Some(b'\n')
    }

    fn trip(&mut self, error: InputError) -> io::Error {
        let message = error.to_string();
        self.tripped = Some(error);
        io::Error::other(message)
    }

    /// Follows records over `chunk`. Returns the offset of the first byte past the row limit,
    /// if the chunk has one.
    fn scan(&mut self, chunk: &[u8]) -> Option<usize> {
        for (i, &byte) in chunk.iter().enumerate() {
            if byte == b'\n' {
                self.line += 1;
            }
            let (cell, ends_record) = next_cell(self.cell, byte);
            self.cell = cell;
            if ends_record {
                self.row_bytes = 0;
                self.row_line = self.line;
                continue;
            }
            self.row_bytes += 1;
            if self.row_bytes > self.max_row_bytes {
                return Some(i);
            }
        }
        None
    }

    /// How much of `chunk` may pass, and the limit that stops the rest.
    fn allowed(&mut self, chunk: &[u8]) -> (usize, Option<InputError>) {
        let budget = self.max_input_bytes.saturating_sub(self.bytes_read);
        let (within, too_large) = match usize::try_from(budget) {
            Ok(budget) if budget < chunk.len() => (budget, true),
            _ => (chunk.len(), false),
        };
        if let Some(pass) = self.scan(&chunk[..within]) {
            let error = InputError::RowTooLong {
                max_bytes: self.max_row_bytes,
            };
            return (pass, Some(error));
        }
        let error = too_large.then_some(InputError::TooLarge {
            max_bytes: self.max_input_bytes,
        });
        (within, error)
    }
}

/// csv-core's quoting with `\n` as the only terminator: the next cell state, and whether
/// `byte` ends the record.
fn next_cell(cell: Cell, byte: u8) -> (Cell, bool) {
    match (cell, byte) {
        (Cell::Quoted, b'"') => (Cell::QuoteInQuoted, false),
        (Cell::Quoted, _) => (Cell::Quoted, false),
        (_, b'\n') => (Cell::Start, true),
        (_, b',') => (Cell::Start, false),
        (Cell::Start, b'"') | (Cell::QuoteInQuoted, b'"') => (Cell::Quoted, false),
        _ => (Cell::Unquoted, false),
    }
}

impl<R: Read> Read for LimitedSource<R> {
    /// Passes bytes up to the first limit, then fails on the next call, so the parser sees
    /// every complete row before the limit and then the error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(error) = &self.tripped {
            return Err(io::Error::other(error.to_string()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.at_eof = true;
            return Ok(0);
        }
        let (pass, error) = self.allowed(&buf[..n]);
        self.bytes_read += pass as u64;
        self.last_byte = buf[..pass].last().copied().or(self.last_byte);
        if let Some(error) = error {
            if pass == 0 {
                return Err(self.trip(error));
            }
            self.tripped = Some(error);
        }
        Ok(pass)
    }
}
