//! The byte source under the CSV parser: counts what it hands out and refuses input past the
//! size limits, so a 10 GB upload or a file with no line breaks stops at the limit instead of
//! filling memory. It must never buffer: it only passes bytes through.

use std::io::{self, Read};

use super::error::InputError;

pub(super) struct LimitedSource<R> {
    inner: R,
    max_input_bytes: u64,
    max_line_bytes: usize,
    bytes_read: u64,
    line_bytes: usize,
    last_byte: Option<u8>,
    at_eof: bool,
    tripped: Option<InputError>,
}

impl<R: Read> LimitedSource<R> {
    pub(super) fn new(inner: R, max_input_bytes: u64, max_line_bytes: usize) -> Self {
        LimitedSource {
            inner,
            max_input_bytes,
            max_line_bytes,
            bytes_read: 0,
            line_bytes: 0,
            last_byte: None,
            at_eof: false,
            tripped: None,
        }
    }

    /// The limit that stopped the input, if one did.
    pub(super) fn tripped(&self) -> Option<&InputError> {
        self.tripped.as_ref()
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

    /// Advances the current line's length over `chunk`. Returns the offset of the first byte
    /// past the line limit, if the chunk has one.
    fn account(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut start = 0;
        for segment in chunk.split(|&b| b == b'\n') {
            let carried = if start == 0 { self.line_bytes } else { 0 };
            let length = carried.saturating_add(segment.len());
            if length > self.max_line_bytes {
                return Some(start + self.max_line_bytes.saturating_sub(carried));
            }
            self.line_bytes = length;
            start += segment.len() + 1;
        }
        None
    }

    /// How much of a chunk of `n` bytes may pass, and the limit that stops the rest.
    fn allowed(&mut self, chunk: &[u8]) -> (usize, Option<InputError>) {
        let budget = self.max_input_bytes.saturating_sub(self.bytes_read);
        if (chunk.len() as u64) > budget {
            let error = InputError::TooLarge {
                max_bytes: self.max_input_bytes,
            };
            // `budget` is below `chunk.len()`, so it fits in usize.
            let within = usize::try_from(budget).unwrap_or(0);
            let pass = self.account(&chunk[..within]).unwrap_or(within);
            return (pass, Some(error));
        }
        match self.account(chunk) {
            Some(pass) => (
                pass,
                Some(InputError::LineTooLong {
                    max_bytes: self.max_line_bytes,
                }),
            ),
            None => (chunk.len(), None),
        }
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
