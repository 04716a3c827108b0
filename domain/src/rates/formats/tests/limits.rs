//! Every limit, exceeded by one, gives an error that names it; the report stays bounded.

use super::*;
use crate::rates::formats::{HeaderError, ImportReport, InputError, Limits, RowErrorKind};

const HEADER: &str = "Price / min,Destination Prefixes\n";

fn small(limits: impl FnOnce(&mut Limits)) -> ReadOptions {
    let mut options = ReadOptions::new(USD);
    limits(&mut options.limits);
    options
}

#[test]
fn input_over_the_size_limit_stops_with_the_limit_named() {
    let mut file = String::from(HEADER);
    for i in 0..1_000 {
        file.push_str(&format!("0.01,{}\n", 1_000 + i));
    }
    // Header (33 bytes) and two rows of 10 fit; the third row is cut by the limit.
    let options = small(|l| l.max_input_bytes = 60);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        messages(&errors),
        ["line 4: the file is larger than the limit of 60 bytes; split it into smaller decks"]
    );
    assert!(errors[0].is_fatal());
}

#[test]
fn a_huge_header_is_refused_before_any_row() {
    let file = "x".repeat(5_000);
    let options = small(|l| l.max_input_bytes = 1_000);
    let error = DeckReader::new(file.as_bytes(), options).err().unwrap();
    assert_eq!(
        error,
        HeaderError::Input(InputError::TooLarge { max_bytes: 1_000 })
    );
}

#[test]
fn a_line_without_end_stops_at_the_row_limit() {
    let file = format!("{HEADER}0.01,44\n0.01,\"{}\"\n0.01,46\n", "4".repeat(10_000));
    let options = small(|l| l.max_row_bytes = 1_000);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        messages(&errors),
        ["line 3: a row is longer than the limit of 1000 bytes; split it, or close the quote that runs on past its line"]
    );
    assert!(errors[0].is_fatal());
}

#[test]
fn a_quote_left_open_stops_at_the_row_limit_however_short_its_lines() {
    let mut file = format!("Country,{HEADER}UK,0.01,44\n\"Open,0.01,45\n");
    for i in 0..100 {
        file.push_str(&format!("FR,0.01,{}\n", 330 + i));
    }
    let options = small(|l| l.max_row_bytes = 200);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        messages(&errors),
        ["line 3: a row is longer than the limit of 200 bytes; split it, or close the quote that runs on past its line"]
    );
}

#[test]
fn a_doubled_quote_does_not_close_a_long_quoted_row() {
    let file = format!("Description,{HEADER}\"a\"\"{}\",0.01,44\n", "\nxx".repeat(100));
    let options = small(|l| l.max_row_bytes = 100);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert!(rows.is_empty());
    assert_eq!(
        messages(&errors),
        ["line 2: a row is longer than the limit of 100 bytes; split it, or close the quote that runs on past its line"]
    );
}

#[test]
fn rows_end_where_csv_ends_them_through_quotes_and_line_breaks() {
    // Every row is within 18 bytes as written; the file is far over. A row that did not end
    // at its line break (after `""`, a closed quote, a quoted line break) would trip the limit.
    let mut file = String::from("X,Price/min,Prefix\n\"a\"\"\n\nb\",0.01,44\n");
    for i in 0..50 {
        file.push_str(&format!("\"q\"\"\",\".5\",\"{}\"\n", 100 + i));
    }
    let options = small(|l| l.max_row_bytes = 18);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert!(errors.is_empty(), "{:?}", messages(&errors));
    assert_eq!(rows.len(), 51);
    assert_eq!((rows[1].line, rows[50].line), (5, 54));
}

#[test]
fn a_cell_over_the_field_limit_names_its_column() {
    let file = format!("Description,{HEADER}{},0.01,44\n", "d".repeat(50));
    let options = small(|l| l.max_field_bytes = 49);
    let (_, errors) = read_all(file.as_bytes(), options);
    assert_eq!(
        messages(&errors),
        [r#"line 2, column "Description": cell is 50 bytes, over the limit of 49; shorten it"#]
    );
}

#[test]
fn rows_past_the_row_count_limit_stop_the_reader() {
    let file = format!("{HEADER}0.01,44\n\n0.01,45\n0.01,46\n0.01,47\n");
    let options = small(|l| l.max_rows = 2);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        messages(&errors),
        ["line 5: the file has more than 2 rows, the limit; split it into smaller decks"]
    );
}

#[test]
fn too_many_prefixes_in_one_cell() {
    let file = format!("{HEADER}0.01,\"441, 442, 443, 444\"\n0.01,\"45,46,47\"\n");
    let options = small(|l| l.max_prefixes_per_cell = 3);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        messages(&errors),
        [
            r#"line 2, column "Destination Prefixes": cell holds 4 prefixes, over the limit of 3; split the row"#
        ]
    );
}

#[test]
fn a_prefix_of_fifteen_digits_is_the_longest_accepted() {
    let file = format!("{HEADER}0.01,{}\n0.01,{}\n", "4".repeat(15), "5".repeat(16));
    let (rows, errors) = read_all(file.as_bytes(), ReadOptions::new(USD));
    assert_eq!(rows.len(), 1);
    assert_eq!(
        errors[0].kind,
        RowErrorKind::PrefixTooLong {
            prefix: "5".repeat(16),
            digits: 16,
            max_digits: 15
        }
    );
}

#[test]
fn distinct_routes_past_the_limit_stop_the_reader() {
    let file = format!("{HEADER}0.01,\"44,45\"\n0.01,\"46,47\"\n0.01,48\n");
    let options = small(|l| l.max_routes = 3);
    let (rows, errors) = read_all(file.as_bytes(), options);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        messages(&errors),
        ["line 3: the file has more than 3 distinct origin and destination prefix pairs, the limit; split it into smaller decks"]
    );
    assert!(errors[0].is_fatal());
}

#[test]
fn report_keeps_the_first_errors_and_counts_the_rest() {
    let mut file = String::from(HEADER);
    for i in 0..10 {
        file.push_str(&format!("0.01,{}\nbad,{}\n", 100 + i, 200 + i));
    }
    let mut report = ImportReport::new(3);
    let reader = DeckReader::new(file.as_bytes(), ReadOptions::new(USD)).unwrap();
    let good: Vec<DeckRow> = reader.filter_map(|item| report.observe(item)).collect();
    assert_eq!(good.len(), 10);
    assert_eq!(report.good_rows, 10);
    assert_eq!(report.errors.len(), 3);
    assert_eq!(report.more_errors, 7);
    assert_eq!(report.error_count(), 10);
    assert_eq!(report.errors[2].line, 7);
    assert!(!report.stopped_early && !report.is_clean());
}
