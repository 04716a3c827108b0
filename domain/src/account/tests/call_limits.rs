//! `ReserveCallCredit`: the call limits decided on the Account's own state. A call's first
//! reservation is refused once as many calls as allowed hold reservations; any reservation is
//! refused past what the daily spend cap leaves of the day's spend, which counts what calls
//! reserved that day and did not get back (released, or unused at settlement).

use chrono::NaiveDate;

use super::support::*;
use crate::account::CallCreditLimits;

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, d).expect("a date")
}

fn limits(max_live_calls: u32, cap: i64, d: u32) -> CallCreditLimits {
    CallCreditLimits {
        max_live_calls,
        daily_spend_cap: usd(cap),
        day: day(d),
    }
}

fn reserve_within(n: u128, call_id: CallId, amount: i64, limits: CallCreditLimits) -> AccountCommand {
    AccountCommand::ReserveCallCredit {
        reservation_id: res(n),
        call_id,
        amount: usd(amount),
        limits,
    }
}

fn reserved_on(n: u128, call_id: CallId, amount: i64, d: u32) -> AccountEvent {
    AccountEvent::CreditReserved {
        reservation_id: res(n),
        call_id,
        amount: usd(amount),
        postings: lines(&[(AVAILABLE, -amount), (RESERVED, amount)]),
        day: Some(day(d)),
    }
}

/// Two calls hold reservations (one of them two).
fn two_live_calls() -> Vec<AccountEvent> {
    with(
        funded(100 * D),
        vec![
            reserved_on(1, call(1), D, 25),
            reserved_on(2, call(1), D, 25),
            reserved_on(3, call(2), D, 25),
        ],
    )
}

#[test]
fn a_first_reservation_past_the_concurrent_calls_limit_is_refused_and_names_it() {
    given(two_live_calls())
        .when(reserve_within(4, call(3), D, limits(2, 50 * D, 25)))
        .then_expect_error(AccountError::ConcurrentCalls { limit: 2 });
    given(two_live_calls())
        .when(reserve_within(4, call(3), D, limits(3, 50 * D, 25)))
        .then_expect_events(vec![reserved_on(4, call(3), D, 25)]);
    let message = AccountError::ConcurrentCalls { limit: 2 }.to_string();
    assert!(message.contains("max_concurrent_calls = 2"), "{message}");
}

#[test]
fn a_live_call_may_take_another_grant_at_the_limit() {
    given(two_live_calls())
        .when(reserve_within(4, call(2), D, limits(2, 50 * D, 25)))
        .then_expect_events(vec![reserved_on(4, call(2), D, 25)]);
}

#[test]
fn a_settled_call_no_longer_counts_as_live() {
    let settle = settled(
        call(2),
        vec![res(3)],
        D,
        D / 2,
        lines(&[(RESERVED, -D), (REVENUE, D / 2), (AVAILABLE, D / 2)]),
    );
    given(with(two_live_calls(), vec![settle]))
        .when(reserve_within(4, call(3), D, limits(2, 50 * D, 25)))
        .then_expect_events(vec![reserved_on(4, call(3), D, 25)]);
}

#[test]
fn the_daily_cap_counts_what_calls_hold_and_were_charged_today() {
    // $3 held today; a $2 cap leaves nothing, a $4 cap leaves $1.
    given(two_live_calls())
        .when(reserve_within(4, call(2), D, limits(5, 3 * D, 25)))
        .then_expect_error(AccountError::DailySpendCap {
            cap: usd(3 * D),
            spent: usd(3 * D),
            left: usd(0),
            requested: usd(D),
        });
    given(two_live_calls())
        .when(reserve_within(4, call(2), 2 * D, limits(5, 4 * D, 25)))
        .then_expect_error(AccountError::DailySpendCap {
            cap: usd(4 * D),
            spent: usd(3 * D),
            left: usd(D),
            requested: usd(2 * D),
        });
    given(two_live_calls())
        .when(reserve_within(4, call(2), D, limits(5, 4 * D, 25)))
        .then_expect_events(vec![reserved_on(4, call(2), D, 25)]);
}

#[test]
fn a_new_day_starts_from_zero() {
    given(two_live_calls())
        .when(reserve_within(4, call(2), 3 * D, limits(5, 3 * D, 26)))
        .then_expect_events(vec![reserved_on(4, call(2), 3 * D, 26)]);
    let account = state_after(&two_live_calls());
    assert_eq!(account.spent_on(day(25)), usd(3 * D));
    assert_eq!(account.spent_on(day(26)), usd(0));
}

#[test]
fn settlement_and_release_give_back_what_was_not_charged() {
    // Call 1 holds $2 and is charged $0.50: $1.50 comes back; call 2's $1 is released.
    let events = with(
        two_live_calls(),
        vec![
            settled(
                call(1),
                vec![res(1), res(2)],
                2 * D,
                D / 2,
                lines(&[(RESERVED, -2 * D), (REVENUE, D / 2), (AVAILABLE, 3 * D / 2)]),
            ),
            released(
                res(3),
                call(2),
                D,
                ReleaseReason::Unused,
                lines(&[(RESERVED, -D), (AVAILABLE, D)]),
            ),
        ],
    );
    let account = state_after(&events);
    assert_eq!(account.spent_on(day(25)), usd(D / 2));
    assert_eq!(account.live_calls(), 0);
}

#[test]
fn a_call_across_midnight_is_charged_from_yesterday_first() {
    // $1 reserved on the 25th, $1 on the 26th, charged $1.20: the 26th keeps $0.20.
    let events = with(
        funded(100 * D),
        vec![
            reserved_on(1, call(1), D, 25),
            reserved_on(2, call(1), D, 26),
            settled(
                call(1),
                vec![res(1), res(2)],
                2 * D,
                1_200_000,
                lines(&[(RESERVED, -2 * D), (REVENUE, 1_200_000), (AVAILABLE, 800_000)]),
            ),
        ],
    );
    assert_eq!(state_after(&events).spent_on(day(26)), usd(200_000));
}

#[test]
fn plain_reservations_are_not_held_to_call_limits() {
    given(two_live_calls())
        .when(reserve(res(4), call(3), usd(D)))
        .then_expect_events(vec![reserved(res(4), call(3), D)]);
}
