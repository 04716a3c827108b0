//! The signals fold without a database: a call's facts through its life, a flag, an account.

use chrono::{TimeZone, Utc};
use ringledger_domain::account::AccountEvent;
use ringledger_domain::call::{CallEvent, EndCause, GrantPolicy, NodeId, SealedDestination};
use ringledger_domain::fraud::AccountFacts;
use ringledger_domain::{AccountId, BillingPlan, CallId, Currency, DeckId, Money, QuoteId, Tariff};
use uuid::Uuid;

use super::{flag_row, fold_account, fold_call};

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).single().expect("time")
}

fn placed() -> CallEvent {
    CallEvent::CallPlaced {
        call_id: CallId(Uuid::from_u128(1)),
        account_id: AccountId(Uuid::from_u128(2)),
        node_id: NodeId::parse("media-1").expect("node"),
        destination: SealedDestination::new(1, vec![1, 2, 3]).expect("sealed"),
        country_iso: "GB".into(),
        country: "United Kingdom".into(),
        matched_prefix: "4420".into(),
        description: "London".into(),
        tariff: Tariff::new(usd(60_000), BillingPlan::per_second(usd(0))).expect("tariff"),
        deck_id: DeckId(Uuid::from_u128(3)),
        quote_id: QuoteId(Uuid::from_u128(4)),
        max_ring_seconds: 60,
        max_call_seconds: 14_400,
        spend_limit: usd(50_000_000),
        cost_per_minute: None,
        policy: GrantPolicy::default(),
        placed_at: at(0),
    }
}

#[test]
fn a_call_is_folded_from_placement_to_its_end_and_a_flag_names_its_account() {
    let mut facts = None;
    fold_call(&mut facts, &CallEvent::CallAnswered { seq: 1, at: at(3) }, at(3));
    assert_eq!(facts, None, "nothing before CallPlaced");
    fold_call(&mut facts, &placed(), at(0));
    let ended = CallEvent::CallEnded {
        seq: Some(3),
        cause: EndCause::CallerHangup,
        talk_ms: 4_200,
        billed_seconds: 5,
        cost: usd(5_000),
        reserved: usd(60_000),
        charged: usd(5_000),
        overrun: usd(0),
        quality: None,
        at: at(9),
    };
    fold_call(&mut facts, &ended, at(9));
    let f = facts.expect("facts");
    assert_eq!((f.matched_prefix.as_str(), f.rate_micros), ("4420", 60_000));
    assert_eq!(
        (f.answered, f.ended_at, f.billed_seconds, f.cost_micros),
        (true, Some(at(9)), 5, 5_000)
    );
    assert!(f.is_short(10));
    let flagged = CallEvent::CallFlagged {
        rule: "high_risk_range".into(),
        score: 600,
        evidence: "e".into(),
    };
    let flag = flag_row(&f, &flagged, at(10)).expect("flag");
    assert_eq!(
        (flag.account_id, flag.placed_at, flag.score),
        (AccountId(Uuid::from_u128(2)), at(0), 600)
    );
    assert_eq!(flag_row(&f, &ended, at(10)), None);
}

#[test]
fn an_account_keeps_its_opening_time_and_purchases() {
    let mut facts = AccountFacts::default();
    let opened = AccountEvent::AccountOpened {
        account_id: AccountId(Uuid::from_u128(2)),
        currency: Currency::USD,
    };
    fold_account(&mut facts, &opened, at(0));
    assert_eq!(facts.opened_at, Some(at(0)));
    assert_eq!(facts.last_purchase_before(at(100)), None);
}
