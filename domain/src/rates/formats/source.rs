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

    /// Advances the current line's length over `chunk`; returns the longest line seen in it.
    fn account(&mut self, chunk: &[u8]) -> usize {
        let mut segments = chunk.split(|&b| b == b'\n');
        let first = segments.next().map_or(0, <[u8]>::len);
        let mut current = self.line_bytes.saturating_add(first);
        let mut longest = current;
        for segment in segments {
            current = segment.len();
            longest = longest.max(current);
        }
        self.line_bytes = current;
        longest
    }
}

impl<R: Read> Read for LimitedSource<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(error) = &self.tripped {
            return Err(io::Error::other(error.to_string()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.at_eof = true;
            return Ok(0);
        }
        let chunk = &buf[..n];
        self.bytes_read += n as u64;
        if self.bytes_read > self.max_input_bytes {
            return Err(self.trip(InputError::TooLarge {
                max_bytes: self.max_input_bytes,
            }));
        }
        let longest = self.account(chunk);
        self.last_byte = chunk.last().copied();
        if longest > self.max_line_bytes {
            return Err(self.trip(InputError::LineTooLong {
                max_bytes: self.max_line_bytes,
            }));
        }
        Ok(n)
    }
}
