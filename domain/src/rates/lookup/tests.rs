//! Lookup tests: the prefix table against a naive scan (proptest), its origin fallback rules
//! and build errors; refusals of emergency numbers in many countries, short codes, premium
//! rate, satellite and admin rules, with the exact notice.

use std::sync::Arc;

use proptest::prelude::*;

use super::rules::{EMERGENCY_NOTICE, PREMIUM_NOTICE, SATELLITE_NOTICE, SHORT_CODE_NOTICE};
use super::*;

fn entry(destination: &str, origin: Option<&str>, value: u32) -> PrefixEntry<u32> {
    PrefixEntry {
        destination: destination.into(),
        origin: origin.map(Into::into),
        value,
    }
}

/// The definition: among entries whose destination is a prefix of the number and whose origin
/// is "any" or a prefix of the caller's, the longest destination, then the longest origin.
fn naive(entries: &[PrefixEntry<u32>], destination: &str, origin: Option<&str>) -> Option<(usize, u32)> {
    entries
        .iter()
        .filter(|e| destination.starts_with(&e.destination))
        .filter_map(|e| match (&e.origin, origin) {
            (None, _) => Some((e.destination.len(), 0, e.value)),
            (Some(o), Some(caller)) if caller.starts_with(o.as_str()) => {
                Some((e.destination.len(), o.len(), e.value))
            }
            _ => None,
        })
        .max_by_key(|&(len, origin_len, _)| (len, origin_len))
        .map(|(len, _, value)| (len, value))
}

/// Random decks over a small alphabet so prefixes nest and collide often; duplicates dropped.
fn deck() -> impl Strategy<Value = Vec<PrefixEntry<u32>>> {
    let origin = prop::option::weighted(0.3, "[0-2]{1,3}");
    prop::collection::vec(("[0-2]{1,6}", origin), 0..60).prop_map(|rows| {
        let mut seen = std::collections::HashSet::new();
        let rows = rows.into_iter().filter(|row| seen.insert(row.clone()));
        rows.enumerate()
            .map(|(i, (d, o))| PrefixEntry {
                destination: d,
                origin: o,
                value: i as u32,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn longest_prefix_match_equals_a_naive_scan(
        entries in deck(),
        numbers in prop::collection::vec(("[0-2]{0,9}", prop::option::of("[0-2]{0,4}")), 1..20),
    ) {
        let table = PrefixTable::build(entries.clone()).unwrap();
        prop_assert_eq!(table.len(), entries.len());
        for (number, origin) in &numbers {
            let got = table.lookup(number, origin.as_deref()).map(|m| (m.prefix_len, *m.value));
            prop_assert_eq!(got, naive(&entries, number, origin.as_deref()), "{} from {:?}", number, origin);
        }
    }

    #[test]
    fn full_digit_alphabet_and_long_numbers(
        prefixes in prop::collection::btree_set("[0-9]{1,15}", 0..200),
        numbers in prop::collection::vec("[0-9]{1,15}", 1..50),
    ) {
        let entries: Vec<_> = prefixes.iter().enumerate().map(|(i, p)| entry(p, None, i as u32)).collect();
        let table = PrefixTable::build(entries.clone()).unwrap();
        for number in numbers.iter().chain(&prefixes) {
            let got = table.lookup(number, None).map(|m| (m.prefix_len, *m.value));
            prop_assert_eq!(got, naive(&entries, number, None));
        }
    }
}

#[test]
fn origin_specific_entries_win_then_fall_back() {
    let table = PrefixTable::build(vec![
        entry("44", None, 1),
        entry("447", None, 2),
        entry("4479", Some("1"), 3),
        entry("4479", Some("12"), 4),
        entry("44790", Some("3"), 5),
    ])
    .unwrap();
    let at =
        |number: &str, origin: Option<&str>| table.lookup(number, origin).map(|m| (m.prefix_len, *m.value));
    assert_eq!(
        at("447900123456", Some("1212")),
        Some((4, 4)),
        "longest origin prefix"
    );
    assert_eq!(at("447900123456", Some("1312")), Some((4, 3)));
    assert_eq!(at("447900123456", Some("33")), Some((5, 5)));
    // 4479 and 44790 have only origin-specific entries: other callers fall back to 447.
    assert_eq!(at("447900123456", Some("44")), Some((3, 2)));
    assert_eq!(at("447900123456", None), Some((3, 2)));
    assert_eq!(at("442079460958", None), Some((2, 1)));
    assert_eq!(at("12125550100", None), None);
    let m = table.lookup("447900123456", Some("1212")).unwrap();
    assert_eq!(m.origin_len, Some(2));
}

#[test]
fn build_refuses_bad_rows_with_the_entry_number() {
    let err = |rows| PrefixTable::build(rows).unwrap_err();
    assert_eq!(
        err(vec![entry("44", None, 1), entry("", None, 2)]),
        PrefixTableError::Empty {
            entry: 2,
            which: "destination"
        }
    );
    assert!(matches!(
        err(vec![entry("+44", None, 1)]),
        PrefixTableError::NotDigits { entry: 1, .. }
    ));
    assert!(matches!(
        err(vec![entry("44", Some("1 2"), 1)]),
        PrefixTableError::NotDigits { which: "origin", .. }
    ));
    assert!(matches!(
        err(vec![entry(&"1".repeat(16), None, 1)]),
        PrefixTableError::TooLong { .. }
    ));
    assert!(matches!(
        err(vec![entry("44", None, 1), entry("44", None, 2)]),
        PrefixTableError::Duplicate { .. }
    ));
    let duplicate = err(vec![
        entry("44", Some("1"), 1),
        entry("45", None, 3),
        entry("44", Some("1"), 2),
    ]);
    assert_eq!(
        duplicate.to_string(),
        "destination 44 appears twice for origin 1; keep one of the rows"
    );
}

#[test]
fn table_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PrefixTable<crate::Money>>();
    let table = Arc::new(PrefixTable::build(vec![entry("1", None, 7)]).unwrap());
    let handle = {
        let table = Arc::clone(&table);
        std::thread::spawn(move || table.lookup("1212", None).map(|m| *m.value))
    };
    assert_eq!(handle.join().unwrap(), Some(7));
    assert!(PrefixTable::<u32>::empty().lookup("1", None).is_none());
}

fn region(code: &str) -> Region {
    Region::parse(code).unwrap()
}

/// Emergency numbers of 30+ countries, typed as people do at home, are refused with the
/// notice; so are the universal 112 and 911 from anywhere, and with a country code.
#[test]
fn emergency_numbers_are_refused_with_the_notice() {
    let cases: &[(&str, &str)] = &[
        ("US", "911"),
        ("CA", "911"),
        ("MX", "066"),
        ("GB", "999"),
        ("GB", "112"),
        ("IE", "999"),
        ("FR", "15"),
        ("FR", "17"),
        ("FR", "18"),
        ("DE", "110"),
        ("DE", "112"),
        ("IT", "113"),
        ("IT", "118"),
        ("ES", "061"),
        ("ES", "062"),
        ("ES", "091"),
        ("PT", "112"),
        ("NL", "112"),
        ("BE", "101"),
        ("AT", "133"),
        ("CH", "117"),
        ("SE", "112"),
        ("NO", "113"),
        ("DK", "114"),
        ("FI", "112"),
        ("PL", "997"),
        ("RU", "03"),
        ("RU", "103"),
        ("KZ", "102"),
        ("AU", "000"),
        ("AU", "0 0 0"),
        ("NZ", "111"),
        ("JP", "110"),
        ("JP", "119"),
        ("KR", "119"),
        ("CN", "120"),
        ("IN", "100"),
        ("IN", "101"),
        ("IN", "102"),
        ("BR", "190"),
        ("BR", "192"),
        ("BR", "193"),
        ("AR", "107"),
        ("ZA", "10111"),
        ("IL", "101"),
        ("TR", "155"),
        ("AE", "999"),
        ("SG", "995"),
        ("HK", "999"),
        ("PH", "117"),
        ("JM", "119"),
        ("JP", "911"),
        ("AU", "112"),
        ("GB", "+44 999"),
        ("US", "+1 911"),
        ("GB", "00 33 112"),
        ("US", "011 61 000"),
    ];
    let list = BlockList::default_rules();
    for (user, typed) in cases {
        let refused = list.classify(typed, Some(region(user))).unwrap_err();
        let notice = Blocked {
            kind: BlockKind::Emergency,
            reason: EMERGENCY_NOTICE.into(),
        };
        assert_eq!(refused, DialError::Blocked(notice), "{typed} from {user}");
        assert!(refused
            .to_string()
            .starts_with("this service cannot place emergency calls"));
    }
    for typed in ["112", "911", "000", "+44 999"] {
        assert!(list.check_typed(typed, None).is_some(), "{typed} with no region");
    }
}

#[test]
fn numbers_that_only_look_like_emergency_ones_are_allowed() {
    let list = BlockList::default_rules();
    assert!(list
        .classify("+1 911 555 0100", None)
        .is_err_and(|e| !matches!(e, DialError::Blocked(_))));
    assert_eq!(
        list.classify("020 7946 0958", Some(region("GB")))
            .unwrap()
            .digits(),
        "442079460958"
    );
    assert!(list
        .classify("999 123 4567", Some(region("US")))
        .is_err_and(|e| !matches!(e, DialError::Blocked(_))));
    assert_eq!(
        list.classify("01 42 68 53 00", Some(region("FR")))
            .map(|n| n.region()),
        Ok(Some(region("FR")))
    );
}

#[test]
fn short_codes_premium_and_satellite_have_their_own_notice() {
    let list = BlockList::default_rules();
    let kind = |typed: &str, user: Option<&str>| match list.classify(typed, user.map(region)) {
        Err(DialError::Blocked(b)) => Some((b.kind, b.reason)),
        _ => None,
    };
    assert_eq!(
        kind("118118", Some("GB")),
        Some((BlockKind::ShortCode, SHORT_CODE_NOTICE.into()))
    );
    assert_eq!(
        kind("3311", Some("FR")),
        Some((BlockKind::ShortCode, SHORT_CODE_NOTICE.into()))
    );
    let premium = Some((BlockKind::PremiumRate, PREMIUM_NOTICE.into()));
    assert_eq!(kind("0909 879 0000", Some("GB")), premium);
    assert_eq!(kind("+1 900 555 0100", None), premium);
    assert_eq!(kind("0900 1234567", Some("DE")), premium);
    assert_eq!(
        kind("+870 773 111 632", None),
        Some((BlockKind::Satellite, SATELLITE_NOTICE.into()))
    );
    assert_eq!(
        kind("+882 3421 2345", None).map(|k| k.0),
        Some(BlockKind::Satellite)
    );
}

#[test]
fn admin_rules_block_countries_and_prefixes_with_their_reason() {
    let list = BlockList::default_rules()
        .with_admin_rules(vec![
            AdminBlock {
                target: AdminTarget::Country(region("JM")),
                reason: "fraud wave to JM".into(),
            },
            AdminBlock {
                target: AdminTarget::Prefix("4420794".into()),
                reason: String::new(),
            },
        ])
        .unwrap();
    let reason = |typed: &str| match list.classify(typed, None) {
        Err(DialError::Blocked(Blocked {
            kind: BlockKind::Admin,
            reason,
        })) => Some(reason),
        _ => None,
    };
    assert_eq!(reason("+1 876 523 0123").as_deref(), Some("fraud wave to JM"));
    assert!(reason("+44 20 7946 0958").is_some_and(|r| r.contains("not allowed")));
    assert_eq!(reason("+1 212 555 0100"), None);
    assert!(list.classify("+1 212 555 0100", None).is_ok());
    let bad = AdminBlock {
        target: AdminTarget::Prefix("+44".into()),
        reason: "x".into(),
    };
    assert!(BlockList::default_rules().with_admin_rules(vec![bad]).is_err());
    let json = r#"{"target":{"kind":"country","value":"JM"},"reason":"r"}"#;
    assert_eq!(
        serde_json::from_str::<AdminBlock>(json).unwrap().target,
        AdminTarget::Country(region("JM"))
    );
}

#[test]
fn default_lists_cover_at_least_twenty_countries_and_all_parse() {
    assert!(super::rules::EMERGENCY.len() >= 20);
    for (code, numbers) in super::rules::EMERGENCY {
        assert!(Region::parse(code).is_ok(), "{code}");
        assert!(numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
    }
    for (prefix, _) in super::rules::PREMIUM_PREFIXES {
        assert!(crate::e164::split_calling_code(prefix).is_some(), "{prefix}");
    }
}
