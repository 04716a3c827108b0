//! Finding columns by name: the accepted spellings of each column in each format, format
//! detection from the header, and the header errors. Never by position.

use super::error::HeaderError;
use super::fields::excerpt;
use crate::rates::DeckFormat;

/// A column the reader knows. The discriminant indexes `Header::columns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Iso = 0,
    Country,
    Description,
    Destination,
    Origination,
    Price,
    ConnectFee,
    FirstIncrement,
    NextIncrement,
    Currency,
}

const FIELD_COUNT: usize = 10;

/// One column of a format: its canonical name, the spellings accepted (normalised: ASCII
/// lowercase, letters, digits and `/` only) and whether the file must have it.
struct Spec {
    field: Field,
    name: &'static str,
    spellings: &'static [&'static str],
    required: bool,
}

const fn spec(field: Field, name: &'static str, spellings: &'static [&'static str], required: bool) -> Spec {
    Spec {
        field,
        name,
        spellings,
        required,
    }
}

const TWILIO: &[Spec] = &[
    spec(Field::Iso, "ISO", &["iso", "isocode"], false),
    spec(Field::Country, "Country", &["country", "countryname"], false),
    spec(Field::Description, "Description", &["description"], false),
    spec(
        Field::Destination,
        "Destination Prefixes",
        &["destinationprefixes", "destinationprefix", "prefixes", "prefix"],
        true,
    ),
    spec(
        Field::Origination,
        "Origination Prefixes",
        &["originationprefixes", "originationprefix"],
        false,
    ),
    spec(
        Field::Price,
        "Price / min",
        &["price/min", "priceperminute", "pricepermin"],
        true,
    ),
];

const GENERIC: &[Spec] = &[
    spec(
        Field::Destination,
        "prefix",
        &["prefix", "prefixes", "destinationprefix", "destinationprefixes"],
        true,
    ),
    spec(
        Field::Origination,
        "origination_prefix",
        &["originationprefix", "originationprefixes"],
        false,
    ),
    spec(Field::Iso, "iso", &["iso"], false),
    spec(Field::Country, "country", &["country"], false),
    spec(Field::Description, "description", &["description"], false),
    spec(
        Field::Price,
        "rate_per_min",
        &["ratepermin", "rateperminute"],
        true,
    ),
    spec(Field::ConnectFee, "connect_fee", &["connectfee"], false),
    spec(
        Field::FirstIncrement,
        "first_increment",
        &["firstincrement"],
        false,
    ),
    spec(Field::NextIncrement, "next_increment", &["nextincrement"], false),
    spec(Field::Currency, "currency", &["currency"], false),
];

fn specs(format: DeckFormat) -> &'static [Spec] {
    match format {
        DeckFormat::Twilio => TWILIO,
        DeckFormat::Generic => GENERIC,
    }
}

/// The header line: each column's name as the file spells it, and where each field sits.
#[derive(Debug, Clone)]
pub(super) struct Header {
    pub(super) names: Vec<String>,
    columns: [Option<usize>; FIELD_COUNT],
}

impl Header {
    /// Index of `field`'s column, if the file has it.
    pub(super) fn index(&self, field: Field) -> Option<usize> {
        self.columns[field as usize]
    }

    /// Name of `field`'s column as the file spells it.
    pub(super) fn name(&self, field: Field) -> Option<&str> {
        self.index(field).map(|i| self.names[i].as_str())
    }

    /// Matches `names` against `format` (or the detected one) and checks required columns.
    pub(super) fn resolve(
        names: Vec<String>,
        format: Option<DeckFormat>,
    ) -> Result<(Header, DeckFormat), HeaderError> {
        let normal: Vec<String> = names.iter().map(|n| normalise(n)).collect();
        let format = match format {
            Some(format) => format,
            None => detect(&normal).ok_or_else(|| HeaderError::UnknownFormat {
                found: quoted_list(&names),
            })?,
        };
        let mut columns: [Option<usize>; FIELD_COUNT] = [None; FIELD_COUNT];
        for (i, name) in normal.iter().enumerate() {
            let Some(spec) = specs(format)
                .iter()
                .find(|s| s.spellings.contains(&name.as_str()))
            else {
                continue;
            };
            if let Some(first) = columns[spec.field as usize] {
                return Err(HeaderError::DuplicateColumn {
                    column: spec.name,
                    first: excerpt(&names[first]),
                    second: excerpt(&names[i]),
                });
            }
            columns[spec.field as usize] = Some(i);
        }
        let header = Header { names, columns };
        header.check_required(format)?;
        Ok((header, format))
    }

    fn check_required(&self, format: DeckFormat) -> Result<(), HeaderError> {
        let missing = specs(format)
            .iter()
            .find(|s| s.required && self.index(s.field).is_none());
        match missing {
            None => Ok(()),
            Some(spec) => Err(HeaderError::MissingColumn {
                format: format_name(format),
                column: spec.name,
                accepted: spec.spellings.join(", "),
                found: quoted_list(&self.names),
            }),
        }
    }
}

fn format_name(format: DeckFormat) -> &'static str {
    match format {
        DeckFormat::Twilio => "Twilio",
        DeckFormat::Generic => "generic",
    }
}

/// The generic price column wins: a Twilio export never has `rate_per_min`.
fn detect(normal: &[String]) -> Option<DeckFormat> {
    [DeckFormat::Generic, DeckFormat::Twilio]
        .into_iter()
        .find(|&format| {
            let price = specs(format).iter().find(|s| s.field == Field::Price);
            price.is_some_and(|p| normal.iter().any(|n| p.spellings.contains(&n.as_str())))
        })
}

/// `"Price / min"`, `"price/min"` and `"PRICE/MIN"` compare equal; `"rate_per_min"` becomes
/// `"ratepermin"`.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '/')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Names listed in a header error; a longer header ends in "and N more".
const LISTED_NAMES: usize = 20;

fn quoted_list(names: &[String]) -> String {
    let mut quoted: Vec<String> = names
        .iter()
        .take(LISTED_NAMES)
        .map(|n| format!("{:?}", excerpt(n)))
        .collect();
    if names.len() > LISTED_NAMES {
        quoted.push(format!("and {} more", names.len() - LISTED_NAMES));
    }
    quoted.join(", ")
}
