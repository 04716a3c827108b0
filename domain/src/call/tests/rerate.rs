//! Re-rating an ended call after a rate correction: refunds only, once per correction, never
//! past what was charged; the refund is what the api credits with `AdjustCredit`.

use super::support::*;
use crate::ids::ActorId;

fn admin() -> ActorId {
    ActorId(uuid::Uuid::from_u128(0xAD41))
}

fn rerate(correction: &str, rate_per_minute: i64) -> CallCommand {
    CallCommand::ReRate {
        correction: correction.into(),
        tariff: tariff_with(rate_per_minute, 0, 1, 1),
        actor: admin(),
        now: at(500),
    }
}

/// Answered, then stopped at `talk_ms` with 60,000 reserved, at 1,000 micros a second.
fn ended_after(talk_ms: u64) -> Vec<CallEvent> {
    let cost = i64::try_from(talk_ms.div_ceil(1_000)).expect("small") * 1_000;
    let charged = cost.min(60_000);
    with(
        answered_call(),
        vec![CallEvent::CallEnded {
            seq: Some(3),
            cause: EndCause::CallerHangup,
            talk_ms,
            billed_seconds: talk_ms.div_ceil(1_000),
            cost: usd(cost),
            reserved: usd(60_000),
            charged: usd(charged),
            overrun: usd(cost - charged),
            quality: None,
            at: at(100),
        }],
    )
}

fn rerated(correction: &str, rate: i64, old: (i64, i64), new: (i64, i64)) -> CallEvent {
    CallEvent::CallReRated {
        correction: correction.into(),
        actor: admin(),
        tariff: tariff_with(rate, 0, 1, 1),
        old_cost: usd(old.0),
        new_cost: usd(new.0),
        old_charged: usd(old.1),
        new_charged: usd(new.1),
        refund: usd(old.1 - new.1),
        at: at(500),
    }
}

#[test]
fn a_cheaper_correction_refunds_the_difference_once() {
    // 46 s at 0.03/min is 23,000 instead of 46,000.
    let first = rerated("corr-1", 30_000, (46_000, 46_000), (23_000, 23_000));
    given(ended_after(45_500))
        .when(rerate("corr-1", 30_000))
        .then_expect_events(vec![first.clone()]);
    let decision = decide(&ended_after(45_500), rerate("corr-1", 30_000)).expect("re-rated");
    assert_eq!(decision.refund(), Some((usd(23_000), "corr-1")));
    let after = with(ended_after(45_500), vec![first]);
    given(after.clone())
        .when(rerate("corr-1", 30_000))
        .then_expect_events(vec![]);
    // A later correction starts from what the customer now pays.
    given(after)
        .when(rerate("corr-2", 15_000))
        .then_expect_events(vec![rerated(
            "corr-2",
            15_000,
            (23_000, 23_000),
            (11_500, 11_500),
        )]);
}

#[test]
fn a_dearer_correction_charges_nothing_more() {
    let err = decide(&ended_after(45_500), rerate("corr-1", 90_000)).expect_err("dearer");
    assert_eq!(
        err,
        CallError::NothingToRefund {
            old_charged: usd(46_000),
            new_charged: usd(60_000),
        }
    );
    assert!(err.to_string().contains("only ever refunds"), "{err}");
}

#[test]
fn an_overrun_call_is_refunded_only_below_what_was_reserved() {
    // 75 s cost 75,000; 60,000 was charged. At 0.048/min the cost is 60,000: no refund.
    given(ended_after(75_000))
        .when(rerate("corr-1", 48_000))
        .then_expect_error(CallError::NothingToRefund {
            old_charged: usd(60_000),
            new_charged: usd(60_000),
        });
    given(ended_after(75_000))
        .when(rerate("corr-1", 36_000))
        .then_expect_events(vec![rerated(
            "corr-1",
            36_000,
            (75_000, 60_000),
            (45_000, 45_000),
        )]);
}

#[test]
fn only_an_ended_call_in_the_same_currency_is_re_rated() {
    given(answered_call())
        .when(rerate("corr-1", 30_000))
        .then_expect_error(CallError::NotEnded("still live"));
    let failed = vec![
        placed(),
        CallEvent::CallFailed {
            seq: None,
            cause: FailCause::NoCredit,
            sip_status: None,
            at: at(1),
        },
    ];
    given(failed)
        .when(rerate("corr-1", 30_000))
        .then_expect_error(CallError::NotEnded("failed, and cost nothing"));
    let eur = BillingPlan::new(Money::from_micros(0, Currency::EUR), 1, 1).expect("plan");
    given(ended_after(45_500))
        .when(CallCommand::ReRate {
            correction: "corr-1".into(),
            tariff: Tariff::new(Money::from_micros(30_000, Currency::EUR), eur).expect("tariff"),
            actor: admin(),
            now: at(500),
        })
        .then_expect_error(CallError::WrongCurrency {
            expected: USD,
            got: Currency::EUR,
        });
    given(ended_after(45_500))
        .when(rerate(" ", 30_000))
        .then_expect_error(CallError::Text {
            field: "correction",
            max: MAX_CORRECTION_CHARS,
        });
}
