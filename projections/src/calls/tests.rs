//! The call log's fold without a database: a call's life, and no number in the row.

use chrono::{TimeZone, Utc};
use ringledger_domain::call::{CallEvent, EndCause, GrantPolicy, NodeId, SealedDestination};
use ringledger_domain::{
    AccountId, BillingPlan, CallId, Currency, DeckId, Money, QuoteId, ReservationId, Tariff,
};
use uuid::Uuid;

use super::CallLogRow;

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

#[test]
fn a_call_is_live_until_it_ends_and_the_log_keeps_what_it_cost() {
    let mut row = CallLogRow::default();
    row.apply(&placed(), at(0));
    assert!(row.is_live());
    assert_eq!(
        (row.state.as_str(), row.matched_prefix.as_str()),
        ("placed", "4420")
    );
    let granted = CallEvent::CallGranted {
        reservation_id: ReservationId(Uuid::from_u128(5)),
        amount: usd(60_000),
        reserved: usd(60_000),
        granted_seconds: 60,
        final_unit: None,
        at: at(0),
    };
    row.apply(&granted, at(0));
    row.apply(&CallEvent::CallRinging { seq: 1, at: at(1) }, at(1));
    row.apply(&CallEvent::CallAnswered { seq: 2, at: at(5) }, at(5));
    assert_eq!((row.state.as_str(), row.answered_at), ("answered", Some(at(5))));
    // A late ringing does not undo the answer.
    row.apply(&CallEvent::CallRinging { seq: 3, at: at(6) }, at(6));
    assert_eq!(row.state, "answered");
    let ended = CallEvent::CallEnded {
        seq: Some(4),
        cause: EndCause::CallerHangup,
        talk_ms: 30_500,
        billed_seconds: 31,
        cost: usd(31_000),
        reserved: usd(60_000),
        charged: usd(31_000),
        overrun: usd(0),
        quality: None,
        at: at(36),
    };
    row.apply(&ended, at(36));
    assert!(!row.is_live());
    assert_eq!(
        (row.billed_seconds, row.cost_micros, row.charged_micros),
        (31, 31_000, 31_000)
    );
    assert_eq!(row.cause.as_deref(), Some("caller_hangup"));
    assert_eq!((row.granted_seconds, row.reserved_micros), (60, 60_000));
}

#[test]
fn freezes_of_any_reason_and_bans_trigger_hangups_and_nothing_else_does() {
    use ringledger_domain::account::{AccountEvent, FreezeReason};
    use ringledger_domain::ActorId;

    use super::hangups::trigger;
    let frozen = |reason| AccountEvent::AccountFrozen {
        reason,
        actor: None,
        note: String::new(),
    };
    assert_eq!(
        trigger(&frozen(FreezeReason::Fraud)).as_deref(),
        Some("frozen:fraud")
    );
    assert_eq!(
        trigger(&frozen(FreezeReason::Dispute)).as_deref(),
        Some("frozen:dispute")
    );
    assert_eq!(
        trigger(&frozen(FreezeReason::Admin)).as_deref(),
        Some("frozen:admin")
    );
    assert_eq!(
        trigger(&frozen(FreezeReason::Receivable)).as_deref(),
        Some("frozen:receivable")
    );
    let banned = AccountEvent::AccountBanned {
        actor: ActorId(uuid::Uuid::from_u128(1)),
        reason: "abuse".into(),
    };
    assert_eq!(trigger(&banned).as_deref(), Some("banned"));
    let unfrozen = AccountEvent::AccountUnfrozen {
        reason: FreezeReason::Fraud,
        actor: None,
        note: String::new(),
    };
    assert_eq!(trigger(&unfrozen), None);
}
