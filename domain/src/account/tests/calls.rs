//! Credit held for calls: reservations, the one settlement per call (charge up to what was
//! reserved, overrun is the house's), and releases. Each reservation ends exactly once.

use super::support::*;

// ---- ReserveCredit ----

#[test]
fn reserve_moves_the_amount_from_available_to_reserved() {
    given(funded(5 * D))
        .when(reserve(res(1), call(1), usd(2 * D)))
        .then_expect_events(vec![reserved(res(1), call(1), 2 * D)]);
    let account = state_after(&with(funded(5 * D), vec![reserved(res(1), call(1), 2 * D)]));
    assert_eq!(
        (account.balances().available, account.balances().reserved),
        (3 * D, 2 * D)
    );
    assert_eq!(account.open_reservations().len(), 1);
}

#[test]
fn reserve_may_take_all_that_is_available_and_not_one_micro_more() {
    given(funded(5 * D))
        .when(reserve(res(1), call(1), usd(5 * D)))
        .then_expect_events(vec![reserved(res(1), call(1), 5 * D)]);
    given(funded(5 * D))
        .when(reserve(res(1), call(1), usd(5 * D + 1)))
        .then_expect_error(AccountError::InsufficientFunds {
            available: usd(5 * D),
            requested: usd(5 * D + 1),
        });
}

#[test]
fn a_reservation_id_is_held_once() {
    given(with(funded(5 * D), vec![reserved(res(1), call(1), D)]))
        .when(reserve(res(1), call(2), usd(D)))
        .then_expect_error(AccountError::DuplicateReservation(res(1)));
}

#[test]
fn at_most_max_open_reservations_are_held_at_once() {
    let holding = |n: usize| {
        let mut events = funded(1_000 * D);
        events.extend((0..n as u128).map(|i| reserved(res(i), call(i), D)));
        events
    };
    let next = reserve(res(10_000), call(10_000), usd(D));
    given(holding(MAX_OPEN_RESERVATIONS - 1))
        .when(next.clone())
        .then_expect_events(vec![reserved(res(10_000), call(10_000), D)]);
    given(holding(MAX_OPEN_RESERVATIONS))
        .when(next)
        .then_expect_error(AccountError::TooManyReservations(MAX_OPEN_RESERVATIONS));
}

#[test]
fn banned_accounts_cannot_reserve() {
    given(with(funded(5 * D), vec![banned("abuse")]))
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_error(AccountError::Banned);
}

#[test]
fn frozen_accounts_cannot_reserve_and_are_told_every_reason() {
    let events = with(
        funded(5 * D),
        vec![
            frozen(FreezeReason::Admin, "kyc"),
            frozen(FreezeReason::Fraud, "card testing"),
        ],
    );
    given(events)
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_error(AccountError::Frozen(vec![
            FreezeReason::Fraud,
            FreezeReason::Admin,
        ]));
    given(owing(D, "1.000000 USD"))
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_error(AccountError::Frozen(vec![FreezeReason::Receivable]));
}

#[test]
fn reserve_refuses_bad_amounts() {
    given(funded(5 * D))
        .when(reserve(res(1), call(1), eur(D)))
        .then_expect_error(AccountError::WrongCurrency {
            expected: USD,
            got: EUR,
        });
    given(funded(5 * D))
        .when(reserve(res(1), call(1), usd(0)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(0)));
    given(funded(5 * D))
        .when(reserve(res(1), call(1), usd(-D)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(-D)));
}

// ---- SettleCall ----

fn one_call_reserved(amount: i64) -> Vec<AccountEvent> {
    with(funded(10 * D), vec![reserved(res(1), call(1), amount)])
}

#[test]
fn settle_charges_the_cost_and_returns_the_rest_to_available() {
    given(one_call_reserved(3 * D))
        .when(settle(call(1), usd(1_250_000)))
        .then_expect_events(vec![settled(
            call(1),
            vec![res(1)],
            3 * D,
            1_250_000,
            lines(&[(RESERVED, -3 * D), (REVENUE, 1_250_000), (AVAILABLE, 1_750_000)]),
        )]);
}

#[test]
fn settle_charges_exactly_what_was_reserved_when_the_cost_matches() {
    given(one_call_reserved(3 * D))
        .when(settle(call(1), usd(3 * D)))
        .then_expect_events(vec![settled(
            call(1),
            vec![res(1)],
            3 * D,
            3 * D,
            lines(&[(RESERVED, -3 * D), (REVENUE, 3 * D)]),
        )]);
}

#[test]
fn cost_past_the_grant_is_posted_from_overrun_so_revenue_shows_the_talk_time() {
    let result = given(one_call_reserved(3 * D))
        .when(settle(call(1), usd(4_500_000)))
        .inspect_result();
    let expected = settled(
        call(1),
        vec![res(1)],
        3 * D,
        4_500_000,
        lines(&[(RESERVED, -3 * D), (REVENUE, 4_500_000), (OVERRUN, -1_500_000)]),
    );
    assert_eq!(result, Ok(vec![expected.clone()]));
    match expected {
        AccountEvent::ReservationSettled { charged, overrun, .. } => {
            assert_eq!((charged, overrun), (usd(3 * D), usd(1_500_000)));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_call_that_cost_nothing_returns_everything() {
    given(one_call_reserved(3 * D))
        .when(settle(call(1), usd(0)))
        .then_expect_events(vec![settled(
            call(1),
            vec![res(1)],
            3 * D,
            0,
            lines(&[(RESERVED, -3 * D), (AVAILABLE, 3 * D)]),
        )]);
}

#[test]
fn settle_consumes_every_reservation_of_the_call_and_only_those() {
    let events = with(
        funded(10 * D),
        vec![
            reserved(res(1), call(1), 2 * D),
            reserved(res(2), call(2), D),
            reserved(res(3), call(1), 2 * D), // a re-grant for call 1
        ],
    );
    let settlement = settled(
        call(1),
        vec![res(1), res(3)],
        4 * D,
        3 * D,
        lines(&[(RESERVED, -4 * D), (REVENUE, 3 * D), (AVAILABLE, D)]),
    );
    given(events.clone())
        .when(settle(call(1), usd(3 * D)))
        .then_expect_events(vec![settlement.clone()]);

    let after = with(events, vec![settlement]);
    let account = state_after(&after);
    assert_eq!(
        account.open_reservations().keys().copied().collect::<Vec<_>>(),
        vec![res(2)]
    );
    assert_eq!(account.balances().reserved, D);
    given(after.clone())
        .when(settle(call(1), usd(D)))
        .then_expect_error(AccountError::NothingReservedForCall(call(1)));
    given(after.clone())
        .when(release(res(3), ReleaseReason::Unused))
        .then_expect_error(AccountError::UnknownReservation(res(3)));
    given(after)
        .when(settle(call(2), usd(D)))
        .then_expect_events(vec![settled(
            call(2),
            vec![res(2)],
            D,
            D,
            lines(&[(RESERVED, -D), (REVENUE, D)]),
        )]);
}

#[test]
fn a_call_never_reserved_cannot_be_settled() {
    given(one_call_reserved(D))
        .when(settle(call(7), usd(D)))
        .then_expect_error(AccountError::NothingReservedForCall(call(7)));
}

#[test]
fn settle_refuses_a_cost_in_another_currency_or_below_zero() {
    given(one_call_reserved(D))
        .when(settle(call(1), eur(D)))
        .then_expect_error(AccountError::WrongCurrency {
            expected: USD,
            got: EUR,
        });
    given(one_call_reserved(D))
        .when(settle(call(1), usd(-1)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(-1)));
}

#[test]
fn calls_still_settle_on_frozen_and_banned_accounts() {
    let events = with(
        one_call_reserved(2 * D),
        vec![frozen(FreezeReason::Fraud, "review"), banned("fraud")],
    );
    given(events)
        .when(settle(call(1), usd(D)))
        .then_expect_events(vec![settled(
            call(1),
            vec![res(1)],
            2 * D,
            D,
            lines(&[(RESERVED, -2 * D), (REVENUE, D), (AVAILABLE, D)]),
        )]);
}

#[test]
fn the_unused_part_of_a_settled_reservation_pays_what_is_owed_first() {
    // owing(4): res(9) holds 4 for call(9), receivable is -4.
    given(owing(4 * D, "4.000000 USD"))
        .when(settle(call(9), usd(D)))
        .then_expect_events(vec![settled(
            call(9),
            vec![res(9)],
            4 * D,
            D,
            lines(&[(RESERVED, -4 * D), (REVENUE, D), (RECEIVABLE, 3 * D)]),
        )]);
    given(owing(4 * D, "4.000000 USD"))
        .when(settle(call(9), usd(0)))
        .then_expect_events(vec![
            settled(
                call(9),
                vec![res(9)],
                4 * D,
                0,
                lines(&[(RESERVED, -4 * D), (RECEIVABLE, 4 * D)]),
            ),
            receivable_lifted(),
        ]);
}

// ---- ReleaseReservation ----

#[test]
fn release_returns_the_reservation_to_available_with_its_reason() {
    for reason in [
        ReleaseReason::Unused,
        ReleaseReason::CallEnded,
        ReleaseReason::Admin,
    ] {
        given(one_call_reserved(2 * D))
            .when(release(res(1), reason))
            .then_expect_events(vec![released(
                res(1),
                call(1),
                2 * D,
                reason,
                lines(&[(RESERVED, -2 * D), (AVAILABLE, 2 * D)]),
            )]);
    }
}

#[test]
fn release_ends_only_that_reservation() {
    let events = with(
        funded(10 * D),
        vec![
            reserved(res(1), call(1), 2 * D),
            reserved(res(2), call(1), D),
            released(
                res(1),
                call(1),
                2 * D,
                ReleaseReason::Unused,
                lines(&[(RESERVED, -2 * D), (AVAILABLE, 2 * D)]),
            ),
        ],
    );
    given(events.clone())
        .when(settle(call(1), usd(D / 2)))
        .then_expect_events(vec![settled(
            call(1),
            vec![res(2)],
            D,
            D / 2,
            lines(&[(RESERVED, -D), (REVENUE, D / 2), (AVAILABLE, D / 2)]),
        )]);
    given(events)
        .when(release(res(1), ReleaseReason::Unused))
        .then_expect_error(AccountError::UnknownReservation(res(1)));
}

#[test]
fn a_reservation_never_made_cannot_be_released() {
    given(one_call_reserved(D))
        .when(release(res(8), ReleaseReason::Admin))
        .then_expect_error(AccountError::UnknownReservation(res(8)));
}

#[test]
fn a_released_reservation_pays_what_is_owed_first() {
    given(owing(4 * D, "4.000000 USD"))
        .when(release(res(9), ReleaseReason::CallEnded))
        .then_expect_events(vec![
            released(
                res(9),
                call(9),
                4 * D,
                ReleaseReason::CallEnded,
                lines(&[(RESERVED, -4 * D), (RECEIVABLE, 4 * D)]),
            ),
            receivable_lifted(),
        ]);
}
