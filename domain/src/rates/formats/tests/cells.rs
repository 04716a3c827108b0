//! One cell at a time: the amounts, prefixes, ISO codes and increments the fixtures do not
//! spell out, each with the exact message a person would see.

use super::*;

/// The message for a one-row Twilio deck whose price and prefix cells are given.
fn one_row(price: &str, prefixes: &str) -> Result<DeckRow, String> {
    let file = format!("ISO,Price / min,Destination Prefixes\nGB,{price},{prefixes}\n");
    let (mut rows, errors) = read_all(file.as_bytes(), ReadOptions::new(USD));
    match errors.first() {
        Some(error) => Err(error.to_string()),
        None => Ok(rows.remove(0)),
    }
}

#[test]
fn amounts_are_exact_decimals_or_errors_that_say_why() {
    let price = |text: &str| one_row(text, "44").map(|row| row.cost_per_minute.micros());
    assert_eq!(price("0"), Ok(0));
    assert_eq!(price(".5"), Ok(500_000));
    assert_eq!(price("+0.01"), Ok(10_000));
    assert_eq!(price("$ 0.01"), Ok(10_000));
    assert_eq!(price("0.013500"), Ok(13_500));
    let column = r#"line 2, column "Price / min": price"#;
    assert_eq!(
        price("1e-3"),
        Err(format!(
            r#"{column} "1e-3" is not a number; write digits with an optional dot, such as 0.0135"#
        ))
    );
    assert_eq!(
        price("99999999999999"),
        Err(format!(
            r#"{column} "99999999999999" is too large; amounts must stay below 9,223,372,036,854"#
        ))
    );
    assert_eq!(
        price("£1"),
        Err(format!(
            r#"{column} "£1" carries a currency symbol that is not the deck's currency USD; convert the price or import it as a deck in its own currency"#
        ))
    );
}

#[test]
fn prefixes_drop_a_plus_and_skip_empty_items() {
    let prefixes = |cell: &str| one_row("0.01", cell).map(|row| row.destination_prefixes);
    assert_eq!(prefixes("\"+44, 33,\""), Ok(strings(&["44", "33"])));
    assert_eq!(prefixes("\" , 1 ,\""), Ok(strings(&["1"])));
    let column = r#"line 2, column "Destination Prefixes""#;
    assert_eq!(
        prefixes("+"),
        Err(format!(
            r#"{column}: prefix "+" contains '+'; write digits only (a leading + is allowed) and separate prefixes with commas"#
        ))
    );
    assert_eq!(
        prefixes("\" , \""),
        Err(format!(
            "{column}: no destination prefix; every row needs at least one"
        ))
    );
}

#[test]
fn iso_codes_are_two_letters_or_empty() {
    let iso = |cell: &str| {
        let file = format!("ISO,Price / min,Destination Prefixes\n{cell},0.01,44\n");
        let (rows, errors) = read_all(file.as_bytes(), ReadOptions::new(USD));
        rows.first()
            .map(|r| r.iso.clone())
            .ok_or_else(|| messages(&errors).join(""))
    };
    assert_eq!(iso("gb"), Ok("gb".to_owned()));
    assert_eq!(iso(""), Ok(String::new()));
    assert_eq!(
        iso("G1"),
        Err(r#"line 2, column "ISO": ISO code "G1" is not two letters; write a code such as US (or leave it empty)"#.to_owned())
    );
}
