//! Grants of a live call: the re-grant rule's boundary, full, partial and refused grants
//! (final unit with the seconds left), the maximum duration, and hangups.

use super::support::*;

/// Answered, with a tick at 49 s (seq 3, at 58 s): the grant is low.
fn low_call() -> Vec<CallEvent> {
    with(answered_call(), vec![ticked(3, 48_001, 49, 49_000, 58)])
}

#[test]
fn a_re_grant_is_asked_for_exactly_when_the_money_left_would_not_pay_the_lead() {
    // 60,000 reserved pays 60 s. At 48 s the next 12 s cost 60,000: enough.
    let decision = decide(&answered_call(), interim(3, 48_000, 57)).expect("ticked");
    assert_eq!(decision.grant, None);
    // At 49 s they cost 61,000: ask for the ceiling plus 60 s, 120 s, less what is held.
    let decision = decide(&answered_call(), interim(3, 48_001, 58)).expect("ticked");
    assert_eq!(decision.events, vec![ticked(3, 48_001, 49, 49_000, 58)]);
    assert_eq!(decision.grant, Some(GrantRequest { amount: usd(60_000) }));
    assert_eq!(grant_answer(&decision), answer(3, 60, 11, false, 58));
}

#[test]
fn a_full_re_grant_raises_the_ceiling_and_answers_the_report() {
    given(low_call())
        .when(record(2, 60_000, 58))
        .then_expect_events(vec![granted(2, 60_000, 120_000, 120, None, 58)]);
    let decision = decide(&low_call(), record(2, 60_000, 58)).expect("granted");
    assert_eq!(grant_answer(&decision), answer(3, 120, 71, false, 58));
    assert_eq!(decision.grant, None);
}

#[test]
fn a_partial_grant_is_final_with_the_seconds_left() {
    given(low_call())
        .when(record(2, 20_000, 58))
        .then_expect_events(vec![granted(
            2,
            20_000,
            80_000,
            80,
            Some(FinalUnitReason::CreditExhausted),
            58,
        )]);
    let decision = decide(&low_call(), record(2, 20_000, 58)).expect("granted");
    assert_eq!(grant_answer(&decision), answer(3, 80, 31, true, 58));
}

#[test]
fn a_refused_re_grant_makes_the_current_grant_final() {
    let refuse = CallCommand::RefuseGrant {
        reason: FinalUnitReason::CreditExhausted,
        now: at(58),
    };
    let final_unit = CallEvent::CallFinalUnit {
        reason: FinalUnitReason::CreditExhausted,
        granted_seconds: 60,
        at: at(58),
    };
    given(low_call())
        .when(refuse.clone())
        .then_expect_events(vec![final_unit.clone()]);
    let decision = decide(&low_call(), refuse.clone()).expect("final");
    assert_eq!(grant_answer(&decision), answer(3, 60, 11, true, 58));
    let events = with(low_call(), vec![final_unit]);
    given(events.clone()).when(refuse).then_expect_events(vec![]);
    // No more grants are asked for; talk reaching the ceiling asks the node to hang up.
    let decision = decide(&events, interim(4, 55_000, 64)).expect("ticked");
    assert_eq!(decision.grant, None);
    assert_eq!(decision.hangup(), None);
    let decision = decide(&events, interim(4, 60_000, 69)).expect("ticked");
    assert_eq!(
        decision.events,
        vec![
            ticked(4, 60_000, 60, 60_000, 69),
            CallEvent::CallHangupRequested {
                reason: HangupReason::FinalUnit,
                at: at(69),
            },
        ]
    );
    assert_eq!(decision.hangup(), Some(HangupReason::FinalUnit));
    let answer = grant_answer(&decision);
    assert_eq!(
        (answer.seconds_left, answer.final_unit, answer.hangup),
        (0, true, Some(HangupReason::FinalUnit))
    );
}

#[test]
fn a_retried_record_grant_changes_nothing() {
    let events = with(low_call(), vec![granted(2, 60_000, 120_000, 120, None, 58)]);
    given(events.clone())
        .when(record(2, 60_000, 59))
        .then_expect_events(vec![]);
    let decision = decide(&events, record(2, 60_000, 59)).expect("repeat");
    assert_eq!(grant_answer(&decision), answer(3, 120, 71, false, 58));
}

#[test]
fn a_grant_for_an_ended_call_is_refused_so_the_api_releases_it() {
    let events = with(
        low_call(),
        vec![CallEvent::CallEnded {
            seq: Some(4),
            cause: EndCause::CalleeHangup,
            talk_ms: 50_000,
            billed_seconds: 50,
            cost: usd(50_000),
            reserved: usd(60_000),
            charged: usd(50_000),
            overrun: usd(0),
            quality: None,
            at: at(59),
        }],
    );
    given(events)
        .when(record(2, 60_000, 60))
        .then_expect_error(CallError::CallOver("ended"));
}

#[test]
fn a_grant_must_be_positive_and_in_the_calls_currency() {
    given(low_call())
        .when(record(2, 0, 58))
        .then_expect_error(CallError::AmountMustBePositive(usd(0)));
    given(low_call())
        .when(CallCommand::RecordGrant {
            reservation_id: res(2),
            amount: Money::from_micros(1_000, Currency::EUR),
            now: at(58),
        })
        .then_expect_error(CallError::WrongCurrency {
            expected: USD,
            got: Currency::EUR,
        });
}

#[test]
fn the_maximum_duration_caps_the_ceiling_makes_it_final_and_hangs_up_at_it() {
    let limits = Limits {
        max_call_seconds: 100,
        ..Limits::default()
    };
    let events = vec![
        placed_with(tariff(), 50_000_000, limits),
        granted(1, 60_000, 60_000, 60, None, 1),
        CallEvent::CallAnswered { seq: 1, at: at(2) },
        ticked(2, 49_000, 49, 49_000, 51),
    ];
    // Asks only up to 100 s: 100,000 less the 60,000 held.
    let decision = decide(&events[..3], interim(2, 49_000, 51)).expect("ticked");
    assert_eq!(decision.grant, Some(GrantRequest { amount: usd(40_000) }));
    given(events.clone())
        .when(record(2, 40_000, 51))
        .then_expect_events(vec![granted(
            2,
            40_000,
            100_000,
            100,
            Some(FinalUnitReason::MaxDuration),
            51,
        )]);
    let events = with(
        events,
        vec![granted(
            2,
            40_000,
            100_000,
            100,
            Some(FinalUnitReason::MaxDuration),
            51,
        )],
    );
    let decision = decide(&events, interim(3, 100_000, 102)).expect("ticked");
    assert_eq!(decision.hangup(), Some(HangupReason::MaxDuration));
}

#[test]
fn a_first_grant_that_uses_the_whole_daily_room_is_final() {
    let events = vec![placed_with(tariff(), 60_000, Limits::default())];
    given(events)
        .when(record(1, 60_000, 1))
        .then_expect_events(vec![granted(
            1,
            60_000,
            60_000,
            60,
            Some(FinalUnitReason::DailySpendCap),
            1,
        )]);
}

#[test]
fn a_hangup_request_is_recorded_once_and_stops_further_grants() {
    let request = CallCommand::RequestHangup {
        reason: HangupReason::AccountFrozen,
        now: at(20),
    };
    let requested = CallEvent::CallHangupRequested {
        reason: HangupReason::AccountFrozen,
        at: at(20),
    };
    given(answered_call())
        .when(request.clone())
        .then_expect_events(vec![requested.clone()]);
    let decision = decide(&answered_call(), request.clone()).expect("requested");
    assert_eq!(decision.hangup(), Some(HangupReason::AccountFrozen));
    let events = with(answered_call(), vec![requested]);
    given(events.clone()).when(request).then_expect_events(vec![]);
    // The last answer hears of it; a low grant is not topped up.
    let decision = decide(&events, progress(2, Progress::Answered, 21)).expect("repeat");
    assert_eq!(grant_answer(&decision).hangup, Some(HangupReason::AccountFrozen));
    let decision = decide(&events, interim(3, 55_000, 65)).expect("ticked");
    assert_eq!(decision.grant, None);
    assert!(grant_answer(&decision).final_unit);
}
