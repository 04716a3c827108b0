//! `start`: the quote is checked, the caller authorised, the call placed and its first grant
//! asked for; the grant recorded (or refused) answers the media node.

use super::support::*;

#[test]
fn start_places_the_call_under_the_quoted_tariff_and_asks_for_a_first_grant() {
    given(vec![]).when(start_cmd()).then_expect_events(vec![placed()]);
    let decision = decide(&[], start_cmd()).expect("placed");
    // 60 s of talk at 1,000 micros a second.
    assert_eq!(decision.grant, Some(GrantRequest { amount: usd(60_000) }));
    assert_eq!(decision.reply, Reply::Done);
    assert_eq!(decision.settle, None);
}

#[test]
fn the_recorded_first_grant_answers_start_with_the_ceiling_it_pays_for() {
    given(vec![placed()])
        .when(record(1, 60_000, 1))
        .then_expect_events(vec![granted(1, 60_000, 60_000, 60, None, 1)]);
    let decision = decide(&[placed()], record(1, 60_000, 1)).expect("granted");
    assert_eq!(grant_answer(&decision), answer(0, 60, 60, false, 1));
    assert_eq!(decision.grant, None, "the grant covers the lead");
}

#[test]
fn a_connect_fee_and_minute_billing_shape_the_first_grant_and_ceiling() {
    // 0.06/min billed 60/60 with a 0.05 connect fee: cost(60) = 0.11.
    let t = tariff_with(60_000, 50_000, 60, 60);
    let p = place_with(t, facts(), Limits::default());
    let decision = decide(&[], start(p)).expect("placed");
    assert_eq!(decision.grant, Some(GrantRequest { amount: usd(110_000) }));
    let given_events = vec![placed_with(t, 50_000_000, Limits::default())];
    // 0.15 pays for the first minute and not the second (0.17): the ceiling is 60 s.
    let decision = decide(&given_events, record(1, 150_000, 1)).expect("granted");
    assert_eq!(grant_answer(&decision).granted_seconds, 60);
}

#[test]
fn the_destination_is_kept_sealed_never_in_the_clear() {
    let decision = decide(&[], start_cmd()).expect("placed");
    let json = serde_json::to_string(&decision.events).expect("json");
    assert!(!json.contains(NUMBER), "{json}");
    assert!(!json.contains("2079460958"), "{json}");
    assert!(json.contains(&values::base64_encode(&[0xA5; 40])), "{json}");
    let back: Vec<CallEvent> = serde_json::from_str(&json).expect("round trip");
    assert_eq!(back, decision.events);
    let dialled = DialledNumber::parse(NUMBER).expect("digits");
    assert!(!format!("{dialled:?}").contains("2079460958"));
}

#[test]
fn a_retried_start_gets_the_first_answer_and_changes_nothing() {
    let events = vec![placed(), granted(1, 60_000, 60_000, 60, None, 1)];
    given(events.clone()).when(start_cmd()).then_expect_events(vec![]);
    let decision = decide(&events, start_cmd()).expect("repeat");
    assert_eq!(grant_answer(&decision), answer(0, 60, 60, false, 1));
    assert_eq!(decision.grant, None);
}

#[test]
fn a_retried_start_before_the_first_grant_is_recorded_is_told_to_retry() {
    given(vec![placed()])
        .when(start_cmd())
        .then_expect_error(CallError::GrantPending);
    assert_eq!(CallError::GrantPending.code(), "busy");
}

#[test]
fn a_start_with_another_quote_on_the_same_call_is_refused() {
    let mut p = place_with(tariff(), facts(), Limits::default());
    p.quote.id = QuoteId(uuid::Uuid::from_u128(0xBAD));
    given(vec![placed(), granted(1, 60_000, 60_000, 60, None, 1)])
        .when(start(p))
        .then_expect_error(CallError::StartMismatch);
}

#[test]
fn the_quote_must_be_this_accounts_for_this_number_and_unexpired() {
    let mut p = place_with(tariff(), facts(), Limits::default());
    p.quote.account_id = AccountId(uuid::Uuid::from_u128(0xB0B));
    given(vec![])
        .when(start(p))
        .then_expect_error(CallError::Denied(Denial::QuoteOtherAccount));

    let mut p = place_with(tariff(), facts(), Limits::default());
    p.dialled = DialledNumber::parse("447700900123").expect("digits");
    given(vec![])
        .when(start(p))
        .then_expect_error(CallError::Denied(Denial::QuoteOtherNumber {
            prefix: "4420".into(),
        }));

    let mut p = place_with(tariff(), facts(), Limits::default());
    p.now = at(540);
    let err = decide(&[], start(p)).expect_err("expired");
    assert_eq!(
        err,
        CallError::Denied(Denial::QuoteExpired { expired_at: at(540) })
    );
    assert_eq!(err.code(), "quote_expired");
    assert!(err.to_string().contains("ask for a new quote"), "{err}");
}

#[test]
fn a_caller_who_cannot_pay_the_first_increment_is_denied_and_nothing_is_recorded() {
    let mut caller = facts();
    caller.available = usd(999);
    let err = decide(&[], start(place_with(tariff(), caller, Limits::default()))).expect_err("denied");
    assert_eq!(
        err,
        CallError::Denied(Denial::InsufficientCredit {
            available: usd(999),
            needed: usd(1_000),
        })
    );
    assert_eq!(err.code(), "insufficient_credit");
    let mut caller = facts();
    caller.available = usd(1_000);
    let decision =
        decide(&[], start(place_with(tariff(), caller, Limits::default()))).expect("one second is enough");
    // The request is for the full grant; the api reserves what the account holds.
    assert_eq!(decision.grant, Some(GrantRequest { amount: usd(60_000) }));
}

#[test]
fn the_daily_spend_cap_bounds_the_call_and_its_first_grant_is_then_final() {
    let limits = Limits {
        daily_spend_cap_micros: 100_000,
        ..Limits::default()
    };
    let mut caller = facts();
    caller.spent_today = usd(70_000);
    let decision = decide(&[], start(place_with(tariff(), caller.clone(), limits))).expect("placed");
    assert_eq!(decision.events, vec![placed_with(tariff(), 30_000, limits)]);
    assert_eq!(decision.grant, Some(GrantRequest { amount: usd(30_000) }));
    let events = vec![placed_with(tariff(), 30_000, limits)];
    given(events.clone())
        .when(record(1, 30_000, 1))
        .then_expect_events(vec![granted(
            1,
            30_000,
            30_000,
            30,
            Some(FinalUnitReason::DailySpendCap),
            1,
        )]);
    caller.spent_today = usd(99_500);
    let err = decide(&[], start(place_with(tariff(), caller, limits))).expect_err("cap");
    assert_eq!(
        err,
        CallError::Denied(Denial::DailySpendCap {
            cap: usd(100_000),
            spent: usd(99_500),
        })
    );
}

#[test]
fn a_refused_first_grant_fails_the_call_so_it_never_rings() {
    given(vec![placed()])
        .when(CallCommand::RefuseGrant {
            reason: FinalUnitReason::CreditExhausted,
            now: at(1),
        })
        .then_expect_events(vec![CallEvent::CallFailed {
            seq: None,
            cause: FailCause::NoCredit,
            sip_status: None,
            at: at(1),
        }]);
    let failed = vec![
        placed(),
        CallEvent::CallFailed {
            seq: None,
            cause: FailCause::NoCredit,
            sip_status: None,
            at: at(1),
        },
    ];
    let decision = decide(
        &[placed()],
        CallCommand::RefuseGrant {
            reason: FinalUnitReason::CreditExhausted,
            now: at(1),
        },
    )
    .expect("failed");
    assert_eq!(decision.settle, None, "nothing was reserved");
    given(failed.clone())
        .when(progress(1, Progress::Ringing, 2))
        .then_expect_error(CallError::CallOver("failed"));
    given(failed)
        .when(start_cmd())
        .then_expect_error(CallError::CallOver("failed"));
}

#[test]
fn bad_configuration_is_refused_naming_the_setting() {
    let mut p = place_with(tariff(), facts(), Limits::default());
    p.policy.regrant_lead_seconds = 60;
    given(vec![])
        .when(start(p))
        .then_expect_error(CallError::Limits(LimitsError::LeadNotBelowGrant {
            lead: 60,
            grant: 60,
        }));
    let limits = Limits {
        max_call_seconds: 0,
        ..Limits::default()
    };
    let err = decide(&[], start(place_with(tariff(), facts(), limits))).expect_err("invalid");
    assert!(err.to_string().contains("max_call_seconds"), "{err}");
}

#[test]
fn commands_other_than_start_need_a_placed_call() {
    for command in [
        interim(1, 1_000, 1),
        record(1, 1_000, 1),
        CallCommand::Sweep { now: at(1) },
        CallCommand::RequestHangup {
            reason: HangupReason::Admin,
            now: at(1),
        },
    ] {
        given(vec![])
            .when(command)
            .then_expect_error(CallError::UnknownCall);
    }
}
