//! The generic format: any column order, extra columns ignored, optional plan columns, one
//! currency per deck, required columns.

use super::*;
use crate::rates::formats::HeaderError;
use crate::rates::DeckFormat;

const SHUFFLED: &[u8] = include_bytes!("../../../../tests/fixtures/rates/generic_shuffled.csv");

#[test]
fn shuffled_columns_with_an_extra_one_read_by_name() {
    let reader = DeckReader::new(SHUFFLED, ReadOptions::new(USD)).unwrap();
    assert_eq!(reader.format(), DeckFormat::Generic);
    let (rows, _) = read_all(SHUFFLED, ReadOptions::new(USD));
    let own_plan = BillingPlan::new(usd(5_000), 30, 6).unwrap();
    let expected = vec![
        row(
            2,
            "GB",
            "United Kingdom",
            "UK landline",
            &[],
            &["44"],
            10_000,
            own_plan,
        ),
        // Empty currency, fee and increments take the deck's currency and the default plan.
        row(
            3,
            "GB",
            "United Kingdom",
            "UK mobile",
            &[],
            &["447"],
            20_000,
            minute_plan(),
        ),
    ];
    assert_eq!(rows, expected);
}

#[test]
fn another_currency_and_a_zero_increment_are_row_errors() {
    let (_, errors) = read_all(SHUFFLED, ReadOptions::new(USD));
    let expected = [
        r#"line 4, column "currency": currency EUR differs from the deck's currency USD; a deck has one currency: split the file by currency"#,
        r#"line 5, column "next_increment": next increment "0" is not whole seconds from 1 to 3600; write a number such as 60"#,
    ];
    assert_eq!(messages(&errors), expected);
}

#[test]
fn missing_rate_column_is_a_header_error_naming_it() {
    let file = "prefix,country,description,connect_fee\n44,UK,,0\n";
    let options = ReadOptions::new(USD).with_format(DeckFormat::Generic);
    let error = DeckReader::new(file.as_bytes(), options).err().unwrap();
    assert_eq!(
        error.to_string(),
        r#"the generic header has no "rate_per_min" column (accepted, ignoring case, spaces and underscores: ratepermin, rateperminute); found: "prefix", "country", "description", "connect_fee"; add the column or fix its name"#
    );
    // Without a forced format the same header matches neither format.
    let error = DeckReader::new(file.as_bytes(), ReadOptions::new(USD))
        .err()
        .unwrap();
    assert!(matches!(error, HeaderError::UnknownFormat { .. }), "{error}");
}

#[test]
fn bad_connect_fee_and_increment_name_their_columns() {
    let file = "prefix,rate_per_min,connect_fee,first_increment\n44,0.01,\"0,5\",60\n45,0.01,0,6.5\n";
    let (rows, errors) = read_all(file.as_bytes(), ReadOptions::new(USD));
    assert!(rows.is_empty());
    assert_eq!(
        messages(&errors),
        [
            r#"line 2, column "connect_fee": connect fee "0,5" uses a comma; use a dot as decimal separator"#,
            r#"line 3, column "first_increment": first increment "6.5" is not whole seconds from 1 to 3600; write a number such as 60"#,
        ]
    );
}

#[test]
fn a_twilio_file_forced_as_generic_is_refused_by_header() {
    let file = "ISO,Country,Description,Price / min,Destination Prefixes\n";
    let options = ReadOptions::new(USD).with_format(DeckFormat::Generic);
    let error = DeckReader::new(file.as_bytes(), options).err().unwrap();
    assert!(
        matches!(
            error,
            HeaderError::MissingColumn {
                column: "rate_per_min",
                ..
            }
        ),
        "{error}"
    );
}
