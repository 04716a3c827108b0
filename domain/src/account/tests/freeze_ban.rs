//! Freezes (frozen while any reason stands; the receivable reason belongs to the ledger) and
//! bans (no reservations, no grants, purchases still recorded).

use super::support::*;

#[test]
fn freeze_records_reason_actor_and_trimmed_note() {
    given(funded(D))
        .when(freeze(FreezeReason::Fraud, "  card testing  "))
        .then_expect_events(vec![frozen(FreezeReason::Fraud, "card testing")]);
    given(funded(D))
        .when(freeze(FreezeReason::Admin, "   "))
        .then_expect_events(vec![frozen(FreezeReason::Admin, "")]);
    let by_a_rule = AccountCommand::Freeze {
        reason: FreezeReason::Dispute,
        actor: None,
        note: "manual".to_owned(),
    };
    given(funded(D))
        .when(by_a_rule)
        .then_expect_events(vec![AccountEvent::AccountFrozen {
            reason: FreezeReason::Dispute,
            actor: None,
            note: "manual".to_owned(),
        }]);
}

#[test]
fn a_reason_is_frozen_once() {
    given(with(funded(D), vec![frozen(FreezeReason::Fraud, "x")]))
        .when(freeze(FreezeReason::Fraud, "again"))
        .then_expect_error(AccountError::AlreadyFrozen(FreezeReason::Fraud));
}

#[test]
fn the_receivable_reason_cannot_be_set_or_lifted_by_hand() {
    given(funded(D))
        .when(freeze(FreezeReason::Receivable, "owes"))
        .then_expect_error(AccountError::ReceivableReasonIsAutomatic);
    given(owing(D, "1.000000 USD"))
        .when(unfreeze(FreezeReason::Receivable, "forgiven"))
        .then_expect_error(AccountError::ReceivableReasonIsAutomatic);
}

#[test]
fn unfreeze_lifts_a_standing_reason_only() {
    given(with(funded(D), vec![frozen(FreezeReason::Admin, "kyc")]))
        .when(unfreeze(FreezeReason::Admin, "kyc done"))
        .then_expect_events(vec![unfrozen(FreezeReason::Admin, "kyc done")]);
    given(with(funded(D), vec![frozen(FreezeReason::Admin, "kyc")]))
        .when(unfreeze(FreezeReason::Fraud, ""))
        .then_expect_error(AccountError::NotFrozenFor(FreezeReason::Fraud));
}

#[test]
fn freeze_notes_are_bounded() {
    let too_long_error = AccountError::TextTooLong {
        field: "note",
        max: MAX_TEXT_CHARS,
    };
    given(funded(D))
        .when(freeze(FreezeReason::Admin, &too_long()))
        .then_expect_error(too_long_error.clone());
    given(with(funded(D), vec![frozen(FreezeReason::Admin, "kyc")]))
        .when(unfreeze(FreezeReason::Admin, &too_long()))
        .then_expect_error(too_long_error);
}

#[test]
fn the_account_stays_frozen_while_any_reason_stands() {
    let events = with(
        funded(5 * D),
        vec![
            frozen(FreezeReason::Fraud, "card testing"),
            frozen(FreezeReason::Admin, "kyc"),
            unfrozen(FreezeReason::Admin, "kyc done"),
        ],
    );
    assert_eq!(
        state_after(&events)
            .frozen_reasons()
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![FreezeReason::Fraud]
    );
    given(events.clone())
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_error(AccountError::Frozen(vec![FreezeReason::Fraud]));

    let cleared = with(events, vec![unfrozen(FreezeReason::Fraud, "false alarm")]);
    given(cleared)
        .when(reserve(res(1), call(1), usd(D)))
        .then_expect_events(vec![reserved(res(1), call(1), D)]);
}

#[test]
fn ban_records_actor_and_trimmed_reason() {
    given(funded(D))
        .when(ban(" chargebacks "))
        .then_expect_events(vec![banned("chargebacks")]);
    assert!(state_after(&with(funded(D), vec![banned("chargebacks")])).is_banned());
}

#[test]
fn an_account_is_banned_once() {
    given(with(funded(D), vec![banned("x")]))
        .when(ban("again"))
        .then_expect_error(AccountError::AlreadyBanned);
}

#[test]
fn a_ban_needs_a_bounded_reason() {
    given(funded(D))
        .when(ban(""))
        .then_expect_error(AccountError::MissingText("reason"));
    given(funded(D))
        .when(ban(&too_long()))
        .then_expect_error(AccountError::TextTooLong {
            field: "reason",
            max: MAX_TEXT_CHARS,
        });
}

#[test]
fn a_ban_outranks_a_freeze_when_reserving() {
    given(with(
        funded(D),
        vec![frozen(FreezeReason::Fraud, "x"), banned("fraud")],
    ))
    .when(reserve(res(1), call(1), usd(D)))
    .then_expect_error(AccountError::Banned);
}
