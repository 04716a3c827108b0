//! What can be wrong with a deck file, each error saying where (line and column by header name)
//! and what to do. These messages reach the person who uploaded the file; they must never
//! echo more than a short excerpt of the input.

use std::fmt;

use crate::money::{Currency, Money};

/// The file cannot be read at all: its header, its size, or the options it was opened with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("the file is empty; a deck starts with a header line such as {expected}")]
    Empty { expected: &'static str },
    #[error(
        "the header matches no deck format (found: {found}); a Twilio deck needs \
         \"Destination Prefixes\" and \"Price / min\", a generic deck \"prefix\" and \"rate_per_min\""
    )]
    UnknownFormat { found: String },
    #[error(
        "the {format} header has no {column:?} column (accepted, ignoring case, spaces and \
         underscores: {accepted}); \
         found: {found}; add the column or fix its name"
    )]
    MissingColumn {
        format: &'static str,
        column: &'static str,
        accepted: String,
        found: String,
    },
    #[error("header columns {first:?} and {second:?} both mean {column:?}; keep only one of them")]
    DuplicateColumn {
        column: &'static str,
        first: String,
        second: String,
    },
    #[error("the header is not valid UTF-8; save the file as UTF-8")]
    InvalidUtf8,
    #[error("the default billing plan's connect fee is in {plan}, the deck in {deck}; use one currency")]
    PlanCurrency { plan: Currency, deck: Currency },
    #[error("{0}")]
    Input(InputError),
}

/// Why the input stopped before its end. Every one of these ends the import.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the file is larger than the limit of {max_bytes} bytes; split it into smaller decks")]
    TooLarge { max_bytes: u64 },
    #[error(
        "a row is longer than the limit of {max_bytes} bytes; split it, or close the quote that \
         runs on past its line"
    )]
    RowTooLong { max_bytes: usize },
    #[error("the file could not be read: {0}")]
    Io(String),
}

/// One bad row (or, when [`RowError::is_fatal`], the end of the file's usable part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based file line where the row starts (the header is line 1).
    pub line: u64,
    /// The column as the file's header spells it (cut to 40 characters), when one column is
    /// at fault.
    pub column: Option<String>,
    pub kind: RowErrorKind,
}

impl RowError {
    /// True when the reader stops after this error: nothing after it is read.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.kind,
            RowErrorKind::Input(_) | RowErrorKind::TooManyRows { .. } | RowErrorKind::TooManyRoutes { .. }
        )
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(column) => write!(f, "line {}, column {:?}: {}", self.line, column, self.kind),
            None => write!(f, "line {}: {}", self.line, self.kind),
        }
    }
}

impl std::error::Error for RowError {}

/// What is wrong with a row. Messages quote the cell as the file gives it, cut to 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowErrorKind {
    #[error("row has {found} fields but the header has {expected}; {advice}")]
    FieldCount {
        found: usize,
        expected: usize,
        advice: &'static str,
    },
    #[error("cell is not valid UTF-8; save the file as UTF-8")]
    InvalidUtf8,
    #[error("cell is {bytes} bytes, over the limit of {max_bytes}; shorten it")]
    FieldTooLong { bytes: usize, max_bytes: usize },
    #[error("{what} is empty; write an amount such as 0.0135")]
    EmptyAmount { what: &'static str },
    #[error("{what} {text:?} uses a comma; use a dot as decimal separator")]
    AmountComma { what: &'static str, text: String },
    #[error("{what} {text:?} is not a number; write digits with an optional dot, such as 0.0135")]
    AmountNotANumber { what: &'static str, text: String },
    #[error("{what} {text:?} has more than 6 decimal places; amounts are exact to 0.000001")]
    AmountTooPrecise { what: &'static str, text: String },
    #[error("{what} {text:?} is too large; amounts must stay below 9,223,372,036,854")]
    AmountTooLarge { what: &'static str, text: String },
    #[error("{what} {text:?} is negative; it must be 0 or more")]
    NegativeAmount { what: &'static str, text: String },
    #[error(
        "{what} {text:?} carries a currency symbol that is not the deck's currency {deck}; \
         convert the price or import it as a deck in its own currency"
    )]
    ForeignSymbol {
        what: &'static str,
        text: String,
        deck: Currency,
    },
    #[error("currency {text:?} is not a currency code; write three capital letters such as USD")]
    BadCurrency { text: String },
    #[error("currency {found} differs from the deck's currency {deck}; a deck has one currency: split the file by currency")]
    CurrencyMismatch { found: Currency, deck: Currency },
    #[error("{what} {text:?} is not whole seconds from 1 to 3600; write a number such as 60")]
    BadIncrement { what: &'static str, text: String },
    #[error("no destination prefix; every row needs at least one")]
    NoPrefix,
    #[error("prefix {prefix:?} contains {bad:?}; write digits only (a leading + is allowed) and separate prefixes with commas")]
    PrefixNotDigits { prefix: String, bad: char },
    #[error(
        "prefix {prefix:?} starts with 0; write it in international form, starting with the country code"
    )]
    PrefixLeadingZero { prefix: String },
    #[error("prefix {prefix:?} has {digits} digits; E.164 numbers have at most {max_digits}")]
    PrefixTooLong {
        prefix: String,
        digits: usize,
        max_digits: usize,
    },
    #[error("prefix {prefix} is listed twice in this cell; delete one of them")]
    RepeatedInCell { prefix: String },
    #[error("cell holds {count} prefixes, over the limit of {max}; split the row")]
    TooManyPrefixes { count: usize, max: usize },
    #[error("ISO code {text:?} is not two letters; write a code such as US (or leave it empty)")]
    BadIso { text: String },
    #[error(
        "destination prefix {prefix} ({origin}) is priced {price} here and {first_price} on line {first_line}; \
         keep one price per prefix and delete the other line"
    )]
    ConflictingDuplicate {
        prefix: String,
        origin: Origin,
        price: Money,
        first_price: Money,
        first_line: u64,
    },
    #[error(
        "destination prefix {prefix} ({origin}) repeats line {first_line} with the same price; \
         delete one of the two lines"
    )]
    Duplicate {
        prefix: String,
        origin: Origin,
        first_line: u64,
    },
    #[error("the file has more than {max} rows, the limit; split it into smaller decks")]
    TooManyRows { max: u64 },
    #[error(
        "the file has more than {max} distinct origin and destination prefix pairs, the limit; \
         split it into smaller decks"
    )]
    TooManyRoutes { max: usize },
    #[error("{0}")]
    Input(InputError),
}

/// The origination side of a duplicate, for messages: any origin, or one origination prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Any,
    Prefix(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Any => f.write_str("from any origin"),
            Origin::Prefix(prefix) => write!(f, "from origination prefix {prefix}"),
        }
    }
}

/// Why rows could not be written in a format.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "row from line {line} has billing plan {found}, but a Twilio file carries no plan and is read \
         back with {expected}; export it in the generic format"
    )]
    PlanNotInFormat {
        line: u64,
        found: String,
        expected: String,
    },
    #[error("row from line {line} is in {found}, the deck in {deck}; a deck file has one currency")]
    MixedCurrency {
        line: u64,
        found: Currency,
        deck: Currency,
    },
    #[error("row from line {line} has no destination prefix; a deck row needs at least one")]
    NoPrefix { line: u64 },
    #[error("writing the deck failed: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing the deck failed: {0}")]
    Io(#[from] std::io::Error),
}
