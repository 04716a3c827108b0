//! The Twilio format: the messy fixture (every error, exact message), the Elastic SIP
//! Trunking shape and the older header without origination.

use super::*;
use crate::rates::formats::{HeaderError, RowErrorKind};
use crate::rates::DeckFormat;

const MESSY: &[u8] = include_bytes!("../../../../tests/fixtures/rates/twilio_messy.csv");
const ELASTIC: &[u8] = include_bytes!("../../../../tests/fixtures/rates/elastic_sip_trunking.csv");

const DIGITS_ONLY: &str = "write digits only (a leading + is allowed) and separate prefixes with commas";

#[test]
fn messy_fixture_good_rows_have_exact_values_and_lines() {
    let (rows, _) = read_all(MESSY, ReadOptions::new(USD));
    let plan = minute_plan();
    let expected = vec![
        row(
            2,
            "US",
            "United States",
            "Local - New Jersey",
            &[],
            &["1201", "1202", "1203"],
            13_500,
            plan,
        ),
        row(
            4,
            "GB",
            "United Kingdom",
            "Mobile",
            &[],
            &["447", "4478"],
            40_000,
            plan,
        ),
        row(
            5,
            "AN",
            "Netherlands Antilles",
            "Curacao",
            &[],
            &["5999"],
            180_000,
            plan,
        ),
        row(6, "ZZ", "Satellite", "Inmarsat", &[], &["870"], 7_500_000, plan),
        row(
            7,
            "IN",
            "India",
            "Mobile from US",
            &["1201", "1202"],
            &["91"],
            25_000,
            plan,
        ),
        row(8, "IN", "India", "Mobile", &[], &["91"], 30_000, plan),
        row(25, "DE", "Germany", "Multi\r\nline", &[], &["4960"], 10_000, plan),
        row(34, "CH", "Switzerland", "Last row", &[], &["41"], 50_000, plan),
    ];
    assert_eq!(rows, expected);
}

#[test]
fn messy_fixture_every_error_names_line_column_and_remedy() {
    let (_, errors) = read_all(MESSY, ReadOptions::new(USD));
    let expected = [
        r#"line 10, column "Price / min": price "0,0135" uses a comma; use a dot as decimal separator"#.to_owned(),
        r#"line 11, column "Price / min": price "€0.0200" carries a currency symbol that is not the deck's currency USD; convert the price or import it as a deck in its own currency"#.to_owned(),
        r#"line 12, column "Price / min": price is empty; write an amount such as 0.0135"#.to_owned(),
        r#"line 13, column "Price / min": price "-0.5" is negative; it must be 0 or more"#.to_owned(),
        r#"line 14, column "Price / min": price "abc" is not a number; write digits with an optional dot, such as 0.0135"#.to_owned(),
        format!(r#"line 15, column "Destination Prefixes": prefix "49a30" contains 'a'; {DIGITS_ONLY}"#),
        format!(r#"line 16, column "Destination Prefixes": prefix "49 89" contains ' '; {DIGITS_ONLY}"#),
        format!(r#"line 17, column "Destination Prefixes": prefix "49-40" contains '-'; {DIGITS_ONLY}"#),
        format!(r#"line 18, column "Origination Prefixes": prefix "x1" contains 'x'; {DIGITS_ONLY}"#),
        r#"line 19, column "Destination Prefixes": destination prefix 1202 (from any origin) is priced 0.014000 USD here and 0.013500 USD on line 2; keep one price per prefix and delete the other line"#.to_owned(),
        r#"line 20, column "Destination Prefixes": destination prefix 1203 (from any origin) repeats line 2 with the same price; delete one of the two lines"#.to_owned(),
        r#"line 21, column "Destination Prefixes": destination prefix 91 (from origination prefix 1202) is priced 0.026000 USD here and 0.025000 USD on line 7; keep one price per prefix and delete the other line"#.to_owned(),
        r#"line 22, column "Origination Prefixes": row has 4 fields but the header has 6; the line is cut short; complete it or delete it"#.to_owned(),
        r#"line 23: row has 7 fields but the header has 6; quote cells that contain commas, such as "1201, 1202""#.to_owned(),
        r#"line 24, column "Description": cell is not valid UTF-8; save the file as UTF-8"#.to_owned(),
        r#"line 27, column "ISO": ISO code "USA" is not two letters; write a code such as US (or leave it empty)"#.to_owned(),
        r#"line 28, column "Price / min": price "0.0000001" has more than 6 decimal places; amounts are exact to 0.000001"#.to_owned(),
        r#"line 29, column "Destination Prefixes": prefix "04980" starts with 0; write it in international form, starting with the country code"#.to_owned(),
        r#"line 30, column "Destination Prefixes": prefix "4912345678901234" has 16 digits; E.164 numbers have at most 15"#.to_owned(),
        r#"line 31, column "Destination Prefixes": no destination prefix; every row needs at least one"#.to_owned(),
        r#"line 32, column "Destination Prefixes": prefix 4990 is listed twice in this cell; delete one of them"#.to_owned(),
    ];
    assert_eq!(messages(&errors), expected);
    assert!(
        errors.iter().all(|e| !e.is_fatal()),
        "a bad row must not stop the reader"
    );
}

#[test]
fn messy_fixture_is_detected_as_twilio_with_bom_free_column_names() {
    let reader = DeckReader::new(MESSY, ReadOptions::new(USD)).unwrap();
    assert_eq!(reader.format(), DeckFormat::Twilio);
    assert_eq!(reader.column_names()[0], "ISO");
}

#[test]
fn elastic_sip_trunking_shape_reads_by_column_name() {
    let (rows, errors) = read_all(ELASTIC, ReadOptions::new(USD));
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let plan = minute_plan();
    let expected = vec![
        row(
            2,
            "US",
            "United States",
            "New Jersey",
            &[],
            &["1201"],
            6_500,
            plan,
        ),
        row(
            3,
            "US",
            "United States",
            "New Jersey from US",
            &["1"],
            &["1201"],
            4_500,
            plan,
        ),
        row(4, "GB", "United Kingdom", "Landline", &[], &["44"], 10_000, plan),
        row(5, "GB", "United Kingdom", "Mobile", &[], &["447"], 30_000, plan),
        row(6, "ZZ", "Satellite", "Iridium", &[], &["8816"], 9_500_000, plan),
    ];
    assert_eq!(rows, expected);
}

#[test]
fn older_header_without_origination_means_any_origin() {
    let file = "ISO,Country,Description,Price / min,Destination Prefixes\n\
                US,United States,Other,0.0130,\"1, 1800\"\n";
    let (rows, errors) = read_all(file.as_bytes(), ReadOptions::new(USD));
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    let plan = minute_plan();
    assert_eq!(
        rows,
        vec![row(
            2,
            "US",
            "United States",
            "Other",
            &[],
            &["1", "1800"],
            13_000,
            plan
        )]
    );
}

#[test]
fn twilio_rows_take_the_plan_from_the_options() {
    let plan = BillingPlan::new(usd(10_000), 1, 1).unwrap();
    let file = "Price per minute,Prefix\n0.01,44\n";
    let (rows, _) = read_all(file.as_bytes(), ReadOptions::new(USD).with_plan(plan));
    assert_eq!(rows[0].plan, plan);
    assert_eq!(rows[0].iso, "");
}

#[test]
fn missing_price_column_names_it_and_lists_what_was_found() {
    let file = "ISO,Country,Description,Origination Prefixes,Destination Prefixes\n";
    let options = ReadOptions::new(USD).with_format(DeckFormat::Twilio);
    let error = DeckReader::new(file.as_bytes(), options).err().unwrap();
    assert_eq!(
        error.to_string(),
        r#"the Twilio header has no "Price / min" column (accepted, ignoring case, spaces and underscores: price/min, priceperminute, pricepermin); found: "ISO", "Country", "Description", "Origination Prefixes", "Destination Prefixes"; add the column or fix its name"#
    );
}

#[test]
fn unknown_header_and_empty_file_are_refused() {
    let error = DeckReader::new(&b"a,b\n1,2\n"[..], ReadOptions::new(USD))
        .err()
        .unwrap();
    assert!(matches!(error, HeaderError::UnknownFormat { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        r#"the header matches no deck format (found: "a", "b"); a Twilio deck needs "Destination Prefixes" and "Price / min", a generic deck "prefix" and "rate_per_min""#
    );
    let error = DeckReader::new(&b"\r\n\r\n"[..], ReadOptions::new(USD))
        .err()
        .unwrap();
    assert!(matches!(error, HeaderError::Empty { .. }), "{error}");
}

#[test]
fn two_columns_with_one_meaning_are_refused() {
    let file = "Prefix,Destination Prefixes,Price / min\n";
    let error = DeckReader::new(file.as_bytes(), ReadOptions::new(USD))
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        r#"header columns "Prefix" and "Destination Prefixes" both mean "Destination Prefixes"; keep only one of them"#
    );
}

#[test]
fn a_currency_symbol_must_be_the_decks() {
    let file = "Price / min,Destination Prefixes\n$0.01,44\n€0.01,33\n";
    let (rows, errors) = read_all(
        file.as_bytes(),
        ReadOptions::new(Currency::EUR).with_plan(eur_plan()),
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].cost_per_minute, Money::from_micros(10_000, Currency::EUR));
    assert!(matches!(errors[0].kind, RowErrorKind::ForeignSymbol { .. }));
    assert_eq!(errors[0].line, 2);
}

fn eur_plan() -> BillingPlan {
    ReadOptions::new(Currency::EUR).default_plan
}

#[test]
fn a_plan_in_another_currency_than_the_deck_is_refused() {
    let options = ReadOptions::new(USD).with_plan(eur_plan());
    let error = DeckReader::new(&b"Price / min,Prefix\n"[..], options)
        .err()
        .unwrap();
    assert!(matches!(error, HeaderError::PlanCurrency { .. }), "{error}");
}

#[test]
fn a_rejected_row_leaves_none_of_its_prefixes_behind() {
    let file = "Price / min,Destination Prefixes\n0.01,44\n0.02,\"33, 44\"\n0.03,33\n";
    let (rows, errors) = read_all(file.as_bytes(), ReadOptions::new(USD));
    assert_eq!(
        messages(&errors),
        [
            r#"line 3, column "Destination Prefixes": destination prefix 44 (from any origin) is priced 0.020000 USD here and 0.010000 USD on line 2; keep one price per prefix and delete the other line"#
        ]
    );
    let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4]);
}

#[test]
fn a_quoted_first_column_after_a_bom_is_found() {
    let file = b"\xEF\xBB\xBF\"ISO\",\"Price / min\",\"Destination Prefixes\"\r\nGB,0.01,44\r\n";
    let reader = DeckReader::new(&file[..], ReadOptions::new(USD)).unwrap();
    assert_eq!(
        reader.column_names(),
        ["ISO", "Price / min", "Destination Prefixes"]
    );
    let rows: Vec<DeckRow> = reader.map(Result::unwrap).collect();
    assert_eq!(rows[0].iso, "GB");
}

#[test]
fn a_header_that_is_not_utf8_is_refused() {
    let file = b"Pr\xFFice / min,Destination Prefixes\n";
    let error = DeckReader::new(&file[..], ReadOptions::new(USD)).err().unwrap();
    assert_eq!(error, HeaderError::InvalidUtf8);
    assert_eq!(
        error.to_string(),
        "the header is not valid UTF-8; save the file as UTF-8"
    );
}

#[test]
fn an_empty_file_says_what_header_to_write() {
    let error = DeckReader::new(&b""[..], ReadOptions::new(USD)).err().unwrap();
    assert_eq!(
        error.to_string(),
        r#"the file is empty; a deck starts with a header line such as "ISO,Country,Description,Price / min,Origination Prefixes,Destination Prefixes""#
    );
}

#[test]
fn a_header_error_lists_at_most_twenty_names_cut_short() {
    let mut header: Vec<String> = (0..25).map(|i| format!("c{i}")).collect();
    header[0] = "x".repeat(100);
    let error = DeckReader::new(header.join(",").as_bytes(), ReadOptions::new(USD))
        .err()
        .unwrap();
    let HeaderError::UnknownFormat { found } = error else {
        panic!("{error}");
    };
    assert!(
        found.starts_with(&format!("{:?}, \"c1\"", "x".repeat(40))),
        "{found}"
    );
    assert!(found.ends_with("\"c19\", and 5 more"), "{found}");
}
