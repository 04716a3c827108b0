//! Tests of the deck formats: fixture files with every messy case, limits, the skip-bad-rows
//! report, and the property that reading an export gives back the rows.

mod cells;
mod generic;
mod limits;
mod lines;
mod round_trip;
mod speed;
mod twilio;

use super::{DeckReader, ReadOptions, RowError};
use crate::money::{Currency, Money};
use crate::rates::DeckRow;
use crate::rating::BillingPlan;

const USD: Currency = Currency::USD;

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, USD)
}

/// 60/60, no connect fee: the plan Twilio rows get by default.
fn minute_plan() -> BillingPlan {
    BillingPlan {
        connect_fee: usd(0),
        first_increment_seconds: 60,
        next_increment_seconds: 60,
    }
}

#[test]
fn the_default_plan_is_sixty_sixty_without_connect_fee() {
    assert_eq!(ReadOptions::new(USD).default_plan, minute_plan());
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Reads everything, splitting good rows from error messages.
fn read_all(bytes: &[u8], options: ReadOptions) -> (Vec<DeckRow>, Vec<RowError>) {
    let reader = match DeckReader::new(bytes, options) {
        Ok(reader) => reader,
        Err(error) => panic!("header refused: {error}"),
    };
    let (mut rows, mut errors) = (Vec::new(), Vec::new());
    for item in reader {
        match item {
            Ok(row) => rows.push(row),
            Err(error) => errors.push(error),
        }
    }
    (rows, errors)
}

fn messages(errors: &[RowError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[allow(clippy::too_many_arguments)]
fn row(
    line: u64,
    iso: &str,
    country: &str,
    description: &str,
    origination: &[&str],
    destination: &[&str],
    micros: i64,
    plan: BillingPlan,
) -> DeckRow {
    DeckRow {
        line,
        iso: iso.to_owned(),
        country: country.to_owned(),
        description: description.to_owned(),
        destination_prefixes: strings(destination),
        origination_prefixes: strings(origination),
        cost_per_minute: usd(micros),
        plan,
    }
}
