//! Property tests: random sequences of up to 60 commands run through the aggregate with refused
//! commands skipped, checked after every step (see `ledger_model`); and the bonus share of
//! cumulative refunds.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};

use super::ledger_model::run;
use super::sequences::sequence;
use super::support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_command_sequences_keep_the_ledger_whole(ops in sequence()) {
        run(&ops)?;
    }
}

/// Guards against a vacuous property: the generator must reach every event, the interesting
/// posting paths and every refusal a small id pool can reach (`TooManyReservations` needs 256
/// open reservations; the given/when tests cover it).
#[test]
fn the_generated_sequences_reach_every_event_and_refusal() {
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let ops = sequence().new_tree(&mut runner).expect("a sequence").current();
        let done = run(&ops).unwrap_or_else(|e| panic!("{e}\n{ops:#?}"));
        for (name, count) in done.seen {
            *seen.entry(name).or_default() += count;
        }
    }
    let expected_events = [
        "AccountOpened",
        "CreditPurchased",
        "CreditGranted",
        "CreditAdjusted",
        "CreditReserved",
        "ReservationSettled",
        "ReservationReleased",
        "PaymentRefunded",
        "DisputeOpened",
        "DisputeWon",
        "DisputeLost",
        "AccountFrozen",
        "AccountUnfrozen",
        "AccountBanned",
    ];
    let expected_refusals = [
        "NotOpened",
        "AlreadyOpened",
        "Banned",
        "Frozen",
        "InsufficientFunds",
        "WrongCurrency",
        "AmountMustBePositive",
        "AdjustmentExceedsAvailable",
        "DuplicatePayment",
        "UnknownPayment",
        "RefundExceedsPayment",
        "DuplicateReservation",
        "UnknownReservation",
        "NothingReservedForCall",
        "DuplicateDispute",
        "UnknownDispute",
        "DisputeExceedsPayment",
        "AlreadyFrozen",
        "NotFrozenFor",
        "ReceivableReasonIsAutomatic",
        "AlreadyBanned",
        "MissingText",
        "TextTooLong",
        "Overflow",
    ];
    let expected_paths = [
        "settled with overrun",
        "receivable freeze set",
        "receivable freeze lifted",
        "dispute freeze lifted",
        "bonus reversed",
        "money arriving paid a debt",
    ];
    let wanted = expected_events
        .iter()
        .chain(expected_paths.iter())
        .map(|e| e.to_string())
        .chain(expected_refusals.iter().map(|r| format!("refused {r}")));
    let missing: Vec<String> = wanted.filter(|w| seen.get(w).copied().unwrap_or(0) < 3).collect();
    assert!(
        missing.is_empty(),
        "never (or rarely) reached: {missing:?}\nseen: {seen:#?}"
    );
}

proptest! {
    /// However Stripe's cumulative totals arrive, the bonus reversed adds up to the same
    /// fraction of the bonus, rounded down, and a full refund reverses all of it.
    #[test]
    fn bonus_reversals_add_up_to_the_refunded_fraction(
        paid in 1i64..=1_000_000_000_000,
        bonus in 0i64..=1_000_000_000_000,
        shares in proptest::collection::vec(0u32..=1_000, 1..8),
        finish in any::<bool>(),
    ) {
        let mut totals: Vec<i64> = shares.iter().map(|s| (i128::from(paid) * i128::from(*s) / 1_000) as i64).collect();
        if finish {
            totals.push(paid);
        }
        let mut account = state_after(&[opened(), purchased(pi(1), paid, bonus)]);
        let mut reversed: i128 = 0;
        for total in &totals {
            for event in account.decide(&refund(pi(1), usd(*total))).map_err(|e| TestCaseError::fail(e.to_string()))? {
                if let AccountEvent::PaymentRefunded { bonus_reversed, .. } = &event {
                    prop_assert!(!bonus_reversed.is_negative());
                    reversed += i128::from(bonus_reversed.micros());
                }
                account.fold(&event);
            }
        }
        let highest = i128::from(*totals.iter().max().unwrap_or(&0));
        prop_assert_eq!(reversed, i128::from(bonus) * highest / i128::from(paid));
        if finish {
            prop_assert_eq!(reversed, i128::from(bonus));
        }
        prop_assert_eq!(i128::from(account.balances().available), i128::from(paid + bonus) - highest - reversed);
    }
}
