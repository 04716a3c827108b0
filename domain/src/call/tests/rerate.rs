//! Re-rating an ended call after a rate correction: the customer is only ever refunded, down
//! to the lowest corrected price; our cost side follows the correction with the highest
//! number; each correction applies once, and corrections reached in any order end the same.

use proptest::prelude::*;

use super::support::*;
use crate::ids::ActorId;

fn admin() -> ActorId {
    ActorId(uuid::Uuid::from_u128(0xAD41))
}

fn rerate(sequence: u64, selling: i64, ours: i64) -> CallCommand {
    CallCommand::ReRate {
        correction: format!("rc-{sequence}"),
        sequence,
        selling_per_minute: usd(selling),
        cost_per_minute: usd(ours),
        actor: admin(),
        now: at(500),
    }
}

/// Answered, then stopped at `talk_ms` with 60,000 reserved, at 1,000 micros a second; our
/// cost is 40,000 a minute.
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

struct Expect {
    sequence: u64,
    selling: i64,
    ours: i64,
    cost: (i64, i64),
    charged: (i64, i64),
    our_cost: (i64, i64),
}

fn rerated(e: Expect) -> CallEvent {
    CallEvent::CallReRated {
        correction: format!("rc-{}", e.sequence),
        sequence: e.sequence,
        actor: admin(),
        tariff: tariff_with(e.selling, 0, 1, 1),
        old_cost: usd(e.cost.0),
        new_cost: usd(e.cost.1),
        old_charged: usd(e.charged.0),
        new_charged: usd(e.charged.1),
        refund: usd(e.charged.0 - e.charged.1),
        our_rate_per_minute: Some(usd(e.ours)),
        old_our_cost: Some(usd(e.our_cost.0)),
        new_our_cost: Some(usd(e.our_cost.1)),
        at: at(500),
    }
}

#[test]
fn a_cheaper_correction_refunds_the_difference_once() {
    // 46 s at 0.03/min is 23,000 instead of 46,000; our cost 30,667 -> 15,334 (rounded up).
    let first = rerated(Expect {
        sequence: 1,
        selling: 30_000,
        ours: 20_000,
        cost: (46_000, 23_000),
        charged: (46_000, 23_000),
        our_cost: (30_667, 15_334),
    });
    given(ended_after(45_500))
        .when(rerate(1, 30_000, 20_000))
        .then_expect_events(vec![first.clone()]);
    let decision = decide(&ended_after(45_500), rerate(1, 30_000, 20_000)).expect("re-rated");
    assert_eq!(decision.refund(), Some((usd(23_000), "rc-1")));
    let after = with(ended_after(45_500), vec![first]);
    given(after.clone())
        .when(rerate(1, 30_000, 20_000))
        .then_expect_events(vec![]);
    // A later correction starts from what the customer now pays: only the rest is refunded.
    given(after)
        .when(rerate(2, 15_000, 10_000))
        .then_expect_events(vec![rerated(Expect {
            sequence: 2,
            selling: 15_000,
            ours: 10_000,
            cost: (23_000, 11_500),
            charged: (23_000, 11_500),
            our_cost: (15_334, 7_667),
        })]);
}

#[test]
fn a_dearer_correction_charges_nothing_more_and_re_rates_our_cost() {
    let event = rerated(Expect {
        sequence: 1,
        selling: 90_000,
        ours: 70_000,
        cost: (46_000, 69_000),
        charged: (46_000, 46_000),
        our_cost: (30_667, 53_667),
    });
    given(ended_after(45_500))
        .when(rerate(1, 90_000, 70_000))
        .then_expect_events(vec![event]);
    let decision = decide(&ended_after(45_500), rerate(1, 90_000, 70_000)).expect("re-rated");
    assert_eq!(decision.refund(), None, "no refund, and never a charge");
}

#[test]
fn an_older_correction_reached_late_refunds_but_leaves_our_cost_to_the_newer() {
    // rc-2 (dearer) first, then rc-1 (cheaper): the refund is rc-1's, our cost stays rc-2's.
    let mut call = state_after(&ended_after(45_500));
    for command in [rerate(2, 90_000, 70_000), rerate(1, 30_000, 20_000)] {
        for event in call.decide(&command).expect("decided").events {
            call.fold(&event);
        }
    }
    let mut in_order = state_after(&ended_after(45_500));
    for command in [rerate(1, 30_000, 20_000), rerate(2, 90_000, 70_000)] {
        for event in in_order.decide(&command).expect("decided").events {
            in_order.fold(&event);
        }
    }
    assert_eq!(call.charged(), usd(23_000));
    assert_eq!(call.our_rate(), Some(usd(70_000)));
    assert_eq!(
        (call.charged(), call.our_rate(), call.cost()),
        (in_order.charged(), in_order.our_rate(), in_order.cost())
    );
    // And an older correction that is not cheaper changes nothing at all.
    assert!(call
        .decide(&rerate(1, 30_000, 20_000))
        .expect("decided")
        .events
        .is_empty());
}

#[test]
fn an_overrun_call_is_refunded_only_below_what_was_reserved() {
    // 75 s cost 75,000; 60,000 was charged. At 0.048/min the cost is 60,000: no refund.
    given(ended_after(75_000))
        .when(rerate(1, 48_000, 20_000))
        .then_expect_events(vec![rerated(Expect {
            sequence: 1,
            selling: 48_000,
            ours: 20_000,
            cost: (75_000, 60_000),
            charged: (60_000, 60_000),
            our_cost: (50_000, 25_000),
        })]);
    given(ended_after(75_000))
        .when(rerate(1, 36_000, 20_000))
        .then_expect_events(vec![rerated(Expect {
            sequence: 1,
            selling: 36_000,
            ours: 20_000,
            cost: (75_000, 45_000),
            charged: (60_000, 45_000),
            our_cost: (50_000, 25_000),
        })]);
}

#[test]
fn only_an_ended_call_in_the_same_currency_is_re_rated() {
    given(answered_call())
        .when(rerate(1, 30_000, 20_000))
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
        .when(rerate(1, 30_000, 20_000))
        .then_expect_error(CallError::NotEnded("failed, and cost nothing"));
    given(ended_after(45_500))
        .when(CallCommand::ReRate {
            correction: "rc-1".into(),
            sequence: 1,
            selling_per_minute: Money::from_micros(30_000, Currency::EUR),
            cost_per_minute: usd(1),
            actor: admin(),
            now: at(500),
        })
        .then_expect_error(CallError::WrongCurrency {
            expected: USD,
            got: Currency::EUR,
        });
    given(ended_after(45_500))
        .when(rerate(1, -1, 20_000))
        .then_expect_error(CallError::NegativeRate(usd(-1)));
    given(ended_after(45_500))
        .when(rerate(0, 30_000, 20_000))
        .then_expect_error(CallError::CorrectionNumberZero);
    given(ended_after(45_500))
        .when(CallCommand::ReRate {
            correction: " ".into(),
            sequence: 1,
            selling_per_minute: usd(30_000),
            cost_per_minute: usd(20_000),
            actor: admin(),
            now: at(500),
        })
        .then_expect_error(CallError::Text {
            field: "correction",
            max: MAX_CORRECTION_CHARS,
        });
}

proptest! {
    /// Whatever the corrections and the order they reach the call in (and however often):
    /// the customer pays the lowest price any of them gave (never more than before), the
    /// refunds add up to exactly that difference, and our cost is the highest-numbered one's.
    #[test]
    fn corrections_in_any_order_and_repeated_end_the_same(
        talk_ms in 1u64..120_000,
        rates in proptest::collection::vec((0i64..200_000, 0i64..200_000), 1..5),
        order in proptest::collection::vec(0usize..5, 1..12),
    ) {
        let events = ended_after(talk_ms);
        let start = state_after(&events);
        let original = start.charged().micros();
        let mut call = start.clone();
        let mut refunded = 0i64;
        let mut seen = std::collections::BTreeSet::new();
        for pick in order.iter().copied().chain(0..rates.len()) {
            let n = pick % rates.len();
            seen.insert(n);
            let (selling, ours) = rates[n];
            let decision = call.decide(&rerate(n as u64 + 1, selling, ours)).expect("decided");
            for event in &decision.events {
                if let CallEvent::CallReRated { refund, .. } = event {
                    prop_assert!(refund.micros() >= 0);
                    refunded += refund.micros();
                }
                call.fold(event);
            }
        }
        let talk = talk_seconds(talk_ms);
        let lowest = rates
            .iter()
            .map(|(s, _)| tariff_with(*s, 0, 1, 1).cost(talk).expect("cost").micros().min(60_000))
            .min()
            .expect("one")
            .min(original);
        prop_assert_eq!(call.charged().micros(), lowest);
        prop_assert_eq!(refunded, original - lowest);
        prop_assert_eq!(call.our_rate(), Some(usd(rates[rates.len() - 1].1)));
        prop_assert_eq!(seen.len(), rates.len());
    }
}
