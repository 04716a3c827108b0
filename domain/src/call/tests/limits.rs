//! Limits: the defaults, `authorise`'s order, and that every denial names its limit and value.

use super::support::*;
use crate::account::FreezeReason;

fn check(limits: &Limits, facts: &CallerFacts, rate_micros: i64) -> Result<(), Denial> {
    authorise(limits, facts, usd(rate_micros))
}

#[test]
fn the_defaults_are_the_documented_ones_and_valid() {
    let limits = Limits::default();
    assert_eq!(
        (
            limits.max_concurrent_calls,
            limits.daily_spend_cap_micros,
            limits.max_rate_per_minute_micros,
            limits.max_ring_seconds,
            limits.max_call_seconds,
        ),
        (3, 50_000_000, 2_000_000, 60, 14_400)
    );
    let policy = GrantPolicy::default();
    assert_eq!(
        (
            policy.interim_seconds,
            policy.grant_seconds,
            policy.validity_seconds,
            policy.regrant_lead_seconds
        ),
        (6, 60, 30, 12)
    );
    assert_eq!(limits.validate(), Ok(()));
    assert_eq!(policy.validate(), Ok(()));
}

#[test]
fn a_caller_within_every_limit_is_authorised() {
    let mut facts = facts();
    facts.live_calls = 2;
    facts.spent_today = usd(49_999_999);
    assert_eq!(check(&Limits::default(), &facts, 2_000_000), Ok(()));
}

#[test]
fn concurrent_calls_are_limited_and_the_denial_names_the_limit() {
    let mut facts = facts();
    facts.live_calls = 3;
    let denial = check(&Limits::default(), &facts, 60_000).expect_err("limit");
    assert_eq!(denial, Denial::ConcurrentCalls { limit: 3 });
    assert_eq!(denial.code(), "concurrent_calls");
    assert_eq!(denial.limit(), Some(("max_concurrent_calls", 3)));
    assert!(denial.to_string().contains("concurrent_calls = 3"), "{denial}");
    let roomier = Limits {
        max_concurrent_calls: 5,
        ..Limits::default()
    };
    facts.live_calls = 4;
    assert_eq!(check(&roomier, &facts, 60_000), Ok(()));
}

#[test]
fn the_price_per_minute_is_limited() {
    let denial = check(&Limits::default(), &facts(), 2_000_001).expect_err("dear");
    assert_eq!(
        denial,
        Denial::MaxPricePerMinute {
            limit: usd(2_000_000),
            rate: usd(2_000_001),
        }
    );
    assert_eq!(denial.limit(), Some(("max_rate_per_minute_micros", 2_000_000)));
    let text = denial.to_string();
    assert!(
        text.contains("2.000001 USD") && text.contains("max_price_per_minute = 2.000000 USD"),
        "{text}"
    );
}

#[test]
fn the_daily_spend_cap_is_limited() {
    let mut facts = facts();
    facts.spent_today = usd(50_000_000);
    let denial = check(&Limits::default(), &facts, 60_000).expect_err("cap");
    assert_eq!(
        denial,
        Denial::DailySpendCap {
            cap: usd(50_000_000),
            spent: usd(50_000_000),
        }
    );
    assert_eq!(denial.limit(), Some(("daily_spend_cap_micros", 50_000_000)));
    assert!(
        denial.to_string().contains("daily_spend_cap = 50.000000 USD"),
        "{denial}"
    );
}

#[test]
fn account_state_comes_first_then_the_block_list() {
    let mut facts = facts();
    facts.live_calls = 9;
    facts.blocked = Some("this service cannot place emergency calls".into());
    assert_eq!(
        check(&Limits::default(), &facts, 60_000),
        Err(Denial::DestinationBlocked {
            notice: "this service cannot place emergency calls".into()
        })
    );
    facts.standing = Standing::Frozen(vec![FreezeReason::Fraud, FreezeReason::Admin]);
    let denial = check(&Limits::default(), &facts, 60_000).expect_err("frozen");
    assert_eq!(denial.code(), "account_frozen");
    assert!(denial.to_string().contains("(fraud, admin)"), "{denial}");
    facts.standing = Standing::Banned;
    assert_eq!(
        check(&Limits::default(), &facts, 60_000),
        Err(Denial::AccountBanned)
    );
    facts.standing = Standing::NotOpen;
    assert_eq!(
        check(&Limits::default(), &facts, 60_000),
        Err(Denial::AccountNotOpen)
    );
}

#[test]
fn a_quote_in_another_currency_is_refused() {
    let denial = authorise(
        &Limits::default(),
        &facts(),
        Money::from_micros(60_000, Currency::EUR),
    )
    .expect_err("eur");
    assert_eq!(
        denial,
        Denial::QuoteCurrency {
            quote: Currency::EUR,
            account: USD,
        }
    );
}

#[test]
fn start_refuses_through_authorise_and_records_nothing() {
    let mut caller = facts();
    caller.live_calls = 3;
    given(vec![])
        .when(start(place_with(tariff(), caller, Limits::default())))
        .then_expect_error(CallError::Denied(Denial::ConcurrentCalls { limit: 3 }));
    let dear = tariff_with(2_500_000, 0, 1, 1);
    let err = decide(&[], start(place_with(dear, facts(), Limits::default()))).expect_err("dear");
    assert_eq!(err.code(), "max_price_per_minute");
}

#[test]
fn invalid_limits_name_the_setting_and_its_range() {
    let limits = Limits {
        max_ring_seconds: 0,
        ..Limits::default()
    };
    assert_eq!(
        limits.validate(),
        Err(LimitsError::OutOfRange {
            name: "max_ring_seconds",
            value: 0,
            min: 1,
            max: 600,
        })
    );
    let policy = GrantPolicy {
        validity_seconds: 0,
        ..GrantPolicy::default()
    };
    assert!(policy
        .validate()
        .expect_err("zero")
        .to_string()
        .contains("validity_seconds"));
}
