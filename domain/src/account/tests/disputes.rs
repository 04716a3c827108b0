//! Disputes: opening holds the amount in `disputed` (shortfall owed) and freezes for reason
//! `dispute`; winning returns it and lifts that reason once no dispute is open; losing sends it
//! back through Stripe and the account stays frozen.

use super::support::*;

/// `pi_1` paid 10, then `dp_1` opened for 4 of it: available 6, disputed 4.
fn disputed_4_of_10() -> Vec<AccountEvent> {
    with(
        funded(10 * D),
        vec![
            dispute_opened(
                dp(1),
                pi(1),
                4 * D,
                lines(&[(AVAILABLE, -4 * D), (DISPUTED, 4 * D)]),
            ),
            dispute_frozen("dp_1"),
        ],
    )
}

fn shortfall_opening() -> Vec<AccountEvent> {
    vec![
        dispute_opened(
            dp(1),
            pi(1),
            10 * D,
            lines(&[(AVAILABLE, -3 * D), (DISPUTED, 10 * D), (RECEIVABLE, -7 * D)]),
        ),
        dispute_frozen("dp_1"),
        receivable_frozen("7.000000 USD"),
    ]
}

/// 10 paid, 7 reserved for a call, so only 3 available when the dispute for 10 arrives.
fn mostly_reserved() -> Vec<AccountEvent> {
    with(funded(10 * D), vec![reserved(res(1), call(1), 7 * D)])
}

#[test]
fn opening_a_dispute_holds_the_amount_and_freezes_the_account() {
    given(funded(10 * D))
        .when(open_dispute(dp(1), pi(1), usd(4 * D)))
        .then_expect_events(vec![
            dispute_opened(
                dp(1),
                pi(1),
                4 * D,
                lines(&[(AVAILABLE, -4 * D), (DISPUTED, 4 * D)]),
            ),
            dispute_frozen("dp_1"),
        ]);
}

#[test]
fn a_dispute_larger_than_available_is_partly_owed() {
    given(mostly_reserved())
        .when(open_dispute(dp(1), pi(1), usd(10 * D)))
        .then_expect_events(shortfall_opening());
}

#[test]
fn a_second_dispute_does_not_freeze_again() {
    let events = with(disputed_4_of_10(), vec![purchased(pi(2), 5 * D, 0)]);
    given(events)
        .when(open_dispute(dp(2), pi(2), usd(5 * D)))
        .then_expect_events(vec![dispute_opened(
            dp(2),
            pi(2),
            5 * D,
            lines(&[(AVAILABLE, -5 * D), (DISPUTED, 5 * D)]),
        )]);
}

#[test]
fn dispute_refusals() {
    given(funded(10 * D))
        .when(open_dispute(dp(1), pi(2), usd(D)))
        .then_expect_error(AccountError::UnknownPayment(pi(2)));
    given(disputed_4_of_10())
        .when(open_dispute(dp(1), pi(1), usd(D)))
        .then_expect_error(AccountError::DuplicateDispute(dp(1)));
    given(funded(10 * D))
        .when(open_dispute(dp(1), pi(1), usd(10 * D + 1)))
        .then_expect_error(AccountError::DisputeExceedsPayment {
            paid: usd(10 * D),
            disputed: usd(10 * D + 1),
        });
    given(funded(10 * D))
        .when(open_dispute(dp(1), pi(1), eur(D)))
        .then_expect_error(AccountError::WrongCurrency {
            expected: USD,
            got: EUR,
        });
    given(funded(10 * D))
        .when(open_dispute(dp(1), pi(1), usd(0)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(0)));
}

#[test]
fn winning_returns_the_amount_and_lifts_the_dispute_freeze() {
    let won = vec![
        dispute_won(dp(1), 4 * D, lines(&[(DISPUTED, -4 * D), (AVAILABLE, 4 * D)])),
        dispute_lifted("dp_1"),
    ];
    given(disputed_4_of_10())
        .when(win(dp(1)))
        .then_expect_events(won.clone());
    let after = with(disputed_4_of_10(), won);
    assert!(state_after(&after).frozen_reasons().is_empty());
    given(after)
        .when(reserve(res(1), call(1), usd(10 * D)))
        .then_expect_events(vec![reserved(res(1), call(1), 10 * D)]);
}

#[test]
fn winning_pays_the_shortfall_back_first_and_lifts_both_freezes() {
    given(with(mostly_reserved(), shortfall_opening()))
        .when(win(dp(1)))
        .then_expect_events(vec![
            dispute_won(
                dp(1),
                10 * D,
                lines(&[(DISPUTED, -10 * D), (RECEIVABLE, 7 * D), (AVAILABLE, 3 * D)]),
            ),
            dispute_lifted("dp_1"),
            receivable_lifted(),
        ]);
}

#[test]
fn winning_one_of_two_open_disputes_keeps_the_freeze() {
    let events = with(
        disputed_4_of_10(),
        vec![
            purchased(pi(2), 5 * D, 0),
            dispute_opened(
                dp(2),
                pi(2),
                5 * D,
                lines(&[(AVAILABLE, -5 * D), (DISPUTED, 5 * D)]),
            ),
        ],
    );
    given(events)
        .when(win(dp(1)))
        .then_expect_events(vec![dispute_won(
            dp(1),
            4 * D,
            lines(&[(DISPUTED, -4 * D), (AVAILABLE, 4 * D)]),
        )]);
}

#[test]
fn winning_lifts_only_the_dispute_reason_and_a_fraud_freeze_stays() {
    let events = with(
        funded(10 * D),
        vec![
            frozen(FreezeReason::Fraud, "card testing"),
            dispute_opened(
                dp(1),
                pi(1),
                4 * D,
                lines(&[(AVAILABLE, -4 * D), (DISPUTED, 4 * D)]),
            ),
            dispute_frozen("dp_1"),
        ],
    );
    let won = vec![
        dispute_won(dp(1), 4 * D, lines(&[(DISPUTED, -4 * D), (AVAILABLE, 4 * D)])),
        dispute_lifted("dp_1"),
    ];
    given(events.clone())
        .when(win(dp(1)))
        .then_expect_events(won.clone());
    given(with(events, won))
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_error(AccountError::Frozen(vec![FreezeReason::Fraud]));
}

#[test]
fn winning_after_an_operator_lifted_the_dispute_freeze_lifts_nothing_more() {
    let events = with(
        disputed_4_of_10(),
        vec![unfrozen(FreezeReason::Dispute, "customer verified")],
    );
    given(events)
        .when(win(dp(1)))
        .then_expect_events(vec![dispute_won(
            dp(1),
            4 * D,
            lines(&[(DISPUTED, -4 * D), (AVAILABLE, 4 * D)]),
        )]);
}

#[test]
fn losing_sends_the_amount_back_through_stripe_and_the_account_stays_frozen() {
    given(disputed_4_of_10())
        .when(lose(dp(1)))
        .then_expect_events(vec![dispute_lost(dp(1), 4 * D)]);
    let after = with(disputed_4_of_10(), vec![dispute_lost(dp(1), 4 * D)]);
    let account = state_after(&after);
    assert_eq!(
        (account.balances().available, account.balances().disputed),
        (6 * D, 0)
    );
    given(after)
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_error(AccountError::Frozen(vec![FreezeReason::Dispute]));
}

#[test]
fn losing_a_partly_owed_dispute_leaves_the_debt() {
    let events = with(mostly_reserved(), shortfall_opening());
    given(events.clone())
        .when(lose(dp(1)))
        .then_expect_events(vec![dispute_lost(dp(1), 10 * D)]);
    let account = state_after(&with(events, vec![dispute_lost(dp(1), 10 * D)]));
    assert_eq!(
        (account.balances().receivable, account.balances().disputed),
        (-7 * D, 0)
    );
}

#[test]
fn only_open_disputes_can_be_won_or_lost() {
    for command in [win(dp(3)), lose(dp(3))] {
        given(disputed_4_of_10())
            .when(command)
            .then_expect_error(AccountError::UnknownDispute(dp(3)));
    }
    let closed = with(disputed_4_of_10(), vec![dispute_lost(dp(1), 4 * D)]);
    for command in [win(dp(1)), lose(dp(1))] {
        given(closed.clone())
            .when(command)
            .then_expect_error(AccountError::UnknownDispute(dp(1)));
    }
}

#[test]
fn disputes_on_one_payment_cannot_hold_more_than_is_left_of_it() {
    // 10 paid, 4 already disputed: 6 is the most a second dispute can hold.
    given(disputed_4_of_10())
        .when(open_dispute(dp(2), pi(1), usd(6 * D + 1)))
        .then_expect_error(AccountError::DisputeExceedsPayment {
            paid: usd(6 * D),
            disputed: usd(6 * D + 1),
        });
    // A refund of 3 leaves 7 open to dispute.
    let refunded = state_after(&events_of(&[
        open_cmd(),
        purchase(pi(1), usd(10 * D), usd(0)),
        refund(pi(1), usd(3 * D)),
    ]));
    let err = refunded
        .decide(&open_dispute(dp(1), pi(1), usd(7 * D + 1)))
        .unwrap_err();
    assert_eq!(
        err,
        AccountError::DisputeExceedsPayment {
            paid: usd(7 * D),
            disputed: usd(7 * D + 1)
        }
    );
    assert!(refunded.decide(&open_dispute(dp(1), pi(1), usd(7 * D))).is_ok());
}

#[test]
fn winning_a_later_dispute_does_not_lift_the_freeze_a_lost_one_left() {
    let lost_then_won = [
        open_cmd(),
        purchase(pi(1), usd(10 * D), usd(0)),
        purchase(pi(2), usd(10 * D), usd(0)),
        open_dispute(dp(1), pi(1), usd(2 * D)),
        lose(dp(1)),
        open_dispute(dp(2), pi(2), usd(2 * D)),
        win(dp(2)),
    ];
    let state = state_after(&events_of(&lost_then_won));
    assert!(
        state.frozen_reasons().contains(&FreezeReason::Dispute),
        "waits for an operator"
    );

    // Once an operator has lifted it, a later won dispute lifts the reason again.
    let mut reviewed = lost_then_won.to_vec();
    reviewed.push(unfreeze(FreezeReason::Dispute, "reviewed"));
    reviewed.push(purchase(pi(3), usd(10 * D), usd(0)));
    reviewed.push(open_dispute(dp(3), pi(3), usd(D)));
    reviewed.push(win(dp(3)));
    let state = state_after(&events_of(&reviewed));
    assert!(!state.frozen_reasons().contains(&FreezeReason::Dispute));
}
