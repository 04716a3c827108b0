//! E164 parsing: formats people type, country detection on shared calling codes (pinned to
//! libphonenumber's example numbers and well-known ranges), the fixes over the crate, masking.

use proptest::prelude::*;

use super::region::REGION_OVERRIDES;
use super::*;

fn region(code: &str) -> Region {
    Region::parse(code).unwrap()
}

fn parse(input: &str, default: Option<&str>) -> E164 {
    E164::parse(input, default.map(region)).unwrap_or_else(|e| panic!("{input:?} ({default:?}): {e}"))
}

#[test]
fn formats_people_type_become_the_same_digits() {
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("+44 20 7946 0958", None, "442079460958"),
        ("+44 (0) 20 7946 0958", None, "442079460958"),
        ("020 7946 0958", Some("GB"), "442079460958"),
        ("00 44 20 7946 0958", Some("DE"), "442079460958"),
        ("011 44 20 7946 0958", Some("US"), "442079460958"),
        ("0011 44 20 7946 0958", Some("AU"), "442079460958"),
        ("0044 20 7946 0958", None, "442079460958"),
        ("(212) 555-0100", Some("US"), "12125550100"),
        ("212.555.0100", Some("US"), "12125550100"),
        ("212-555-0100", Some("US"), "12125550100"),
        ("1 (212) 555-0100", Some("US"), "12125550100"),
        ("+1 212 555 0100", Some("GB"), "12125550100"),
        ("030 123456", Some("DE"), "4930123456"),
        ("8 912 345 6789", Some("RU"), "79123456789"),
        ("810 44 20 7946 0958", Some("RU"), "442079460958"),
        ("8 771 000 9998", Some("KZ"), "77710009998"),
        ("416 979 1234", Some("CA"), "14169791234"),
    ];
    for (input, default, digits) in cases {
        assert_eq!(
            parse(input, *default).digits(),
            *digits,
            "{input:?} with {default:?}"
        );
    }
}

/// Shared calling codes: the region must be the one libphonenumber's metadata gives for its
/// example numbers and the well-known ranges (crown dependencies, NANP members, KZ, VA).
#[test]
fn regions_on_shared_calling_codes() {
    let cases: &[(&str, &str)] = &[
        ("+1 201 555 0123", "US"),
        ("+1 212 555 0100", "US"),
        ("+1 416 979 1234", "CA"),
        ("+1 604 555 0123", "CA"),
        ("+1 506 234 5678", "CA"),
        ("+1 876 523 0123", "JM"),
        ("+1 242 345 6789", "BS"),
        ("+1 787 234 5678", "PR"),
        ("+1 809 234 5678", "DO"),
        ("+1 868 221 1234", "TT"),
        ("+7 301 123 4567", "RU"),
        ("+7 912 345 6789", "RU"),
        ("+7 712 345 6789", "KZ"),
        ("+7 771 000 9998", "KZ"),
        ("+44 20 7946 0958", "GB"),
        ("+44 7400 123456", "GB"),
        ("+44 1481 256789", "GG"),
        ("+44 7781 123456", "GG"),
        ("+44 1534 456789", "JE"),
        ("+44 7797 712345", "JE"),
        ("+44 1624 756789", "IM"),
        ("+44 7624 123456", "IM"),
        ("+39 06 1234 5678", "IT"),
        ("+39 02 1234 5678", "IT"),
        ("+39 312 345 6789", "IT"),
        ("+39 06 698 12345", "VA"),
    ];
    for (input, want) in cases {
        assert_eq!(parse(input, None).region(), Some(region(want)), "{input}");
    }
}

#[test]
fn regions_from_national_format_follow_the_number_not_the_caller() {
    assert_eq!(parse("876 523 0123", Some("US")).region(), Some(region("JM")));
    assert_eq!(parse("01481 256789", Some("GB")).region(), Some(region("GG")));
    assert_eq!(parse("06 698 12345", Some("IT")).region(), Some(region("VA")));
    assert_eq!(parse("(416) 979-1234", Some("US")).region(), Some(region("CA")));
}

/// The crate's `country().id()` drops Italy's leading zero before matching and answers
/// `None` for every Italian fixed line; ours answers IT (and VA for 06 698).
#[test]
fn italian_leading_zero_is_kept_and_gets_a_region() {
    let rome = parse("+39 06 1234 5678", None);
    assert_eq!(rome.national(), "0612345678");
    assert_eq!(rome.digits(), "390612345678");
    assert_eq!(rome.region(), Some(region("IT")));
    assert_eq!(
        phonenumber::parse(None, "+390612345678").unwrap().country().id(),
        None
    );
    for (input, default) in [
        ("06 1234 5678", "IT"),
        ("0039 06 1234 5678", "IT"),
        ("00 39 06 1234 5678", "GB"),
    ] {
        assert_eq!(
            parse(input, Some(default)).national(),
            "0612345678",
            "{input} from {default}"
        );
    }
}

/// With GB as the default region the crate strips GB's trunk `0` from an Italian number
/// dialled with `00 39`; we parse anything with a country code without a default region.
#[test]
fn idd_from_a_trunk_zero_country_keeps_the_italian_zero() {
    let crate_answer = phonenumber::parse(Some(phonenumber::country::GB), "00 39 06 1234 5678").unwrap();
    assert_eq!(crate_answer.national().to_string(), "612345678");
    assert_eq!(parse("00 39 06 1234 5678", Some("GB")).digits(), "390612345678");
}

/// Ofcom allocates 07924 to the Isle of Man; the metadata's GB mobile pattern claims it first.
#[test]
fn override_table_moves_07924_to_the_isle_of_man() {
    let crate_answer = phonenumber::parse(None, "+447924123456").unwrap();
    assert_eq!(crate_answer.country().id(), Some(phonenumber::country::GB));
    assert_eq!(parse("+44 7924 123456", None).region(), Some(region("IM")));
    assert_eq!(parse("07924 123456", Some("GB")).region(), Some(region("IM")));
}

#[test]
fn override_entries_do_not_overlap() {
    for (i, a) in REGION_OVERRIDES.iter().enumerate() {
        for b in &REGION_OVERRIDES[i + 1..] {
            let overlap = a.0 == b.0 && (a.1.starts_with(b.1) || b.1.starts_with(a.1));
            assert!(!overlap, "{a:?} overlaps {b:?}");
        }
    }
}

#[test]
fn non_geographic_codes_have_no_region() {
    let inmarsat = parse("+870 773 111 632", None);
    assert_eq!((inmarsat.country_code(), inmarsat.region()), (870, None));
}

#[test]
fn bad_input_says_what_to_do() {
    let err = |input: &str, default: Option<&str>| E164::parse(input, default.map(region)).unwrap_err();
    assert_eq!(err("", None), ParseNumberError::Empty);
    assert_eq!(err("  ", Some("GB")), ParseNumberError::Empty);
    assert_eq!(err("020 7946 0958", None), ParseNumberError::MissingCountry);
    assert_eq!(
        err("+44 20 7946 095x", None),
        ParseNumberError::InvalidCharacter('x')
    );
    assert_eq!(
        err("1-800-FLOWERS", Some("US")),
        ParseNumberError::InvalidCharacter('F')
    );
    assert_eq!(err("+1 1234567890123456", None), ParseNumberError::TooLong);
    assert_eq!(err(&"1".repeat(65), None), ParseNumberError::InputTooLong);
    assert!(matches!(
        err("+44 20 5000 0000", None),
        ParseNumberError::NotInUse(_)
    ));
    assert!(matches!(
        err("+999 1234 5678", None),
        ParseNumberError::UnknownCallingCode
    ));
    let message = err("+44 20 5000 0000", None).to_string();
    assert!(
        message.contains("check") && !message.contains("2000000000"),
        "{message}"
    );
}

#[test]
fn display_serde_and_masked() {
    let number = parse("+44 20 7946 0958", None);
    assert_eq!(number.to_string(), "+442079460958");
    assert_eq!(number.masked(), "+44 20******58");
    assert_eq!(format!("{number:?}"), "E164(+44 20******58)");
    let json = serde_json::to_string(&number).unwrap();
    assert_eq!(json, "\"+442079460958\"");
    assert_eq!(serde_json::from_str::<E164>(&json).unwrap(), number);
    assert!(serde_json::from_str::<E164>("\"442079460958\"").is_err());
    assert_eq!(number.country_code(), 44);
}

#[test]
fn region_codes_are_checked() {
    assert_eq!(region("gb").as_str(), "GB");
    assert_eq!(region("GB").calling_code(), Some(44));
    assert!(Region::parse("XX").is_err());
    assert!(Region::parse("GBR").is_err());
    assert!(Region::parse("001").is_err());
}

proptest! {
    /// Whatever valid number it is, the log form keeps at most four national digits and
    /// never contains the national number or the whole number.
    #[test]
    fn masked_never_contains_the_number(
        (code, national) in prop::sample::select(vec![
            ("44", "20"), ("44", "7400"), ("1", "212"), ("39", "06"), ("49", "30"), ("7", "912"),
            ("61", "2"), ("33", "1"), ("81", "3"), ("870", "77"),
        ]).prop_flat_map(|(code, lead)| (Just(code), "[0-9]{4,8}".prop_map(move |rest| format!("{lead}{rest}"))))
    ) {
        if let Ok(number) = E164::parse(&format!("+{code}{national}"), None) {
            let masked = number.masked();
            prop_assert!(!masked.contains(number.national()));
            prop_assert!(!masked.replace(' ', "").contains(number.digits()));
            let shown = masked.chars().filter(char::is_ascii_digit).count() - number.country_code().to_string().len();
            prop_assert!(shown <= 4 && shown + 4 <= number.national().len().max(4));
        }
    }
}
