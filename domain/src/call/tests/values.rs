//! Value types: base64 of the sealed destination, node ids, masked numbers.

use proptest::prelude::*;

use super::support::*;
use crate::call::values::{base64_decode, base64_encode};

#[test]
fn base64_matches_rfc_4648_vectors_and_refuses_bad_input() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64_encode(plain.as_bytes()), encoded);
        assert_eq!(base64_decode(encoded), Ok(plain.as_bytes().to_vec()));
    }
    for bad in ["Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm 9"] {
        assert!(base64_decode(bad).is_err(), "{bad}");
    }
    let json = r#"{"key_version":1,"ciphertext":"not base64"}"#;
    assert!(serde_json::from_str::<SealedDestination>(json).is_err());
    assert!(SealedDestination::new(1, vec![]).is_err());
}

#[test]
fn node_ids_and_numbers_are_checked_at_the_edge() {
    assert!(NodeId::parse("media-1").is_ok());
    assert!(NodeId::parse("").is_err());
    assert!(NodeId::parse("media 1").is_err());
    assert!(DialledNumber::parse("+44207").is_err());
    assert!(DialledNumber::parse("4420794609581234").is_err(), "16 digits");
    assert_eq!(
        format!("{:?}", DialledNumber::parse(NUMBER).expect("digits")),
        "DialledNumber(+4420…)"
    );
}

proptest! {
    #[test]
    fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        prop_assert_eq!(base64_decode(&base64_encode(&bytes)), Ok(bytes));
    }
}
