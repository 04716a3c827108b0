//! Each rule fires on its pattern and stays silent on a normal history.

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::ids::{AccountId, CallId};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("time")
}

const ACCOUNT: AccountId = AccountId(Uuid::from_u128(1));

fn call(n: u128, minute: i64, prefix: &str, billed: i64) -> CallFacts {
    let placed_at = t0() + Duration::minutes(minute);
    CallFacts {
        call_id: CallId(Uuid::from_u128(100 + n)),
        account_id: ACCOUNT,
        placed_at,
        matched_prefix: prefix.into(),
        country_iso: "GB".into(),
        currency: "USD".into(),
        rate_micros: 57_000,
        answered: true,
        ended_at: Some(placed_at + Duration::seconds(billed + 5)),
        billed_seconds: billed,
        cost_micros: 57_000 * billed / 60,
    }
}

/// An account a year old with one purchase a month ago, calling three numbers in one range for
/// a few minutes each, twice a day for a week.
fn normal_history() -> (AccountFacts, Vec<CallFacts>) {
    let account = AccountFacts {
        opened_at: Some(t0() - Duration::days(365)),
        purchases: vec![Purchase {
            at: t0() - Duration::days(30),
            paid_micros: 20_000_000,
        }],
    };
    let calls = (0..14)
        .map(|i| {
            call(
                i,
                i64::try_from(i).unwrap_or(0) * 12 * 60,
                "4477",
                180 + 10 * i64::try_from(i).unwrap_or(0),
            )
        })
        .collect();
    (account, calls)
}

fn ranges() -> RiskRanges {
    RiskRanges::new(vec![
        RiskRange::parse("+881", "GMSS satellite (ITU-T E.164)").expect("range"),
        RiskRange::parse("449", "UK premium rate 09 (Ofcom)").expect("range"),
    ])
    .expect("ranges")
}

fn rules_hit(call: &CallFacts, account: &AccountFacts, calls: &[CallFacts]) -> Vec<Rule> {
    evaluate(call, account, calls, &ranges(), &Thresholds::default())
        .into_iter()
        .map(|h| h.rule)
        .collect()
}

#[test]
fn a_normal_history_fires_nothing() {
    let (account, calls) = normal_history();
    for c in &calls {
        assert_eq!(rules_hit(c, &account, &calls), vec![], "{c:?}");
    }
}

#[test]
fn a_burst_of_short_calls_fires_from_the_fifth() {
    let (account, _) = normal_history();
    let calls: Vec<CallFacts> = (0..6)
        .map(|i| call(i, i64::try_from(i).unwrap_or(0), "4477", 3))
        .collect();
    let hits: Vec<Vec<Rule>> = calls.iter().map(|c| rules_hit(c, &account, &calls)).collect();
    assert_eq!(hits[3], vec![]);
    assert_eq!(hits[4], vec![Rule::ShortCallBurst]);
    assert_eq!(hits[5], vec![Rule::ShortCallBurst]);
    let hit = &evaluate(&calls[4], &account, &calls, &ranges(), &Thresholds::default())[0];
    assert_eq!(hit.score, 300);
    assert!(
        hit.evidence.starts_with("5 answered calls of at most 10 s"),
        "{}",
        hit.evidence
    );
    // Long calls at the same pace are not a burst; nor is a live call.
    let long: Vec<CallFacts> = (0..6)
        .map(|i| call(i, i64::try_from(i).unwrap_or(0), "4477", 120))
        .collect();
    assert_eq!(rules_hit(&long[5], &account, &long), vec![]);
    let mut live = calls[5].clone();
    live.ended_at = None;
    assert_eq!(rules_hit(&live, &account, &calls), vec![]);
}

#[test]
fn many_distinct_destinations_fire_at_the_threshold() {
    let (account, _) = normal_history();
    let calls: Vec<CallFacts> = (0..8)
        .map(|i| call(i, 5 * i64::try_from(i).unwrap_or(0), &format!("3361{i}"), 60))
        .collect();
    assert_eq!(rules_hit(&calls[6], &account, &calls), vec![]);
    assert_eq!(
        rules_hit(&calls[7], &account, &calls),
        vec![Rule::ManyDestinations]
    );
    let hit = &evaluate(&calls[7], &account, &calls, &ranges(), &Thresholds::default())[0];
    assert!(hit.evidence.contains("33610, 33611"), "{}", hit.evidence);
    // The same eight spread over a day are not.
    let spread: Vec<CallFacts> = (0..8)
        .map(|i| call(i, 120 * i64::try_from(i).unwrap_or(0), &format!("3361{i}"), 60))
        .collect();
    assert_eq!(rules_hit(&spread[7], &account, &spread), vec![]);
}

#[test]
fn a_new_account_calling_a_high_cost_destination_fires() {
    let account = AccountFacts {
        opened_at: Some(t0() - Duration::hours(2)),
        purchases: vec![],
    };
    let mut c = call(1, 0, "8816", 30);
    c.rate_micros = 2_500_000;
    let hits = evaluate(&c, &account, &[], &RiskRanges::default(), &Thresholds::default());
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].rule, Rule::NewAccountHighCost);
    assert!(
        hits[0].evidence.contains("2.500000 USD a minute"),
        "{}",
        hits[0].evidence
    );
    // Old account, same call: nothing. New account, cheap call: nothing.
    let (old, _) = normal_history();
    assert!(evaluate(&c, &old, &[], &RiskRanges::default(), &Thresholds::default()).is_empty());
    let cheap = call(2, 0, "4477", 30);
    assert!(evaluate(
        &cheap,
        &account,
        &[],
        &RiskRanges::default(),
        &Thresholds::default()
    )
    .is_empty());
}

#[test]
fn an_expensive_call_right_after_a_purchase_fires() {
    let (mut account, _) = normal_history();
    account.purchases.push(Purchase {
        at: t0() - Duration::minutes(10),
        paid_micros: 50_000_000,
    });
    let mut c = call(1, 0, "4477", 3_600);
    c.cost_micros = 6_000_000;
    assert_eq!(rules_hit(&c, &account, &[]), vec![Rule::SpendAfterPurchase]);
    // The same call two hours after the purchase, or a cheap call right after it: nothing.
    let mut later = c.clone();
    later.placed_at = t0() + Duration::hours(2);
    assert_eq!(rules_hit(&later, &account, &[]), vec![]);
    let cheap = call(2, 0, "4477", 60);
    assert_eq!(rules_hit(&cheap, &account, &[]), vec![]);
}

#[test]
fn a_call_into_a_high_risk_range_fires_with_the_range_named() {
    let (account, _) = normal_history();
    let c = call(1, 0, "4490", 60);
    let hits = evaluate(&c, &account, &[], &ranges(), &Thresholds::default());
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].rule, Rule::HighRiskRange);
    assert_eq!(hits[0].score, 600);
    assert!(
        hits[0].evidence.contains("+449: UK premium rate 09 (Ofcom)"),
        "{}",
        hits[0].evidence
    );
    // 44 (all of the UK) is not inside 449.
    assert_eq!(rules_hit(&call(2, 0, "44", 60), &account, &[]), vec![]);
}

#[test]
fn the_account_score_is_the_heaviest_window() {
    let t = Thresholds::default();
    let flags = [
        (t0() - Duration::hours(30), 600),
        (t0() - Duration::hours(2), 300),
        (t0(), 400),
        (t0() + Duration::hours(23), 500),
    ];
    // 300 + 400 + 500 lie within 25 h: too wide; 400 + 500 (23 h) and 600 alone are not.
    assert_eq!(account_score(&t, flags), 900);
    assert_eq!(
        account_score(&t, flags.into_iter().rev()),
        900,
        "order does not matter"
    );
    let wide = Thresholds {
        score_window_hours: 26,
        ..t
    };
    assert_eq!(account_score(&wide, flags), 1_200);
    assert_eq!(account_score(&t, []), 0);
}

#[test]
fn ranges_and_thresholds_are_checked() {
    assert!(RiskRange::parse("+44 9", "x").is_ok());
    assert!(RiskRange::parse("44a", "x").is_err());
    assert!(RiskRange::parse("", "x").is_err());
    assert!(RiskRange::parse("449", " ").is_err());
    assert!(Thresholds::default().validate().is_ok());
    let bad = Thresholds {
        burst_min_calls: 1,
        ..Thresholds::default()
    };
    assert_eq!(bad.validate().map_err(|e| e.name), Err("burst_min_calls"));
}

#[test]
fn a_call_is_judged_by_the_list_as_it_stood_when_placed() {
    let range = RiskRange::parse("4477", "test").expect("range");
    let change = |minute: i64, added: bool| RangeChange {
        at: t0() + Duration::minutes(minute),
        added,
        range: range.clone(),
    };
    let history = RangeHistory::new(vec![change(30, false), change(10, true)]);
    let (account, _) = normal_history();
    let t = Thresholds::default();
    let judged = |minute: i64| {
        let c = call(1, minute, "4477", 60);
        let ranges = history.as_of(c.placed_at).expect("ranges");
        evaluate(&c, &account, &[], &ranges, &t).len()
    };
    assert_eq!(
        (judged(5), judged(10), judged(20), judged(30), judged(40)),
        (0, 1, 1, 0, 0)
    );
}
