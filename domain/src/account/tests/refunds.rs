//! Refunds: Stripe's cumulative refunded amount, the same fraction of the bonus reversed
//! (rounded down, exact at a full refund), and any shortfall owed as `receivable`.

use super::support::*;

/// `pi_1` paid 10.00 with a bonus of 3.333333, nothing spent: available 13.333333.
fn bought_with_odd_bonus() -> Vec<AccountEvent> {
    vec![opened(), purchased(pi(1), 10 * D, 3_333_333)]
}

fn first_refund() -> AccountEvent {
    // 2.5 of 10 refunded: bonus share floor(3_333_333 * 0.25) = 833_333.
    refunded(
        pi(1),
        2_500_000,
        2_500_000,
        833_333,
        lines(&[
            (AVAILABLE, -3_333_333),
            (STRIPE, 2_500_000),
            (PROMOTIONS, 833_333),
        ]),
    )
}

fn second_refund() -> AccountEvent {
    // Cumulative 7.000001: bonus share floor(3_333_333 * 0.7000001) = 2_333_333, of which
    // 833_333 was already reversed.
    refunded(
        pi(1),
        7_000_001,
        4_500_001,
        1_500_000,
        lines(&[
            (AVAILABLE, -6_000_001),
            (STRIPE, 4_500_001),
            (PROMOTIONS, 1_500_000),
        ]),
    )
}

#[test]
fn partial_refund_reverses_the_same_fraction_of_the_bonus_rounded_down() {
    given(bought_with_odd_bonus())
        .when(refund(pi(1), usd(2_500_000)))
        .then_expect_events(vec![first_refund()]);
}

#[test]
fn refunds_are_cumulative_and_a_full_refund_reverses_the_whole_bonus_exactly() {
    let after_first = with(bought_with_odd_bonus(), vec![first_refund()]);
    given(after_first.clone())
        .when(refund(pi(1), usd(7_000_001)))
        .then_expect_events(vec![second_refund()]);

    let after_second = with(after_first, vec![second_refund()]);
    let last = refunded(
        pi(1),
        10 * D,
        2_999_999,
        1_000_000,
        lines(&[
            (AVAILABLE, -3_999_999),
            (STRIPE, 2_999_999),
            (PROMOTIONS, 1_000_000),
        ]),
    );
    given(after_second.clone())
        .when(refund(pi(1), usd(10 * D)))
        .then_expect_events(vec![last.clone()]);

    // 833_333 + 1_500_000 + 1_000_000 is the whole bonus; the account is back to zero.
    let account = state_after(&with(after_second, vec![last]));
    assert_eq!(account.balances().available, 0);
    assert_eq!(account.balances().receivable, 0);
}

#[test]
fn one_full_refund_reverses_the_whole_bonus() {
    given(vec![opened(), purchased(pi(1), 7 * D, 1_000_001)])
        .when(refund(pi(1), usd(7 * D)))
        .then_expect_events(vec![refunded(
            pi(1),
            7 * D,
            7 * D,
            1_000_001,
            lines(&[(AVAILABLE, -8_000_001), (STRIPE, 7 * D), (PROMOTIONS, 1_000_001)]),
        )]);
}

#[test]
fn a_repeated_or_lower_cumulative_total_records_nothing() {
    let after_first = with(bought_with_odd_bonus(), vec![first_refund()]);
    given(after_first.clone())
        .when(refund(pi(1), usd(2_500_000)))
        .then_expect_events(vec![]);
    given(after_first.clone())
        .when(refund(pi(1), usd(D)))
        .then_expect_events(vec![]);
    given(after_first)
        .when(refund(pi(1), usd(0)))
        .then_expect_events(vec![]);
    given(bought_with_odd_bonus())
        .when(refund(pi(1), usd(0)))
        .then_expect_events(vec![]);
}

#[test]
fn refund_beyond_available_is_owed_and_freezes_the_account() {
    // 10 paid + 2 bonus, 9 reserved for a call: 3 available.
    let events = vec![
        opened(),
        purchased(pi(1), 10 * D, 2 * D),
        reserved(res(1), call(1), 9 * D),
    ];
    given(events)
        .when(refund(pi(1), usd(10 * D)))
        .then_expect_events(vec![
            refunded(
                pi(1),
                10 * D,
                10 * D,
                2 * D,
                lines(&[
                    (AVAILABLE, -3 * D),
                    (STRIPE, 10 * D),
                    (RECEIVABLE, -9 * D),
                    (PROMOTIONS, 2 * D),
                ]),
            ),
            receivable_frozen("9.000000 USD"),
        ]);
}

#[test]
fn more_debt_does_not_freeze_twice() {
    let events = vec![
        opened(),
        purchased(pi(1), 2 * D, 0),
        purchased(pi(2), 3 * D, 0),
        reserved(res(1), call(1), 5 * D),
        refunded(
            pi(1),
            2 * D,
            2 * D,
            0,
            lines(&[(RECEIVABLE, -2 * D), (STRIPE, 2 * D)]),
        ),
        receivable_frozen("2.000000 USD"),
    ];
    given(events)
        .when(refund(pi(2), usd(D)))
        .then_expect_events(vec![refunded(
            pi(2),
            D,
            D,
            0,
            lines(&[(RECEIVABLE, -D), (STRIPE, D)]),
        )]);
}

#[test]
fn refund_of_an_unknown_payment_is_refused() {
    given(funded(D))
        .when(refund(pi(5), usd(D)))
        .then_expect_error(AccountError::UnknownPayment(pi(5)));
}

#[test]
fn refund_cannot_exceed_what_was_paid() {
    given(bought_with_odd_bonus())
        .when(refund(pi(1), usd(10 * D + 1)))
        .then_expect_error(AccountError::RefundExceedsPayment {
            paid: usd(10 * D),
            refunded_total: usd(10 * D + 1),
        });
}

#[test]
fn refund_refuses_another_currency_and_negative_totals() {
    given(funded(D))
        .when(refund(pi(1), eur(D)))
        .then_expect_error(AccountError::WrongCurrency {
            expected: USD,
            got: EUR,
        });
    given(funded(D))
        .when(refund(pi(1), usd(-1)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(-1)));
}

/// Money's own contract is "overflow is an error, never a wrap or a panic". A refund whose
/// shortfall takes `receivable` to exactly `i64::MIN` must be refused (or at least recorded in
/// events that can be read back): the owed note negates the balance, and Money's JSON cannot
/// represent `i64::MIN` micro-units.
#[test]
fn a_debt_at_the_edge_of_the_i64_range_is_refused_not_a_panic() {
    let setup = events_of(&[
        open_cmd(),
        purchase(pi(1), usd(1), usd(0)),
        reserve(res(1), call(1), usd(1)),
        refund(pi(1), usd(1)), // owes 1 micro, frozen
        settle(call(1), usd(1)),
        purchase(pi(2), usd(i64::MAX), usd(1)), // pays the micro back: available i64::MAX, freeze lifted
        reserve(res(2), call(2), usd(i64::MAX)),
    ]);
    let account = state_after(&setup);
    assert!(account.frozen_reasons().is_empty());
    assert_eq!(account.balances().reserved, i64::MAX);

    // Refunding all of pi_2 owes i64::MAX + 1 (paid plus the 1-micro bonus).
    let outcome = std::panic::catch_unwind(|| account.decide(&refund(pi(2), usd(i64::MAX))));
    match outcome.expect("decide panicked instead of refusing with AccountError::Overflow") {
        Err(AccountError::Overflow) => {}
        Ok(events) => {
            for event in events {
                let json = serde_json::to_string(&event).expect("serialises");
                let back = serde_json::from_str::<AccountEvent>(&json);
                assert_eq!(
                    back.as_ref().ok(),
                    Some(&event),
                    "recorded an event that cannot be read back: {json}"
                );
            }
        }
        Err(other) => panic!("unexpected refusal {other:?}"),
    }
}
