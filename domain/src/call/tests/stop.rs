//! `stop`, the sweeper and fraud flags: the charge is capped at what was reserved with the
//! excess to overrun — exactly what the Account's `SettleCall` then posts — and a silent call
//! is charged for the seconds last reported.

use super::support::*;
use crate::account::{Account, AccountCommand, AccountEvent};
use crate::ids::PaymentId;

fn ended(seq: Option<u64>, cause: EndCause, talk_ms: u64, cost: i64, charged: i64, s: i64) -> CallEvent {
    CallEvent::CallEnded {
        seq,
        cause,
        talk_ms,
        billed_seconds: talk_ms.div_ceil(1_000),
        cost: usd(cost),
        reserved: usd(60_000),
        charged: usd(charged),
        overrun: usd(cost - charged),
        quality: None,
        at: at(s),
    }
}

fn quality() -> CallQuality {
    CallQuality {
        browser: LegQuality {
            rtt_ms: 48,
            jitter_ms: 6,
            loss_per_mille: 3,
        },
        trunk: LegQuality {
            rtt_ms: 21,
            jitter_ms: 2,
            loss_per_mille: 0,
        },
    }
}

#[test]
fn stop_charges_the_cost_of_the_final_seconds_and_records_both_legs_quality() {
    let events = with(answered_call(), vec![ticked(3, 30_000, 30, 30_000, 40)]);
    let command = CallCommand::ReportStop {
        seq: 4,
        talk_ms: 45_500,
        cause: EndCause::CallerHangup,
        quality: Some(quality()),
        now: at(56),
    };
    let mut expected = ended(Some(4), EndCause::CallerHangup, 45_500, 46_000, 46_000, 56);
    if let CallEvent::CallEnded { quality: q, .. } = &mut expected {
        *q = Some(quality());
    }
    given(events.clone())
        .when(command.clone())
        .then_expect_events(vec![expected]);
    let decision = decide(&events, command).expect("ended");
    assert_eq!(decision.settle, Some(usd(46_000)));
    assert_eq!(
        decision.reply,
        Reply::Ended(Settlement {
            seq: Some(4),
            billed_seconds: 46,
            cost: usd(46_000),
            reserved: usd(60_000),
            charged: usd(46_000),
            overrun: usd(0),
        })
    );
}

#[test]
fn talk_past_the_grant_is_charged_up_to_the_reservation_and_the_rest_is_overrun() {
    given(answered_call())
        .when(stop(3, 75_000, EndCause::GrantExpired, 86))
        .then_expect_events(vec![ended(
            Some(3),
            EndCause::GrantExpired,
            75_000,
            75_000,
            60_000,
            86,
        )]);
}

#[test]
fn the_account_settles_exactly_what_the_call_says_it_charged() {
    // The real Account: 1.00 bought, 60,000 reserved for the call, then SettleCall with the
    // call's cost. Charged and overrun agree with CallEnded, with and without an overrun.
    for (talk_ms, charged, overrun) in [(45_500, 46_000, 0), (75_000, 60_000, 15_000)] {
        let decision = decide(&answered_call(), stop(3, talk_ms, EndCause::CallerHangup, 90)).expect("ended");
        let cost = decision.settle.expect("reservations to settle");
        let mut wallet = Account::default();
        for command in [
            AccountCommand::OpenAccount {
                account_id: account(),
                currency: USD,
            },
            AccountCommand::PurchaseCredit {
                checkout_session_id: None,
                payment_id: PaymentId::parse("pi_1").expect("id"),
                paid: usd(1_000_000),
                bonus: usd(0),
            },
            AccountCommand::ReserveCredit {
                reservation_id: res(1),
                call_id: call_id(),
                amount: usd(60_000),
            },
        ] {
            for event in wallet.decide(&command).expect("accepted") {
                wallet.fold(&event);
            }
        }
        let settled = wallet
            .decide(&AccountCommand::SettleCall {
                call_id: call_id(),
                cost,
            })
            .expect("settled");
        match (&settled[0], &decision.events[0]) {
            (
                AccountEvent::ReservationSettled {
                    charged: a_charged,
                    overrun: a_overrun,
                    ..
                },
                CallEvent::CallEnded {
                    charged: c_charged,
                    overrun: c_overrun,
                    ..
                },
            ) => {
                assert_eq!((a_charged, a_overrun), (c_charged, c_overrun));
                assert_eq!((c_charged.micros(), c_overrun.micros()), (charged, overrun));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_repeated_stop_gets_the_same_settlement_and_changes_nothing() {
    let events = with(
        answered_call(),
        vec![ended(Some(3), EndCause::CallerHangup, 20_000, 20_000, 20_000, 31)],
    );
    given(events.clone())
        .when(stop(3, 20_000, EndCause::CallerHangup, 33))
        .then_expect_events(vec![]);
    let decision = decide(&events, stop(3, 20_000, EndCause::CallerHangup, 33)).expect("repeat");
    assert_eq!(decision.settle, None, "settled once, by the first decision");
    assert!(matches!(
        decision.reply,
        Reply::Ended(Settlement {
            billed_seconds: 20,
            ..
        })
    ));
    given(events)
        .when(stop(4, 20_000, EndCause::CallerHangup, 33))
        .then_expect_error(CallError::CallOver("ended"));
}

#[test]
fn a_stop_before_the_answer_costs_nothing() {
    let events = vec![placed(), granted(1, 60_000, 60_000, 60, None, 1)];
    let decision = decide(&events, stop(1, 0, EndCause::CallerHangup, 5)).expect("ended");
    assert_eq!(decision.settle, Some(usd(0)));
    assert_eq!(decision.events.len(), 1);
}

#[test]
fn a_silent_answered_call_is_orphaned_and_charged_for_the_seconds_last_reported() {
    let events = with(answered_call(), vec![ticked(3, 30_000, 30, 30_000, 40)]);
    given(events.clone())
        .when(CallCommand::Sweep { now: at(99) })
        .then_expect_error(CallError::NotStale {
            silent_seconds: 59,
            threshold_seconds: 60,
        });
    given(events.clone())
        .when(CallCommand::Sweep { now: at(100) })
        .then_expect_events(vec![ended(None, EndCause::Orphaned, 30_000, 30_000, 30_000, 100)]);
    let decision = decide(&events, CallCommand::Sweep { now: at(100) }).expect("swept");
    assert_eq!(decision.settle, Some(usd(30_000)));
}

#[test]
fn a_report_that_arrived_before_the_sweep_wins() {
    let events = with(
        answered_call(),
        vec![
            ticked(3, 30_000, 30, 30_000, 40),
            ticked(4, 36_000, 36, 36_000, 95),
        ],
    );
    given(events)
        .when(CallCommand::Sweep { now: at(100) })
        .then_expect_error(CallError::NotStale {
            silent_seconds: 5,
            threshold_seconds: 60,
        });
}

#[test]
fn an_unanswered_call_is_swept_after_the_ring_limit_too_and_costs_nothing() {
    let events = vec![
        placed(),
        granted(1, 60_000, 60_000, 60, None, 1),
        CallEvent::CallRinging { seq: 1, at: at(2) },
    ];
    given(events.clone())
        .when(CallCommand::Sweep { now: at(121) })
        .then_expect_error(CallError::NotStale {
            silent_seconds: 119,
            threshold_seconds: 120,
        });
    let decision = decide(&events, CallCommand::Sweep { now: at(122) }).expect("swept");
    assert_eq!(
        decision.events,
        vec![CallEvent::CallFailed {
            seq: None,
            cause: FailCause::Orphaned,
            sip_status: None,
            at: at(122),
        }]
    );
    assert_eq!(decision.settle, Some(usd(0)));
    // A call whose first grant was never recorded has nothing to settle.
    let decision = decide(&[placed()], CallCommand::Sweep { now: at(120) }).expect("swept");
    assert_eq!(decision.settle, None);
}

#[test]
fn a_flag_records_the_rule_score_and_evidence_within_bounds() {
    let flag = |rule: &str, score: u16, evidence: &str| CallCommand::Flag {
        rule: rule.into(),
        score,
        evidence: evidence.into(),
    };
    given(answered_call())
        .when(flag(" premium-burst ", 870, "5 calls to +4420 in 60 s"))
        .then_expect_events(vec![CallEvent::CallFlagged {
            rule: "premium-burst".into(),
            score: 870,
            evidence: "5 calls to +4420 in 60 s".into(),
        }]);
    given(answered_call())
        .when(flag("r", MAX_SCORE + 1, "e"))
        .then_expect_error(CallError::ScoreOutOfRange(MAX_SCORE + 1));
    given(answered_call())
        .when(flag(" ", 1, "e"))
        .then_expect_error(CallError::Text {
            field: "rule",
            max: MAX_RULE_CHARS,
        });
    given(answered_call())
        .when(flag("r", 1, &"x".repeat(MAX_EVIDENCE_CHARS + 1)))
        .then_expect_error(CallError::Text {
            field: "evidence",
            max: MAX_EVIDENCE_CHARS,
        });
}

fn hangup(reason: HangupReason, s: i64) -> CallEvent {
    CallEvent::CallHangupRequested { reason, at: at(s) }
}

#[test]
fn a_call_the_api_asked_to_end_ends_with_the_hangup_cause_whatever_the_node_reports() {
    let events = with(
        answered_call(),
        vec![
            ticked(3, 30_000, 30, 30_000, 40),
            hangup(HangupReason::AccountBanned, 41),
        ],
    );
    given(events.clone())
        .when(stop(4, 31_000, EndCause::HangupRequested, 42))
        .then_expect_events(vec![ended(
            Some(4),
            EndCause::AccountBanned,
            31_000,
            31_000,
            31_000,
            42,
        )]);
    let decision = decide(&events, stop(4, 31_000, EndCause::CallerHangup, 42)).expect("ended");
    assert!(
        matches!(
            decision.events[..],
            [CallEvent::CallEnded {
                cause: EndCause::AccountBanned,
                ..
            }]
        ),
        "{:?}",
        decision.events
    );
    assert_eq!(decision.settle, Some(usd(31_000)));
}

#[test]
fn a_second_hangup_request_records_nothing_and_the_first_cause_stands() {
    let events = with(answered_call(), vec![hangup(HangupReason::AccountFrozen, 41)]);
    let decision = decide(
        &events,
        CallCommand::RequestHangup {
            reason: HangupReason::AccountBanned,
            now: at(42),
        },
    )
    .expect("accepted");
    assert!(decision.events.is_empty());
    assert_eq!(state_after(&events).hangup(), Some(HangupReason::AccountFrozen));
}

#[test]
fn the_sweeper_ends_a_silent_call_with_its_hangup_cause() {
    let events = with(
        answered_call(),
        vec![ticked(3, 30_000, 30, 30_000, 40), hangup(HangupReason::Admin, 40)],
    );
    given(events)
        .when(CallCommand::Sweep { now: at(100) })
        .then_expect_events(vec![ended(None, EndCause::Admin, 30_000, 30_000, 30_000, 100)]);
}

#[test]
fn causes_of_the_api_are_refused_from_nodes_and_orphaned_reads_old_swept_events() {
    for cause in [
        EndCause::Orphaned,
        EndCause::AccountFrozen,
        EndCause::AccountBanned,
        EndCause::Admin,
    ] {
        assert!(cause.is_api_only(), "{cause:?}");
    }
    assert!(!EndCause::HangupRequested.is_api_only());
    let old: EndCause = serde_json::from_str("\"swept\"").expect("old name");
    assert_eq!(old, EndCause::Orphaned);
    assert_eq!(
        serde_json::to_string(&EndCause::Orphaned).expect("json"),
        "\"orphaned\""
    );
    let old: FailCause = serde_json::from_str("\"swept\"").expect("old name");
    assert_eq!(old, FailCause::Orphaned);
}
