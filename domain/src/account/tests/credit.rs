//! Opening an account, and money arriving: purchases (with bonus), promotional grants and
//! operator adjustments, including "money arriving while receivable is owed pays it first".

use super::support::*;

#[test]
fn opening_records_the_id_and_currency() {
    given(vec![]).when(open_cmd()).then_expect_events(vec![opened()]);
    let account = state_after(&[opened()]);
    assert_eq!(account.id(), Some(account_id()));
    assert_eq!(account.currency(), Some(USD));
}

#[test]
fn an_account_opens_only_once() {
    given(vec![opened()])
        .when(open_cmd())
        .then_expect_error(AccountError::AlreadyOpened);
}

#[test]
fn every_other_command_is_refused_before_the_account_is_opened() {
    let commands = vec![
        purchase(pi(1), usd(D), usd(0)),
        grant(1, usd(D), "welcome"),
        adjust(usd(D), "goodwill"),
        adjust(usd(-D), "goodwill"),
        reserve(res(1), call(1), usd(D)),
        settle(call(1), usd(D)),
        release(res(1), ReleaseReason::Unused),
        refund(pi(1), usd(D)),
        open_dispute(dp(1), pi(1), usd(D)),
        win(dp(1)),
        lose(dp(1)),
        freeze(FreezeReason::Fraud, "card testing"),
        unfreeze(FreezeReason::Fraud, ""),
        ban("abuse"),
    ];
    for command in commands {
        let result = given(vec![]).when(command.clone()).inspect_result();
        assert_eq!(result, Err(AccountError::NotOpened), "{command:?}");
    }
}

#[test]
fn hand_written_fixtures_are_what_the_aggregate_itself_produces() {
    assert_eq!(
        events_of(&[open_cmd(), purchase(pi(1), usd(7 * D), usd(0))]),
        funded(7 * D)
    );
    let owing_commands = [
        open_cmd(),
        purchase(pi(9), usd(4 * D), usd(0)),
        reserve(res(9), call(9), usd(4 * D)),
        refund(pi(9), usd(4 * D)),
    ];
    assert_eq!(events_of(&owing_commands), owing(4 * D, "4.000000 USD"));
    let debtor = state_after(&owing(4 * D, "4.000000 USD")).balances();
    assert_eq!(
        (debtor.available, debtor.reserved, debtor.receivable),
        (0, 4 * D, -4 * D)
    );
}

// ---- PurchaseCredit ----

#[test]
fn purchase_moves_paid_from_stripe_clearing_and_bonus_from_promotions_to_available() {
    given(vec![opened()])
        .when(purchase(pi(1), usd(10 * D), usd(2 * D)))
        .then_expect_events(vec![purchased_with(
            pi(1),
            10 * D,
            2 * D,
            lines(&[(STRIPE, -10 * D), (AVAILABLE, 12 * D), (PROMOTIONS, -2 * D)]),
        )]);
    assert_eq!(
        state_after(&[opened(), purchased(pi(1), 10 * D, 2 * D)])
            .balances()
            .available,
        12 * D
    );
}

#[test]
fn purchase_without_bonus_posts_only_the_paid_amount() {
    given(vec![opened()])
        .when(purchase(pi(1), usd(5 * D), usd(0)))
        .then_expect_events(vec![purchased_with(
            pi(1),
            5 * D,
            0,
            lines(&[(STRIPE, -5 * D), (AVAILABLE, 5 * D)]),
        )]);
}

#[test]
fn purchase_pays_what_is_owed_first_and_lifts_the_receivable_freeze() {
    given(owing(3 * D, "3.000000 USD"))
        .when(purchase(pi(2), usd(10 * D), usd(D)))
        .then_expect_events(vec![
            purchased_with(
                pi(2),
                10 * D,
                D,
                lines(&[
                    (STRIPE, -10 * D),
                    (RECEIVABLE, 3 * D),
                    (AVAILABLE, 8 * D),
                    (PROMOTIONS, -D),
                ]),
            ),
            receivable_lifted(),
        ]);
}

#[test]
fn purchase_smaller_than_the_debt_pays_part_of_it_and_the_freeze_stays() {
    given(owing(5 * D, "5.000000 USD"))
        .when(purchase(pi(2), usd(2 * D), usd(0)))
        .then_expect_events(vec![purchased_with(
            pi(2),
            2 * D,
            0,
            lines(&[(STRIPE, -2 * D), (RECEIVABLE, 2 * D)]),
        )]);
}

#[test]
fn bonus_also_pays_the_debt_and_the_freeze_lifts_exactly_at_zero() {
    given(owing(5 * D, "5.000000 USD"))
        .when(purchase(pi(2), usd(4 * D), usd(D)))
        .then_expect_events(vec![
            purchased_with(
                pi(2),
                4 * D,
                D,
                lines(&[(STRIPE, -4 * D), (RECEIVABLE, 5 * D), (PROMOTIONS, -D)]),
            ),
            receivable_lifted(),
        ]);
}

#[test]
fn the_same_payment_is_credited_once() {
    given(funded(5 * D))
        .when(purchase(pi(1), usd(5 * D), usd(0)))
        .then_expect_error(AccountError::DuplicatePayment(pi(1)));
}

#[test]
fn purchase_refuses_amounts_in_another_currency() {
    let wrong = AccountError::WrongCurrency {
        expected: USD,
        got: EUR,
    };
    given(vec![opened()])
        .when(purchase(pi(1), eur(5 * D), usd(0)))
        .then_expect_error(wrong.clone());
    given(vec![opened()])
        .when(purchase(pi(1), usd(5 * D), eur(D)))
        .then_expect_error(wrong);
}

#[test]
fn purchase_needs_a_positive_payment_and_a_bonus_not_below_zero() {
    given(vec![opened()])
        .when(purchase(pi(1), usd(0), usd(D)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(0)));
    given(vec![opened()])
        .when(purchase(pi(1), usd(-D), usd(0)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(-D)));
    given(vec![opened()])
        .when(purchase(pi(1), usd(D), usd(-1)))
        .then_expect_error(AccountError::AmountMustBePositive(usd(-1)));
}

#[test]
fn purchases_are_recorded_on_banned_and_frozen_accounts() {
    let mut banned_account = funded(D);
    banned_account.push(banned("chargeback fraud"));
    given(banned_account)
        .when(purchase(pi(2), usd(3 * D), usd(0)))
        .then_expect_events(vec![purchased(pi(2), 3 * D, 0)]);

    let mut frozen_account = funded(D);
    frozen_account.push(frozen(FreezeReason::Fraud, "review"));
    given(frozen_account)
        .when(purchase(pi(2), usd(3 * D), usd(0)))
        .then_expect_events(vec![purchased(pi(2), 3 * D, 0)]);
}

// ---- GrantCredit ----

#[test]
fn grant_moves_the_amount_from_promotions_to_available() {
    given(funded(5 * D))
        .when(grant(1, usd(2 * D), "  welcome  "))
        .then_expect_events(vec![granted(
            1,
            2 * D,
            "welcome",
            lines(&[(PROMOTIONS, -2 * D), (AVAILABLE, 2 * D)]),
        )]);
}

#[test]
fn grant_pays_what_is_owed_first() {
    given(owing(3 * D, "3.000000 USD"))
        .when(grant(1, usd(5 * D), "welcome"))
        .then_expect_events(vec![
            granted(
                1,
                5 * D,
                "welcome",
                lines(&[(PROMOTIONS, -5 * D), (RECEIVABLE, 3 * D), (AVAILABLE, 2 * D)]),
            ),
            receivable_lifted(),
        ]);
}

#[test]
fn banned_accounts_are_not_granted_credit() {
    let mut events = funded(D);
    events.push(banned("abuse"));
    given(events)
        .when(grant(1, usd(D), "welcome"))
        .then_expect_error(AccountError::Banned);
}

#[test]
fn grant_refuses_bad_amounts() {
    given(funded(D))
        .when(grant(1, eur(D), "welcome"))
        .then_expect_error(AccountError::WrongCurrency {
            expected: USD,
            got: EUR,
        });
    given(funded(D))
        .when(grant(1, usd(0), "welcome"))
        .then_expect_error(AccountError::AmountMustBePositive(usd(0)));
    given(funded(D))
        .when(grant(1, usd(-5), "welcome"))
        .then_expect_error(AccountError::AmountMustBePositive(usd(-5)));
}

#[test]
fn grant_needs_a_promotion_name_of_bounded_length() {
    given(funded(D))
        .when(grant(1, usd(D), "   "))
        .then_expect_error(AccountError::MissingText("promotion"));
    given(funded(D))
        .when(grant(1, usd(D), &too_long()))
        .then_expect_error(AccountError::TextTooLong {
            field: "promotion",
            max: MAX_TEXT_CHARS,
        });
    let longest = "p".repeat(MAX_TEXT_CHARS);
    given(funded(D))
        .when(grant(1, usd(D), &longest))
        .then_expect_events(vec![granted(
            1,
            D,
            &longest,
            lines(&[(PROMOTIONS, -D), (AVAILABLE, D)]),
        )]);
}

// ---- AdjustCredit ----

#[test]
fn positive_adjustment_moves_money_from_adjustments_to_available() {
    given(funded(5 * D))
        .when(adjust(usd(3 * D), "goodwill"))
        .then_expect_events(vec![adjusted(
            3 * D,
            "goodwill",
            lines(&[(ADJUSTMENTS, -3 * D), (AVAILABLE, 3 * D)]),
        )]);
}

#[test]
fn re_rating_refund_names_the_call_and_the_correction() {
    let command = AccountCommand::AdjustCredit {
        amount: usd(120_000),
        reason: "re-rated".to_owned(),
        actor: admin(),
        call_id: Some(call(4)),
        correction: Some("rate 0.02 -> 0.01 per minute".to_owned()),
    };
    given(funded(D))
        .when(command)
        .then_expect_events(vec![AccountEvent::CreditAdjusted {
            amount: usd(120_000),
            reason: "re-rated".to_owned(),
            actor: admin(),
            call_id: Some(call(4)),
            correction: Some("rate 0.02 -> 0.01 per minute".to_owned()),
            postings: lines(&[(ADJUSTMENTS, -120_000), (AVAILABLE, 120_000)]),
        }]);
}

#[test]
fn negative_adjustment_takes_from_available_down_to_exactly_zero() {
    given(funded(5 * D))
        .when(adjust(usd(-2 * D), "duplicate credit"))
        .then_expect_events(vec![adjusted(
            -2 * D,
            "duplicate credit",
            lines(&[(AVAILABLE, -2 * D), (ADJUSTMENTS, 2 * D)]),
        )]);
    given(funded(5 * D))
        .when(adjust(usd(-5 * D), "duplicate credit"))
        .then_expect_events(vec![adjusted(
            -5 * D,
            "duplicate credit",
            lines(&[(AVAILABLE, -5 * D), (ADJUSTMENTS, 5 * D)]),
        )]);
}

#[test]
fn negative_adjustment_never_takes_available_below_zero() {
    given(funded(5 * D))
        .when(adjust(usd(-5 * D - 1), "typo"))
        .then_expect_error(AccountError::AdjustmentExceedsAvailable {
            available: usd(5 * D),
            requested: usd(5 * D + 1),
        });
    // Reserved money is not available: it cannot be adjusted away either.
    let mut events = funded(5 * D);
    events.push(reserved(res(1), call(1), 4 * D));
    given(events).when(adjust(usd(-2 * D), "typo")).then_expect_error(
        AccountError::AdjustmentExceedsAvailable {
            available: usd(D),
            requested: usd(2 * D),
        },
    );
}

#[test]
fn positive_adjustment_pays_what_is_owed_first() {
    given(owing(3 * D, "3.000000 USD"))
        .when(adjust(usd(D), "goodwill"))
        .then_expect_events(vec![adjusted(
            D,
            "goodwill",
            lines(&[(ADJUSTMENTS, -D), (RECEIVABLE, D)]),
        )]);
}

#[test]
fn adjustment_refuses_zero_and_other_currencies() {
    given(funded(D))
        .when(adjust(usd(0), "nothing"))
        .then_expect_error(AccountError::AmountMustBePositive(usd(0)));
    let wrong = AccountError::WrongCurrency {
        expected: USD,
        got: EUR,
    };
    given(funded(D))
        .when(adjust(eur(D), "goodwill"))
        .then_expect_error(wrong.clone());
    given(funded(D))
        .when(adjust(eur(-D), "goodwill"))
        .then_expect_error(wrong);
}

#[test]
fn adjustment_needs_a_reason_and_bounded_texts() {
    given(funded(D))
        .when(adjust(usd(D), " \t "))
        .then_expect_error(AccountError::MissingText("reason"));
    given(funded(D))
        .when(adjust(usd(D), &too_long()))
        .then_expect_error(AccountError::TextTooLong {
            field: "reason",
            max: MAX_TEXT_CHARS,
        });
    let with_correction = |correction: String| AccountCommand::AdjustCredit {
        amount: usd(D),
        reason: "re-rated".to_owned(),
        actor: admin(),
        call_id: Some(call(1)),
        correction: Some(correction),
    };
    given(funded(D))
        .when(with_correction(" ".to_owned()))
        .then_expect_error(AccountError::MissingText("correction"));
    given(funded(D))
        .when(with_correction(too_long()))
        .then_expect_error(AccountError::TextTooLong {
            field: "correction",
            max: MAX_TEXT_CHARS,
        });
}
