//! Exporters: `DeckRow`s back into each format's CSV, one row per line after the header, so
//! reading an export gives the same rows with lines 2, 3, 4, … (as long as no text cell holds
//! a line break). Amounts are written exactly from micro-units, never through a float.

use std::io::Write;

use super::error::WriteError;
use crate::money::{Currency, Money};
use crate::rates::DeckRow;
use crate::rating::BillingPlan;

const TWILIO_HEADER: [&str; 6] = [
    "ISO",
    "Country",
    "Description",
    "Price / min",
    "Origination Prefixes",
    "Destination Prefixes",
];

const GENERIC_HEADER: [&str; 10] = [
    "prefix",
    "origination_prefix",
    "iso",
    "country",
    "description",
    "rate_per_min",
    "connect_fee",
    "first_increment",
    "next_increment",
    "currency",
];

/// Writes rows as Twilio voice pricing. The format has no plan and no currency column: every
/// row must carry `plan` (the one the file will be read back with) and its currency. Returns
/// the number of rows written.
pub fn write_twilio<'a, W: Write>(
    writer: W,
    rows: impl IntoIterator<Item = &'a DeckRow>,
    plan: &BillingPlan,
) -> Result<u64, WriteError> {
    let mut csv = csv::Writer::from_writer(writer);
    csv.write_record(TWILIO_HEADER)?;
    let currency = plan.connect_fee.currency();
    let (mut origins, mut destinations) = (String::new(), String::new());
    let mut count = 0;
    for row in rows {
        check_row(row, currency)?;
        if row.plan != *plan {
            return Err(WriteError::PlanNotInFormat {
                line: row.line,
                found: plan_text(&row.plan),
                expected: plan_text(plan),
            });
        }
        join(&row.origination_prefixes, &mut origins);
        join(&row.destination_prefixes, &mut destinations);
        let price = decimal(row.cost_per_minute);
        csv.write_record([
            &row.iso,
            &row.country,
            &row.description,
            &price,
            &origins,
            &destinations,
        ])?;
        count += 1;
    }
    csv.flush()?;
    Ok(count)
}

/// Writes rows in the generic format, every column filled. All rows must be in `currency`.
/// Returns the number of rows written.
pub fn write_generic<'a, W: Write>(
    writer: W,
    rows: impl IntoIterator<Item = &'a DeckRow>,
    currency: Currency,
) -> Result<u64, WriteError> {
    let mut csv = csv::Writer::from_writer(writer);
    csv.write_record(GENERIC_HEADER)?;
    let (mut origins, mut destinations) = (String::new(), String::new());
    let mut count = 0;
    for row in rows {
        check_row(row, currency)?;
        join(&row.origination_prefixes, &mut origins);
        join(&row.destination_prefixes, &mut destinations);
        let plan = &row.plan;
        csv.write_record([
            destinations.as_str(),
            &origins,
            &row.iso,
            &row.country,
            &row.description,
            &decimal(row.cost_per_minute),
            &decimal(plan.connect_fee),
            &plan.first_increment_seconds.to_string(),
            &plan.next_increment_seconds.to_string(),
            currency.as_str(),
        ])?;
        count += 1;
    }
    csv.flush()?;
    Ok(count)
}

fn check_row(row: &DeckRow, currency: Currency) -> Result<(), WriteError> {
    if row.destination_prefixes.is_empty() {
        return Err(WriteError::NoPrefix { line: row.line });
    }
    for money in [row.cost_per_minute, row.plan.connect_fee] {
        if money.currency() != currency {
            return Err(WriteError::MixedCurrency {
                line: row.line,
                found: money.currency(),
                deck: currency,
            });
        }
    }
    Ok(())
}

/// `"1201, 1202"`: the csv writer quotes the cell because it holds a comma.
fn join(prefixes: &[String], out: &mut String) {
    out.clear();
    for (i, prefix) in prefixes.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(prefix);
    }
}

/// The exact amount without trailing zeros, as Twilio writes it: `0.0135`, `1`, `0`.
fn decimal(money: Money) -> String {
    let mut text = money.amount_string();
    let kept = text.trim_end_matches('0').trim_end_matches('.').len();
    text.truncate(kept);
    text
}

fn plan_text(plan: &BillingPlan) -> String {
    format!(
        "{}/{} with connect fee {}",
        plan.first_increment_seconds, plan.next_increment_seconds, plan.connect_fee
    )
}
