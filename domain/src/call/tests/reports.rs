//! `progress` and `interim`: the `seq` rules (repeat, gap, older), cumulative ticks billed by
//! the plan's increments, and the answers a report gets.

use super::support::*;

#[test]
fn ringing_then_answered_are_recorded_with_their_seq() {
    let events = vec![placed(), granted(1, 60_000, 60_000, 60, None, 1)];
    given(events.clone())
        .when(progress(1, Progress::Ringing, 2))
        .then_expect_events(vec![CallEvent::CallRinging { seq: 1, at: at(2) }]);
    let ringing = with(events, vec![CallEvent::CallRinging { seq: 1, at: at(2) }]);
    given(ringing.clone())
        .when(progress(2, Progress::Answered, 10))
        .then_expect_events(vec![CallEvent::CallAnswered { seq: 2, at: at(10) }]);
    let decision = decide(&ringing, progress(2, Progress::Answered, 10)).expect("answered");
    assert_eq!(grant_answer(&decision), answer(2, 60, 60, false, 10));
}

#[test]
fn interim_records_cumulative_billed_seconds_and_cost() {
    given(answered_call())
        .when(interim(3, 6_000, 16))
        .then_expect_events(vec![ticked(3, 6_000, 6, 6_000, 16)]);
    // Whole seconds are rounded up: 6.001 s bills 7 s.
    given(answered_call())
        .when(interim(3, 6_001, 16))
        .then_expect_events(vec![ticked(3, 6_001, 7, 7_000, 16)]);
    let decision = decide(&answered_call(), interim(3, 6_000, 16)).expect("ticked");
    assert_eq!(grant_answer(&decision), answer(3, 60, 54, false, 16));
    assert_eq!(decision.grant, None, "48 s of money left covers the 12 s lead");
}

#[test]
fn interim_bills_by_the_plans_increments() {
    // 0.06/min billed 60/60: 61 s bills two minutes, 0.12.
    let t = tariff_with(60_000, 0, 60, 60);
    let events = vec![
        placed_with(t, 50_000_000, Limits::default()),
        granted(1, 60_000, 60_000, 60, None, 1),
        CallEvent::CallAnswered { seq: 1, at: at(2) },
    ];
    given(events.clone())
        .when(interim(2, 61_000, 63))
        .then_expect_events(vec![ticked(2, 61_000, 120, 120_000, 63)]);
    given(events)
        .when(interim(2, 59_000, 61))
        .then_expect_events(vec![ticked(2, 59_000, 60, 60_000, 61)]);
}

#[test]
fn a_repeated_seq_gets_the_first_answer_and_appends_nothing() {
    let events = with(answered_call(), vec![ticked(3, 6_000, 6, 6_000, 16)]);
    given(events.clone())
        .when(interim(3, 6_000, 20))
        .then_expect_events(vec![]);
    // Even with other counts, and later: the first answer, valid until 16 + 30 s.
    let decision = decide(&events, interim(3, 9_000, 25)).expect("repeat");
    assert_eq!(grant_answer(&decision), answer(3, 60, 54, false, 16));
    assert_eq!((decision.grant, decision.settle), (None, None));
    let decision = decide(&answered_call(), progress(2, Progress::Answered, 12)).expect("repeat");
    assert_eq!(grant_answer(&decision), answer(2, 60, 60, false, 10));
}

#[test]
fn an_older_seq_is_refused_with_a_clear_error() {
    let events = with(answered_call(), vec![ticked(5, 18_000, 18, 18_000, 28)]);
    let err = decide(&events, interim(4, 12_000, 29)).expect_err("older");
    assert_eq!(err, CallError::StaleSeq { seq: 4, last: 5 });
    assert_eq!(err.code(), "stale_seq");
    assert_eq!(
        err.to_string(),
        "report seq 4 is older than the last accepted seq 5 for this call; resend only the newest report"
    );
    given(events)
        .when(progress(1, Progress::Ringing, 29))
        .then_expect_error(CallError::StaleSeq { seq: 1, last: 5 });
}

#[test]
fn a_gap_in_seq_is_accepted_because_counts_are_cumulative() {
    let events = with(answered_call(), vec![ticked(3, 6_000, 6, 6_000, 16)]);
    given(events)
        .when(interim(7, 30_000, 40))
        .then_expect_events(vec![ticked(7, 30_000, 30, 30_000, 40)]);
}

#[test]
fn seq_zero_is_refused() {
    let err = decide(&answered_call(), interim(0, 1_000, 11)).expect_err("zero");
    assert_eq!(err, CallError::SeqZero);
    assert_eq!(err.code(), "invalid_report");
}

#[test]
fn a_lower_talk_time_never_lowers_what_is_billed() {
    let events = with(answered_call(), vec![ticked(3, 20_000, 20, 20_000, 30)]);
    given(events)
        .when(interim(4, 15_000, 36))
        .then_expect_events(vec![ticked(4, 20_000, 20, 20_000, 36)]);
}

#[test]
fn talk_beyond_a_day_is_refused_as_a_bad_report() {
    let err = decide(&answered_call(), interim(3, MAX_TALK_MS + 1, 16)).expect_err("too long");
    assert_eq!(
        err,
        CallError::TalkTooLong {
            talk_ms: MAX_TALK_MS + 1,
            max_ms: MAX_TALK_MS
        }
    );
}

#[test]
fn an_interim_before_answered_implies_the_answer() {
    let events = vec![
        placed(),
        granted(1, 60_000, 60_000, 60, None, 1),
        CallEvent::CallRinging { seq: 1, at: at(2) },
    ];
    given(events).when(interim(3, 3_000, 13)).then_expect_events(vec![
        CallEvent::CallAnswered { seq: 3, at: at(13) },
        ticked(3, 3_000, 3, 3_000, 13),
    ]);
}

#[test]
fn ringing_after_the_answer_changes_nothing() {
    given(answered_call())
        .when(progress(3, Progress::Ringing, 12))
        .then_expect_events(vec![]);
    given(answered_call())
        .when(progress(3, Progress::Answered, 12))
        .then_expect_events(vec![]);
}

#[test]
fn a_failure_before_the_answer_is_recorded_with_its_sip_status_and_costs_nothing() {
    let events = vec![
        placed(),
        granted(1, 60_000, 60_000, 60, None, 1),
        CallEvent::CallRinging { seq: 1, at: at(2) },
    ];
    let busy = Progress::Failed {
        cause: FailCause::Busy,
        sip_status: Some(486),
    };
    let failed = CallEvent::CallFailed {
        seq: Some(2),
        cause: FailCause::Busy,
        sip_status: Some(486),
        at: at(5),
    };
    given(events.clone())
        .when(progress(2, busy, 5))
        .then_expect_events(vec![failed.clone()]);
    let decision = decide(&events, progress(2, busy, 5)).expect("failed");
    assert_eq!(decision.reply, Reply::Failed { seq: Some(2) });
    assert_eq!(
        decision.settle,
        Some(usd(0)),
        "the reservation is settled at zero"
    );
    // A repeat of the failure gets the same answer.
    let over = with(events.clone(), vec![failed]);
    let decision = decide(&over, progress(2, busy, 6)).expect("repeat");
    assert_eq!(
        (decision.events.len(), decision.reply),
        (0, Reply::Failed { seq: Some(2) })
    );
    given(events)
        .when(progress(
            2,
            Progress::Failed {
                cause: FailCause::Rejected,
                sip_status: Some(200),
            },
            5,
        ))
        .then_expect_error(CallError::BadSipStatus(200));
}

#[test]
fn a_failure_after_the_answer_is_refused() {
    let err = decide(
        &answered_call(),
        progress(
            3,
            Progress::Failed {
                cause: FailCause::TrunkError,
                sip_status: None,
            },
            12,
        ),
    )
    .expect_err("answered");
    assert_eq!(err, CallError::FailedAfterAnswer);
    assert!(err.to_string().contains("`stop`"), "{err}");
}

#[test]
fn reports_after_the_call_ended_are_refused_as_over() {
    let events = with(
        answered_call(),
        vec![CallEvent::CallEnded {
            seq: Some(3),
            cause: EndCause::CallerHangup,
            talk_ms: 5_000,
            billed_seconds: 5,
            cost: usd(5_000),
            reserved: usd(60_000),
            charged: usd(5_000),
            overrun: usd(0),
            quality: None,
            at: at(15),
        }],
    );
    let err = decide(&events, interim(4, 6_000, 16)).expect_err("over");
    assert_eq!(err, CallError::CallOver("ended"));
    assert_eq!(err.code(), "call_over");
}
