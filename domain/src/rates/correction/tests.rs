use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;

use super::*;
use crate::ids::ActorId;
use crate::money::{Currency, Money};

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

fn pair(cost: i64, selling: i64) -> RatePair {
    RatePair {
        cost_per_minute: usd(cost),
        selling_per_minute: usd(selling),
    }
}

fn command() -> CorrectRates {
    CorrectRates {
        prefix: "4477".into(),
        deck_id: None,
        old: pair(40_000, 57_000),
        new: pair(20_000, 30_000),
        effective_from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        effective_to: Some(Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap()),
        reason: "provider corrected their deck".into(),
        actor: ActorId(uuid::Uuid::from_u128(7)),
    }
}

fn event(number: u64) -> CorrectionEvent {
    let c = command();
    CorrectionEvent::RatesCorrected(RatesCorrected {
        number,
        prefix: c.prefix,
        deck_id: None,
        old: c.old,
        new: c.new,
        effective_from: c.effective_from,
        effective_to: c.effective_to,
        reason: c.reason,
        actor: c.actor,
    })
}

#[test]
fn corrections_are_numbered_in_stream_order() {
    TestFramework::<RateCorrections>::with(())
        .given_no_previous_events()
        .when(command())
        .then_expect_events(vec![event(1)]);
    TestFramework::<RateCorrections>::with(())
        .given(vec![event(1), event(2)])
        .when(command())
        .then_expect_events(vec![event(3)]);
    assert_eq!(CorrectionId(3).to_string(), "rc-3");
    assert_eq!(CorrectionId::parse("rc-3"), Ok(CorrectionId(3)));
    assert_eq!(CorrectionId::parse("3"), Ok(CorrectionId(3)));
    assert!(CorrectionId::parse("rc-0").is_err());
    assert!(CorrectionId::parse("x").is_err());
}

#[test]
fn bad_corrections_are_refused_with_what_to_do() {
    let refuse = |c: CorrectRates, expected: CorrectionError| {
        assert_eq!(RateCorrections::default().decide(&c), Err(expected));
    };
    refuse(
        CorrectRates {
            prefix: "+44".into(),
            ..command()
        },
        CorrectionError::BadPrefix("+44".into()),
    );
    refuse(
        CorrectRates {
            new: pair(-1, 30_000),
            ..command()
        },
        CorrectionError::BadRate {
            what: "the new cost",
            amount: usd(-1),
        },
    );
    let eur = Money::from_micros(30_000, Currency::EUR);
    refuse(
        CorrectRates {
            new: RatePair {
                cost_per_minute: usd(1),
                selling_per_minute: eur,
            },
            ..command()
        },
        CorrectionError::MixedCurrency {
            expected: Currency::USD,
            got: Currency::EUR,
        },
    );
    let c = command();
    refuse(
        CorrectRates {
            effective_to: Some(c.effective_from),
            ..command()
        },
        CorrectionError::EmptyRange {
            from: c.effective_from,
            to: c.effective_from,
        },
    );
    refuse(
        CorrectRates {
            reason: "  ".into(),
            ..command()
        },
        CorrectionError::BadReason,
    );
    refuse(
        CorrectRates {
            new: c.old,
            ..command()
        },
        CorrectionError::Unchanged,
    );
}

#[test]
fn the_range_is_half_open_and_may_stay_open() {
    let CorrectionEvent::RatesCorrected(c) = event(1);
    assert!(c.covers(c.effective_from));
    assert!(!c.covers(c.effective_to.unwrap()));
    assert!(!c.covers(c.effective_from - chrono::Duration::seconds(1)));
    let open = RatesCorrected {
        effective_to: None,
        ..c
    };
    assert!(open.covers(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()));
}
