//! The streaming deck reader: one CSV record at a time into one `DeckRow` or one `RowError`,
//! and on to the next row after a bad one. It must never collect the file: memory is one
//! record, the header and the duplicate index (see `routes`).

use std::io::Read;

use csv::{ByteRecord, Terminator};

use super::error::{HeaderError, InputError, RowError, RowErrorKind};
use super::fields;
use super::header::{Field, Header};
use super::routes::Routes;
use super::source::LimitedSource;
use super::ReadOptions;
use crate::rates::{DeckFormat, DeckRow};
use crate::rating::BillingPlan;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a deck row by row: `Iterator<Item = Result<DeckRow, RowError>>`. After an error that
/// is not [fatal](RowError::is_fatal) it goes on with the next row, so skipping bad rows is
/// the caller's choice (see [`super::ImportReport`]).
pub struct DeckReader<R: Read> {
    csv: csv::Reader<LimitedSource<R>>,
    record: ByteRecord,
    header: Header,
    format: DeckFormat,
    options: ReadOptions,
    routes: Routes,
    rows: u64,
    done: bool,
}

impl<R: Read> DeckReader<R> {
    /// Reads the header and picks the format (`options.format`, or detected from the header).
    pub fn new(reader: R, options: ReadOptions) -> Result<DeckReader<R>, HeaderError> {
        let plan_currency = options.default_plan.connect_fee.currency();
        if plan_currency != options.currency {
            return Err(HeaderError::PlanCurrency {
                plan: plan_currency,
                deck: options.currency,
            });
        }
        let limits = options.limits;
        let source = LimitedSource::new(reader, limits.max_input_bytes, limits.max_row_bytes);
        // Only `\n` ends a record: csv's own CR handling leaves its line numbers one off on CRLF
        // files. A `\r` before the `\n` is trimmed off the last cell like any space.
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .terminator(Terminator::Any(b'\n'))
            .from_reader(source);
        let names = read_header(&mut csv, options.format)?;
        let (header, format) = Header::resolve(names, options.format)?;
        Ok(DeckReader {
            csv,
            record: ByteRecord::new(),
            header,
            format,
            routes: Routes::new(limits.max_routes),
            options,
            rows: 0,
            done: false,
        })
    }

    /// The format read: forced by the options or detected from the header.
    pub fn format(&self) -> DeckFormat {
        self.format
    }

    /// The header's column names as the file spells them (trimmed, without a BOM).
    pub fn column_names(&self) -> &[String] {
        &self.header.names
    }

    /// Data rows read so far, good and bad (blank lines not counted).
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// The 1-based line the current record starts on. csv's `Position::line()` at the start of
    /// a record points at the line after the previous record, before any blank lines skipped,
    /// so count back from the end instead: the end line, less the line breaks inside quoted
    /// cells, less the record's own terminating `\n` when it had one.
    fn record_line(&self) -> u64 {
        let end = self.csv.position();
        let inner = self.record.as_slice().iter().filter(|&&b| b == b'\n').count() as u64;
        let terminated = !self.csv.get_ref().ends_unterminated_at(end.byte());
        end.line().saturating_sub(inner + u64::from(terminated)).max(1)
    }

    fn input_error(&mut self, error: csv::Error) -> RowError {
        self.done = true;
        RowError {
            line: self.csv.get_ref().row_line(),
            column: None,
            kind: RowErrorKind::Input(input_error(self.csv.get_ref(), error)),
        }
    }

    fn error(&self, line: u64, field: Option<Field>, kind: RowErrorKind) -> RowError {
        RowError {
            line,
            column: field.and_then(|f| self.header.name(f)).map(fields::excerpt),
            kind,
        }
    }

    /// The trimmed text of `field`'s cell; empty when the file has no such column.
    fn cell(&self, line: u64, field: Field) -> Result<&str, RowError> {
        let Some(bytes) = self.header.index(field).and_then(|i| self.record.get(i)) else {
            return Ok("");
        };
        std::str::from_utf8(bytes.trim_ascii())
            .map_err(|_| self.error(line, Some(field), RowErrorKind::InvalidUtf8))
    }

    /// Parses `field`'s cell with `parse`, naming the column in its error.
    fn parse<T>(
        &self,
        line: u64,
        field: Field,
        parse: impl FnOnce(&str) -> Result<T, RowErrorKind>,
    ) -> Result<T, RowError> {
        let cell = self.cell(line, field)?;
        parse(cell).map_err(|kind| self.error(line, Some(field), kind))
    }

    fn next_row(&mut self, line: u64) -> Result<DeckRow, RowError> {
        self.check_shape(line)?;
        let row = self.build_row(line)?;
        match self.routes.record(&row) {
            Ok(()) => Ok(row),
            Err(kind) => {
                self.done = matches!(kind, RowErrorKind::TooManyRoutes { .. });
                let field = Some(Field::Destination).filter(|_| !self.done);
                Err(self.error(line, field, kind))
            }
        }
    }

    fn build_row(&self, line: u64) -> Result<DeckRow, RowError> {
        let currency = self.options.currency;
        let max_prefixes = self.options.limits.max_prefixes_per_cell;
        let mut destination_prefixes = Vec::with_capacity(1);
        self.parse(line, Field::Destination, |c| {
            fields::prefixes(c, max_prefixes, &mut destination_prefixes)
        })?;
        if destination_prefixes.is_empty() {
            return Err(self.error(line, Some(Field::Destination), RowErrorKind::NoPrefix));
        }
        let mut origination_prefixes = Vec::new();
        self.parse(line, Field::Origination, |c| {
            fields::prefixes(c, max_prefixes, &mut origination_prefixes)
        })?;
        self.parse(line, Field::Currency, |c| fields::currency(c, currency))?;
        Ok(DeckRow {
            line,
            iso: self.parse(line, Field::Iso, fields::iso)?,
            country: self.cell(line, Field::Country)?.to_owned(),
            description: self.cell(line, Field::Description)?.to_owned(),
            destination_prefixes,
            origination_prefixes,
            cost_per_minute: self.parse(line, Field::Price, |c| fields::amount(c, "price", currency))?,
            plan: self.plan(line)?,
        })
    }

    /// The row's billing plan: its own cells where the format has them, else the default.
    fn plan(&self, line: u64) -> Result<BillingPlan, RowError> {
        let default = self.options.default_plan;
        let currency = self.options.currency;
        let connect_fee = match self.cell(line, Field::ConnectFee)? {
            "" => default.connect_fee,
            _ => self.parse(line, Field::ConnectFee, |c| {
                fields::amount(c, "connect fee", currency)
            })?,
        };
        let first = self.parse(line, Field::FirstIncrement, |c| {
            fields::increment(c, "first increment", default.first_increment_seconds)
        })?;
        let next = self.parse(line, Field::NextIncrement, |c| {
            fields::increment(c, "next increment", default.next_increment_seconds)
        })?;
        BillingPlan::new(connect_fee, first, next).map_err(|e| {
            let text = fields::excerpt(&e.to_string());
            self.error(
                line,
                None,
                RowErrorKind::BadIncrement {
                    what: "billing plan",
                    text,
                },
            )
        })
    }

    /// Field count and cell sizes, before any cell is parsed (the source bounds the row).
    fn check_shape(&self, line: u64) -> Result<(), RowError> {
        let limits = &self.options.limits;
        let (found, expected) = (self.record.len(), self.header.names.len());
        if found != expected {
            return Err(self.field_count_error(line, found, expected));
        }
        match self.record.iter().position(|f| f.len() > limits.max_field_bytes) {
            None => Ok(()),
            Some(i) => Err(RowError {
                line,
                column: Some(fields::excerpt(&self.header.names[i])),
                kind: RowErrorKind::FieldTooLong {
                    bytes: self.record[i].len(),
                    max_bytes: limits.max_field_bytes,
                },
            }),
        }
    }

    fn field_count_error(&self, line: u64, found: usize, expected: usize) -> RowError {
        let advice = if found < expected {
            "the line is cut short; complete it or delete it"
        } else {
            "quote cells that contain commas, such as \"1201, 1202\""
        };
        RowError {
            line,
            // The first column the row does not reach.
            column: self.header.names.get(found).map(|n| fields::excerpt(n)),
            kind: RowErrorKind::FieldCount {
                found,
                expected,
                advice,
            },
        }
    }
}

impl<R: Read> Iterator for DeckReader<R> {
    type Item = Result<DeckRow, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.csv.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(error) => return Some(Err(self.input_error(error))),
            }
            if self.done || is_blank(&self.record) {
                continue;
            }
            let line = self.record_line();
            self.rows += 1;
            if self.rows > self.options.limits.max_rows {
                self.done = true;
                let kind = RowErrorKind::TooManyRows {
                    max: self.options.limits.max_rows,
                };
                return Some(Err(self.error(line, None, kind)));
            }
            return Some(self.next_row(line));
        }
        None
    }
}

/// A line of spaces or of empty cells (`,,,` as spreadsheets write empty rows) is no row.
fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(|f| f.trim_ascii().is_empty())
}

/// The first non-blank record, as trimmed column names without a BOM.
fn read_header<R: Read>(
    csv: &mut csv::Reader<LimitedSource<R>>,
    format: Option<DeckFormat>,
) -> Result<Vec<String>, HeaderError> {
    let mut record = ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) if is_blank(&record) => continue,
            Ok(true) => break,
            Ok(false) => {
                return Err(HeaderError::Empty {
                    expected: expected_header(format),
                })
            }
            Err(error) => return Err(HeaderError::Input(input_error(csv.get_ref(), error))),
        }
    }
    let mut names = Vec::with_capacity(record.len());
    for (i, field) in record.iter().enumerate() {
        let field = if i == 0 { without_bom(field) } else { field };
        let name = std::str::from_utf8(field.trim_ascii()).map_err(|_| HeaderError::InvalidUtf8)?;
        names.push(name.to_owned());
    }
    Ok(names)
}

/// The first header cell without a UTF-8 BOM. The BOM comes before csv sees a quote, so a
/// quoted first name (`<BOM>"ISO"`) keeps its quotes: drop them too.
fn without_bom(field: &[u8]) -> &[u8] {
    match field.strip_prefix(BOM) {
        Some(rest) => {
            let rest = rest.trim_ascii();
            let unquoted = rest.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\""));
            unquoted.unwrap_or(rest)
        }
        None => field,
    }
}

fn expected_header(format: Option<DeckFormat>) -> &'static str {
    match format {
        Some(DeckFormat::Generic) => "\"prefix,country,description,rate_per_min\"",
        _ => "\"ISO,Country,Description,Price / min,Origination Prefixes,Destination Prefixes\"",
    }
}

/// The limit that stopped the source, or the I/O error as it came.
fn input_error<R: Read>(source: &LimitedSource<R>, error: csv::Error) -> InputError {
    match source.tripped() {
        Some(limit) => limit.clone(),
        None => InputError::Io(error.to_string()),
    }
}
