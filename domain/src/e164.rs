//! E.164 numbers, parsed once at the edge (`E164::parse`) and passed inward as a type: a
//! function that takes an `E164` never re-checks it. Parsing reads what people type (`+44 20
//! 7946 0958`, `(212) 555-0100` for a US caller, `00 39 06 …`, `011 44 …`) with the
//! `phonenumber` crate, and corrects it where it departs from libphonenumber (see
//! docs/decisions/0004-number-lookup.md). A full number must never reach a log or an error
//! message: use `masked()`.

mod region;
#[cfg(test)]
mod tests;

use std::fmt;

use phonenumber::country::Source;
use phonenumber::Type;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use region::{Region, UnknownRegion};

/// Longest input we read, in characters; a number with spacing is far shorter.
pub const MAX_INPUT_CHARS: usize = 64;
/// E.164 allows at most 15 digits, country code included.
pub const MAX_DIGITS: usize = 15;

/// A valid international number: country code and national (significant) number, digits only.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct E164 {
    /// Country code then national number, ASCII digits, no `+`; at most 15.
    digits: Box<str>,
    /// How many leading digits of `digits` are the country code (1 to 3).
    code_len: u8,
    region: Option<Region>,
}

/// Why some input is not a number we can call. Messages never repeat the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseNumberError {
    #[error("no number was entered; type the number with its country code, e.g. +44 20 7946 0958")]
    Empty,
    #[error("the number is longer than {MAX_INPUT_CHARS} characters; type only the phone number")]
    InputTooLong,
    #[error(
        "`{0}` cannot be part of a phone number; use digits, spaces, dashes, dots, brackets and a leading +"
    )]
    InvalidCharacter(char),
    #[error("the number has no country code and no country was chosen; start it with + and the country code (e.g. +44) or choose your country")]
    MissingCountry,
    #[error("the digits after + are not a country calling code; check them")]
    UnknownCallingCode,
    #[error("the number is too short; type the full number with its area code")]
    TooShort,
    #[error("the number is too long; E.164 numbers have at most {MAX_DIGITS} digits")]
    TooLong,
    #[error("this is not a number in use{}; check the digits and the country", in_region(.0))]
    NotInUse(Option<Region>),
    #[error("this is not a phone number we can read; type digits only, with + and the country code")]
    Unreadable,
}

fn in_region(region: &Option<Region>) -> String {
    region.map(|r| format!(" in {r}")).unwrap_or_default()
}

impl E164 {
    /// Reads a number as typed. `default_region` is the caller's country (or one they chose):
    /// it gives national-format numbers their country and says which international prefix
    /// (`00`, `011`, `0011`, …) may precede a country code. Without it, the number must start
    /// with `+` or `00`.
    pub fn parse(input: &str, default_region: Option<Region>) -> Result<E164, ParseNumberError> {
        let typed = Typed::read(input)?;
        let number = match (typed.plus, default_region) {
            (true, _) => parse_international(&typed.digits)?,
            (false, Some(region)) => match strip_international_prefix(&typed.digits, region) {
                Some(rest) => parse_international(rest)?,
                None => parse_national(&typed.digits, region)?,
            },
            (false, None) => match typed.digits.strip_prefix("00") {
                Some(rest) => parse_international(rest)?,
                None => return Err(ParseNumberError::MissingCountry),
            },
        };
        E164::from_parts(number.code().value(), &number.national().to_string())
    }

    /// Builds the number from its country code and national number (leading zeros kept),
    /// detecting the region and checking the metadata knows the number.
    fn from_parts(code: u16, national: &str) -> Result<E164, ParseNumberError> {
        let digits = format!("{code}{national}");
        if digits.len() > MAX_DIGITS {
            return Err(ParseNumberError::TooLong);
        }
        let region = region::detect(code, national);
        let meta = region::metadata_for(code, region).ok_or(ParseNumberError::UnknownCallingCode)?;
        if region::known_type(meta, national).is_none() {
            return Err(ParseNumberError::NotInUse(region));
        }
        let code_len = code.to_string().len() as u8;
        debug_assert!((1..=3).contains(&code_len) && digits.bytes().all(|b| b.is_ascii_digit()));
        Ok(E164 {
            digits: digits.into_boxed_str(),
            code_len,
            region,
        })
    }

    /// Country code then national number, no `+` (`442079460958`): the key for rate lookup.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The country calling code (44, 1, 7, 39, 870, …).
    pub fn country_code(&self) -> u16 {
        self.digits[..self.code_len as usize].parse().unwrap_or(0)
    }

    /// The national significant number, with Italy's leading zero kept (`0612345678`).
    pub fn national(&self) -> &str {
        &self.digits[self.code_len as usize..]
    }

    /// The region the number belongs to (`JE` for +44 1534 …), or `None` for non-geographic
    /// codes such as +870 and +882.
    pub fn region(&self) -> Option<Region> {
        self.region
    }

    /// What the numbering plan says the number is (fixed line, mobile, premium rate, …).
    pub fn number_type(&self) -> Type {
        region::metadata_for(self.country_code(), self.region)
            .and_then(|meta| region::known_type(meta, self.national()))
            .unwrap_or(Type::Unknown)
    }

    /// A form safe for logs: the country code, at most two leading and two trailing national
    /// digits, the rest as `*`, always at least four (or all) hidden (`+44 20******58`).
    pub fn masked(&self) -> String {
        let national = self.national();
        let n = national.len();
        let (head, tail) = match n {
            0..=5 => (0, 0),
            6..=7 => (0, 2),
            _ => (2, 2),
        };
        debug_assert!(n - head - tail >= 4 || head + tail == 0);
        let stars = "*".repeat(n - head - tail);
        format!(
            "+{} {}{}{}",
            self.country_code(),
            &national[..head],
            stars,
            &national[n - tail..]
        )
    }
}

/// Input reduced to its digits, and whether it began with `+`.
struct Typed {
    plus: bool,
    digits: String,
}

impl Typed {
    fn read(input: &str) -> Result<Typed, ParseNumberError> {
        if input.chars().count() > MAX_INPUT_CHARS {
            return Err(ParseNumberError::InputTooLong);
        }
        let trimmed = input.trim();
        let (plus, rest) = match trimmed.strip_prefix('+').or_else(|| trimmed.strip_prefix('＋')) {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '\u{a0}' | '\t' | '-' | '.' | '(' | ')' | '/' => {}
                other => return Err(ParseNumberError::InvalidCharacter(other)),
            }
        }
        if digits.is_empty() {
            return Err(ParseNumberError::Empty);
        }
        Ok(Typed { plus, digits })
    }
}

/// What was typed, as digits, for checks that must see numbers too short to parse (`999`,
/// `+44 999`): `(true, "44999")` when it starts with `+` or the region's international prefix
/// (which is dropped), `(false, "999")` otherwise. `None` when it is not digits and separators.
pub(crate) fn typed_digits(input: &str, default_region: Option<Region>) -> Option<(bool, String)> {
    let typed = Typed::read(input).ok()?;
    if typed.plus {
        return Some((true, typed.digits));
    }
    let stripped = match default_region {
        Some(region) => strip_international_prefix(&typed.digits, region),
        None => typed.digits.strip_prefix("00"),
    };
    Some(match stripped {
        Some(rest) => (true, rest.to_owned()),
        None => (false, typed.digits),
    })
}

/// The digits typed, without separators, and whether they followed a `+`.
pub(crate) fn raw_digits(input: &str) -> Option<(bool, String)> {
    Typed::read(input).ok().map(|typed| (typed.plus, typed.digits))
}

/// Splits digits that start with a country calling code into the code and the rest.
pub(crate) fn split_calling_code(digits: &str) -> Option<(u16, &str)> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        phonenumber::metadata::DATABASE
            .region(&code)
            .map(|_| (code, &digits[len..]))
    })
}

/// `digits` without the region's international call prefix, if it starts with one.
fn strip_international_prefix(digits: &str, region: Region) -> Option<&str> {
    let pattern = region.metadata()?.international_prefix()?;
    let found = pattern.find(digits).filter(|m| m.start() == 0 && m.end() > 0)?;
    Some(&digits[found.end()..])
}

/// Country code and national number from digits that start with a country code. Parsed
/// without a default region, so no other country's trunk prefix is stripped (the crate strips
/// the default region's: with GB as default, `00 39 06 …` lost Italy's leading zero).
fn parse_international(digits: &str) -> Result<phonenumber::PhoneNumber, ParseNumberError> {
    if digits.len() > MAX_DIGITS {
        return Err(ParseNumberError::TooLong);
    }
    phonenumber::parse(None, format!("+{digits}")).map_err(crate_error)
}

/// A number typed in `region`'s national format (`020 7946 0958` in GB, `8 912 …` in RU).
fn parse_national(digits: &str, region: Region) -> Result<phonenumber::PhoneNumber, ParseNumberError> {
    if digits.len() > MAX_DIGITS + 3 {
        return Err(ParseNumberError::TooLong);
    }
    let id = region.id().ok_or(ParseNumberError::MissingCountry)?;
    let number = phonenumber::parse(Some(id), digits).map_err(crate_error)?;
    match number.code().source() {
        // The crate read a country code without `+`; its national prefix stripping then used
        // the default region's prefix, so read the digits again as an international number.
        Source::Number => parse_international(digits),
        _ => Ok(number),
    }
}

fn crate_error(error: phonenumber::ParseError) -> ParseNumberError {
    use phonenumber::ParseError as P;
    match error {
        P::InvalidCountryCode => ParseNumberError::UnknownCallingCode,
        P::TooShortAfterIdd | P::TooShortNsn => ParseNumberError::TooShort,
        P::TooLong => ParseNumberError::TooLong,
        P::NoNumber | P::MalformedInteger(_) => ParseNumberError::Unreadable,
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "+{}", self.digits)
    }
}

/// Debug shows the masked form, so a `{:?}` in a log line never leaks a number.
impl fmt::Debug for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "E164({})", self.masked())
    }
}

impl Serialize for E164 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.starts_with('+') {
            return Err(serde::de::Error::custom("an E.164 number must start with +"));
        }
        E164::parse(&text, None).map_err(serde::de::Error::custom)
    }
}
