//! Turning one trimmed cell into a value: amounts, prefixes, ISO codes, increments and the
//! currency. Each parser returns the error kind; the reader adds line and column. Never floats.

use crate::money::{Currency, Money, ParseMoneyError};
use crate::rates::formats::error::RowErrorKind;
use crate::rates::formats::MAX_PREFIX_DIGITS;

/// Longest cell excerpt an error message repeats.
const EXCERPT_CHARS: usize = 40;

pub(super) fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT_CHARS).collect()
}

/// A non-negative amount such as a price or a connect fee. A leading currency symbol is
/// accepted only when it is the deck's currency.
pub(super) fn amount(text: &str, what: &'static str, deck: Currency) -> Result<Money, RowErrorKind> {
    let digits = strip_symbol(text, what, deck)?;
    let money = Money::parse(digits, deck).map_err(|e| amount_error(e, what, text))?;
    if money.is_negative() {
        return Err(RowErrorKind::NegativeAmount {
            what,
            text: excerpt(text),
        });
    }
    Ok(money)
}

fn strip_symbol<'a>(text: &'a str, what: &'static str, deck: Currency) -> Result<&'a str, RowErrorKind> {
    let Some(first) = text.chars().next() else {
        return Ok(text);
    };
    let symbol_code = match first {
        '$' => "USD",
        '€' => "EUR",
        '£' => "GBP",
        _ => return Ok(text),
    };
    if symbol_code != deck.as_str() {
        return Err(RowErrorKind::ForeignSymbol {
            what,
            text: excerpt(text),
            deck,
        });
    }
    Ok(text[first.len_utf8()..].trim_start())
}

fn amount_error(error: ParseMoneyError, what: &'static str, text: &str) -> RowErrorKind {
    let text = excerpt(text);
    match error {
        ParseMoneyError::Empty => RowErrorKind::EmptyAmount { what },
        ParseMoneyError::Comma(_) => RowErrorKind::AmountComma { what, text },
        ParseMoneyError::NotANumber(_) => RowErrorKind::AmountNotANumber { what, text },
        ParseMoneyError::TooPrecise(_) => RowErrorKind::AmountTooPrecise { what, text },
        ParseMoneyError::TooLarge(_) => RowErrorKind::AmountTooLarge { what, text },
    }
}

/// Appends the prefixes of a comma-separated cell (`"1201, 1202,1203"`) to `out`. Empty items
/// (a trailing comma) are skipped; a leading `+` is dropped; anything else but digits is an
/// error, spaces and dashes inside a prefix included: `"44 20"` is more likely two prefixes
/// missing a comma than one.
pub(super) fn prefixes(cell: &str, max: usize, out: &mut Vec<String>) -> Result<(), RowErrorKind> {
    for item in cell.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if out.len() == max {
            let count = cell.split(',').filter(|i| !i.trim().is_empty()).count();
            return Err(RowErrorKind::TooManyPrefixes { count, max });
        }
        out.push(prefix(item)?.to_owned());
    }
    repeated(out)
}

/// A prefix listed twice in one cell. Sorting a copy costs an allocation, so only cells with
/// several prefixes pay it.
fn repeated(prefixes: &[String]) -> Result<(), RowErrorKind> {
    if prefixes.len() < 2 {
        return Ok(());
    }
    let mut sorted: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    match sorted.windows(2).find(|pair| pair[0] == pair[1]) {
        Some(pair) => Err(RowErrorKind::RepeatedInCell {
            prefix: excerpt(pair[0]),
        }),
        None => Ok(()),
    }
}

fn prefix(item: &str) -> Result<&str, RowErrorKind> {
    let digits = item.strip_prefix('+').unwrap_or(item);
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(RowErrorKind::PrefixNotDigits {
            prefix: excerpt(item),
            bad,
        });
    }
    if digits.is_empty() {
        return Err(RowErrorKind::PrefixNotDigits {
            prefix: excerpt(item),
            bad: '+',
        });
    }
    if digits.starts_with('0') {
        return Err(RowErrorKind::PrefixLeadingZero {
            prefix: excerpt(item),
        });
    }
    if digits.len() > MAX_PREFIX_DIGITS {
        return Err(RowErrorKind::PrefixTooLong {
            prefix: excerpt(item),
            digits: digits.len(),
            max_digits: MAX_PREFIX_DIGITS,
        });
    }
    Ok(digits)
}

/// Empty, or two ASCII letters kept as written (`AN` and `ZZ` are not ISO 3166 but are real).
pub(super) fn iso(cell: &str) -> Result<String, RowErrorKind> {
    let ok = cell.is_empty() || (cell.len() == 2 && cell.bytes().all(|b| b.is_ascii_alphabetic()));
    if ok {
        Ok(cell.to_owned())
    } else {
        Err(RowErrorKind::BadIso { text: excerpt(cell) })
    }
}

/// Whole seconds from 1 to 3600; an empty cell takes `default`.
pub(super) fn increment(cell: &str, what: &'static str, default: u32) -> Result<u32, RowErrorKind> {
    if cell.is_empty() {
        return Ok(default);
    }
    let bad = || RowErrorKind::BadIncrement {
        what,
        text: excerpt(cell),
    };
    if !cell.bytes().all(|b| b.is_ascii_digit()) || cell.len() > 4 {
        return Err(bad());
    }
    match cell.parse::<u32>() {
        Ok(seconds @ 1..=3_600) => Ok(seconds),
        _ => Err(bad()),
    }
}

/// The deck's currency, or an error: one deck has one currency. Empty means the deck's.
pub(super) fn currency(cell: &str, deck: Currency) -> Result<(), RowErrorKind> {
    if cell.is_empty() {
        return Ok(());
    }
    let found = Currency::parse(cell).map_err(|_| RowErrorKind::BadCurrency { text: excerpt(cell) })?;
    if found == deck {
        Ok(())
    } else {
        Err(RowErrorKind::CurrencyMismatch { found, deck })
    }
}
