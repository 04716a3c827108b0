//! The margin fold without a database: revenue, our cost and margin through a re-rating.

use chrono::{TimeZone, Utc};
use ringledger_domain::call::{CallEvent, EndCause, GrantPolicy, NodeId, SealedDestination};
use ringledger_domain::{AccountId, ActorId, BillingPlan, CallId, Currency, DeckId, Money, QuoteId, Tariff};
use uuid::Uuid;

use super::MarginRow;

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

fn at(s: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_790_000_000 + s, 0).single().expect("time")
}

fn tariff(rate: i64) -> Tariff {
    Tariff::new(usd(rate), BillingPlan::per_second(usd(0))).expect("tariff")
}

fn placed() -> CallEvent {
    CallEvent::CallPlaced {
        call_id: CallId(Uuid::from_u128(1)),
        account_id: AccountId(Uuid::from_u128(2)),
        node_id: NodeId::parse("media-1").expect("node"),
        destination: SealedDestination::new(1, vec![1, 2, 3]).expect("sealed"),
        country_iso: "GB".into(),
        country: "United Kingdom".into(),
        matched_prefix: "4477".into(),
        description: "Mobile".into(),
        tariff: tariff(60_000),
        cost_per_minute: Some(usd(40_000)),
        deck_id: DeckId(Uuid::from_u128(3)),
        quote_id: QuoteId(Uuid::from_u128(4)),
        max_ring_seconds: 60,
        max_call_seconds: 14_400,
        spend_limit: usd(50_000_000),
        policy: GrantPolicy::default(),
        placed_at: at(0),
    }
}

fn ended() -> CallEvent {
    CallEvent::CallEnded {
        seq: Some(3),
        cause: EndCause::CallerHangup,
        talk_ms: 45_500,
        billed_seconds: 46,
        cost: usd(46_000),
        reserved: usd(60_000),
        charged: usd(46_000),
        overrun: usd(0),
        quality: None,
        at: at(60),
    }
}

#[test]
fn an_ended_call_has_revenue_our_cost_and_margin() {
    let mut row = MarginRow::default();
    row.apply(&placed());
    assert_eq!((row.state.as_str(), row.our_cost_micros), ("live", None));
    row.apply(&ended());
    assert_eq!(row.revenue_micros, 46_000);
    // 46 s at 0.04/min = 30,666.67, rounded up by the rating function.
    assert_eq!(row.our_cost_micros, Some(30_667));
    assert_eq!(row.margin_micros, Some(46_000 - 30_667));
}

#[test]
fn a_re_rating_moves_revenue_by_the_refund_and_our_cost_to_the_correction() {
    let mut row = MarginRow::default();
    row.apply(&placed());
    row.apply(&ended());
    row.apply(&CallEvent::CallReRated {
        correction: "rc-1".into(),
        sequence: 1,
        actor: ActorId(Uuid::from_u128(9)),
        tariff: tariff(30_000),
        old_cost: usd(46_000),
        new_cost: usd(23_000),
        old_charged: usd(46_000),
        new_charged: usd(23_000),
        refund: usd(23_000),
        our_rate_per_minute: Some(usd(20_000)),
        old_our_cost: Some(usd(30_667)),
        new_our_cost: Some(usd(15_334)),
        at: at(600),
    });
    assert_eq!(row.revenue_micros, 23_000);
    assert_eq!(row.refunded_micros, 23_000);
    assert_eq!(row.our_cost_micros, Some(15_334));
    assert_eq!(row.margin_micros, Some(23_000 - 15_334));
    assert_eq!(
        (row.corrections, row.last_correction.as_deref()),
        (1, Some("rc-1"))
    );
}
