//! Builders for the Call tests: fixed ids and times, a tariff whose costs are easy to work out
//! by hand (0.06 USD per minute billed per second: 1,000 micros a second, no connect fee), the
//! start command, and the events a normal call produces.

pub(super) use chrono::{DateTime, Duration, TimeZone, Utc};
pub(super) use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

pub(super) use crate::call::*;
pub(super) use crate::ids::{AccountId, CallId, DeckId, QuoteId, ReservationId};
pub(super) use crate::money::{Currency, Money};
use crate::rates::pricing::{PriceSource, SellingPrice};
use crate::rates::quote::{Destination, Quote};
pub(super) use crate::rating::{BillingPlan, Tariff};

pub(super) const USD: Currency = Currency::USD;
/// The dialled number in the tests (a London number under the quoted prefix 4420).
pub(super) const NUMBER: &str = "442079460958";

pub(super) fn usd(micros: i64) -> Money {
    Money::from_micros(micros, USD)
}

pub(super) fn call_id() -> CallId {
    CallId(Uuid::from_u128(0xCA11))
}

pub(super) fn account() -> AccountId {
    AccountId(Uuid::from_u128(0xACC0))
}

pub(super) fn quote_id() -> QuoteId {
    QuoteId(Uuid::from_u128(0x0007E))
}

pub(super) fn deck() -> DeckId {
    DeckId(Uuid::from_u128(0xDEC))
}

pub(super) fn res(n: u128) -> ReservationId {
    ReservationId(Uuid::from_u128(0x5E5_0000 + n))
}

pub(super) fn node() -> NodeId {
    NodeId::parse("media-1").expect("valid node id")
}

/// `s` seconds after the test's epoch, 2026-11-25 12:00:00 UTC.
pub(super) fn at(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .expect("valid time")
        + Duration::seconds(s)
}

/// 0.06 USD a minute, per second, no connect fee: `cost(t) = 1,000 × t` micros.
pub(super) fn tariff() -> Tariff {
    tariff_with(60_000, 0, 1, 1)
}

pub(super) fn tariff_with(rate: i64, fee: i64, first: u32, next: u32) -> Tariff {
    let plan = BillingPlan::new(usd(fee), first, next).expect("valid plan");
    Tariff::new(usd(rate), plan).expect("valid tariff")
}

pub(super) fn sealed() -> SealedDestination {
    SealedDestination::new(1, vec![0xA5; 40]).expect("sealed")
}

pub(super) fn quote(tariff: Tariff) -> Quote {
    Quote {
        id: quote_id(),
        account_id: account(),
        destination: Destination {
            iso: "GB".into(),
            country: "United Kingdom".into(),
            description: "London".into(),
            prefix: "4420".into(),
            deck_id: deck(),
        },
        price: SellingPrice {
            selling: tariff,
            cost_per_minute: usd(40_000),
            margin_per_minute: tariff.rate_per_minute.checked_sub(usd(40_000)).expect("margin"),
            source: PriceSource::Default,
        },
        available: usd(10_000_000),
        max_seconds: 3_600,
        issued_at: at(-60),
        expires_at: at(540),
    }
}

pub(super) fn facts() -> CallerFacts {
    CallerFacts {
        standing: Standing::Open,
        currency: USD,
        available: usd(10_000_000),
        live_calls: 0,
        spent_today: usd(0),
        blocked: None,
    }
}

pub(super) fn place_with(tariff: Tariff, caller: CallerFacts, limits: Limits) -> PlaceCall {
    PlaceCall {
        call_id: call_id(),
        account_id: account(),
        node_id: node(),
        dialled: DialledNumber::parse(NUMBER).expect("digits"),
        sealed: sealed(),
        quote: quote(tariff),
        caller,
        limits,
        policy: GrantPolicy::default(),
        now: at(0),
    }
}

pub(super) fn start(p: PlaceCall) -> CallCommand {
    CallCommand::PlaceCall(Box::new(p))
}

pub(super) fn start_cmd() -> CallCommand {
    start(place_with(tariff(), facts(), Limits::default()))
}

pub(super) fn placed_with(tariff: Tariff, spend_limit: i64, limits: Limits) -> CallEvent {
    CallEvent::CallPlaced {
        call_id: call_id(),
        account_id: account(),
        node_id: node(),
        destination: sealed(),
        country_iso: "GB".into(),
        country: "United Kingdom".into(),
        matched_prefix: "4420".into(),
        description: "London".into(),
        tariff,
        cost_per_minute: Some(usd(40_000)),
        deck_id: deck(),
        quote_id: quote_id(),
        max_ring_seconds: limits.max_ring_seconds,
        max_call_seconds: limits.max_call_seconds,
        spend_limit: usd(spend_limit),
        policy: GrantPolicy::default(),
        placed_at: at(0),
    }
}

pub(super) fn placed() -> CallEvent {
    placed_with(tariff(), 50_000_000, Limits::default())
}

pub(super) fn granted(
    n: u128,
    amount: i64,
    reserved: i64,
    granted_seconds: u64,
    final_unit: Option<FinalUnitReason>,
    s: i64,
) -> CallEvent {
    CallEvent::CallGranted {
        reservation_id: res(n),
        amount: usd(amount),
        reserved: usd(reserved),
        granted_seconds,
        final_unit,
        at: at(s),
    }
}

pub(super) fn ticked(seq: u64, talk_ms: u64, billed: u64, cost: i64, s: i64) -> CallEvent {
    CallEvent::CallTicked {
        seq,
        talk_ms,
        billed_seconds: billed,
        cost: usd(cost),
        at: at(s),
    }
}

/// Placed, first grant of 60 s (60,000 micros) recorded at 1 s, ringing (seq 1) at 2 s,
/// answered (seq 2) at 10 s.
pub(super) fn answered_call() -> Vec<CallEvent> {
    vec![
        placed(),
        granted(1, 60_000, 60_000, 60, None, 1),
        CallEvent::CallRinging { seq: 1, at: at(2) },
        CallEvent::CallAnswered { seq: 2, at: at(10) },
    ]
}

pub(super) fn with(mut events: Vec<CallEvent>, more: Vec<CallEvent>) -> Vec<CallEvent> {
    events.extend(more);
    events
}

pub(super) fn interim(seq: u64, talk_ms: u64, s: i64) -> CallCommand {
    CallCommand::ReportInterim {
        seq,
        talk_ms,
        now: at(s),
    }
}

pub(super) fn progress(seq: u64, progress: Progress, s: i64) -> CallCommand {
    CallCommand::ReportProgress {
        seq,
        progress,
        now: at(s),
    }
}

pub(super) fn stop(seq: u64, talk_ms: u64, cause: EndCause, s: i64) -> CallCommand {
    CallCommand::ReportStop {
        seq,
        talk_ms,
        cause,
        quality: None,
        now: at(s),
    }
}

pub(super) fn record(n: u128, amount: i64, s: i64) -> CallCommand {
    CallCommand::RecordGrant {
        reservation_id: res(n),
        amount: usd(amount),
        now: at(s),
    }
}

/// The given/when/then harness of cqrs-es.
pub(super) fn given(events: Vec<CallEvent>) -> AggregateTestExecutor<Call> {
    TestFramework::<Call>::with(()).given(events)
}

pub(super) fn state_after(events: &[CallEvent]) -> Call {
    let mut call = Call::default();
    for event in events {
        call.fold(event);
    }
    call
}

/// The whole decision (events, reply, grant, settle) for checks the harness cannot make.
pub(super) fn decide(events: &[CallEvent], command: CallCommand) -> Result<Decision, CallError> {
    state_after(events).decide(&command)
}

/// The grant answer a decision carries; panics on any other reply.
pub(super) fn grant_answer(decision: &Decision) -> GrantAnswer {
    match &decision.reply {
        Reply::Grant(answer) => answer.clone(),
        other => panic!("expected a grant answer, got {other:?}"),
    }
}

pub(super) fn answer(seq: u64, granted: u64, left: u64, final_unit: bool, s: i64) -> GrantAnswer {
    GrantAnswer {
        seq,
        granted_seconds: granted,
        seconds_left: left,
        final_unit,
        valid_until: at(s + 30),
        validity_seconds: 30,
        hangup: None,
    }
}
