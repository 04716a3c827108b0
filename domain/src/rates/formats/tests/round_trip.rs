//! Exporters: the exact text they write, what they refuse, and the property that reading an
//! export gives back the rows, lines included (one row per line after the header).

use proptest::prelude::*;

use super::*;
use crate::rates::formats::{write_generic, write_twilio, WriteError};
use crate::rates::DeckFormat;

#[test]
fn twilio_export_text_is_exact() {
    let plan = minute_plan();
    let rows = [
        row(
            2,
            "US",
            "United States",
            "Local, NJ",
            &[],
            &["1201", "1202"],
            13_500,
            plan,
        ),
        row(3, "IN", "India", "Mobile", &["1"], &["91"], 7_000_000, plan),
    ];
    let mut out = Vec::new();
    assert_eq!(write_twilio(&mut out, &rows, &plan).unwrap(), 2);
    let expected = "ISO,Country,Description,Price / min,Origination Prefixes,Destination Prefixes\n\
                    US,United States,\"Local, NJ\",0.0135,,\"1201, 1202\"\n\
                    IN,India,Mobile,7,1,91\n";
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn generic_export_text_is_exact() {
    let plan = BillingPlan::new(usd(1), 6, 1).unwrap();
    let rows = [row(2, "", "", "", &["1", "7"], &["44"], 0, plan)];
    let mut out = Vec::new();
    write_generic(&mut out, &rows, USD).unwrap();
    let expected = "prefix,origination_prefix,iso,country,description,rate_per_min,connect_fee,\
                    first_increment,next_increment,currency\n\
                    44,\"1, 7\",,,,0,0.000001,6,1,USD\n";
    assert_eq!(String::from_utf8(out).unwrap(), expected);
}

#[test]
fn twilio_export_refuses_a_plan_it_cannot_carry() {
    let other = BillingPlan::new(usd(0), 1, 1).unwrap();
    let rows = [row(7, "US", "", "", &[], &["1"], 1, other)];
    let error = write_twilio(Vec::new(), &rows, &minute_plan()).unwrap_err();
    assert!(
        matches!(error, WriteError::PlanNotInFormat { line: 7, .. }),
        "{error}"
    );
}

#[test]
fn exports_refuse_a_second_currency() {
    let mut eur = row(4, "FR", "", "", &[], &["33"], 1, minute_plan());
    eur.cost_per_minute = Money::from_micros(1, Currency::EUR);
    let error = write_generic(Vec::new(), [&eur], USD).unwrap_err();
    assert!(
        matches!(error, WriteError::MixedCurrency { line: 4, .. }),
        "{error}"
    );
}

fn text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ,\"'é€-]{0,16}".prop_map(|s| s.trim().to_owned())
}

/// Destination prefixes unique across rows: row `i`'s end in `i` as three digits.
fn destinations(i: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set("[1-9][0-9]{0,10}", 1..4)
        .prop_map(move |bases| bases.into_iter().map(|b| format!("{b}{i:03}")).collect())
}

fn generic_plan() -> impl Strategy<Value = BillingPlan> {
    (0i64..1_000_000_000, 1u32..=3_600, 1u32..=3_600).prop_map(|(fee, first, next)| BillingPlan {
        connect_fee: usd(fee),
        first_increment_seconds: first,
        next_increment_seconds: next,
    })
}

fn deck_row(i: usize, plan: BoxedStrategy<BillingPlan>) -> impl Strategy<Value = DeckRow> {
    let iso = prop_oneof![Just(String::new()), "[A-Za-z]{2}"];
    let origination = prop::collection::btree_set("[1-9][0-9]{0,5}", 0..3);
    (
        iso,
        text(),
        text(),
        origination,
        destinations(i),
        0i64..1_000_000_000_000,
        plan,
    )
        .prop_map(
            move |(iso, country, description, origination, destination, micros, plan)| DeckRow {
                line: i as u64 + 2,
                iso,
                country,
                description,
                destination_prefixes: destination,
                origination_prefixes: origination.into_iter().collect(),
                cost_per_minute: usd(micros),
                plan,
            },
        )
}

fn deck(plan: fn() -> BoxedStrategy<BillingPlan>) -> impl Strategy<Value = Vec<DeckRow>> {
    (0usize..25).prop_flat_map(move |n| (0..n).map(|i| deck_row(i, plan())).collect::<Vec<_>>())
}

fn twilio_plan() -> BoxedStrategy<BillingPlan> {
    Just(minute_plan()).boxed()
}

fn any_plan() -> BoxedStrategy<BillingPlan> {
    generic_plan().boxed()
}

fn read_back(file: &[u8], format: DeckFormat) -> Result<Vec<DeckRow>, TestCaseError> {
    let reader =
        DeckReader::new(file, ReadOptions::new(USD)).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(reader.format(), format);
    reader
        .map(|item| item.map_err(|e| TestCaseError::fail(e.to_string())))
        .collect()
}

proptest! {
    #[test]
    fn reading_a_twilio_export_gives_back_the_rows(rows in deck(twilio_plan)) {
        let mut file = Vec::new();
        write_twilio(&mut file, &rows, &minute_plan()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read_back(&file, DeckFormat::Twilio)?, rows);
    }

    #[test]
    fn reading_a_generic_export_gives_back_the_rows(rows in deck(any_plan)) {
        let mut file = Vec::new();
        write_generic(&mut file, &rows, USD).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(read_back(&file, DeckFormat::Generic)?, rows);
    }
}
