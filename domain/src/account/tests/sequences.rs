//! Random command sequences for the property tests: small pools of ids (payments, reservations,
//! calls, disputes), amounts small and huge, shares of what is at stake, zero, negative or in
//! the wrong currency, and texts blank or too long. It never steers away from refusals.

use proptest::prelude::*;

use super::support::*;

const PAYMENTS: u32 = 3;
const RESERVATIONS: u128 = 5;
const CALLS: u128 = 3;
const DISPUTES: u32 = 2;
const REASONS: [FreezeReason; 4] = [
    FreezeReason::Fraud,
    FreezeReason::Dispute,
    FreezeReason::Admin,
    FreezeReason::Receivable,
];

/// An amount as generated: absolute, or a share of what the command relates to (what is
/// available, what a payment paid, what a call holds), so that sequences reach the edges.
#[derive(Debug, Clone)]
pub(super) enum Amount {
    Micros(i64),
    Eighths(u8),
    Zero,
    Negative(i64),
    Euros(i64),
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Text {
    Fine,
    Blank,
    TooLong,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Open,
    Purchase {
        payment: u32,
        paid: Amount,
        bonus: Amount,
    },
    Grant {
        amount: Amount,
        text: Text,
    },
    Adjust {
        amount: Amount,
        take: bool,
        text: Text,
        rerating: Option<u128>,
    },
    Reserve {
        reservation: u128,
        call: u128,
        amount: Amount,
    },
    Settle {
        call: u128,
        cost: Amount,
    },
    Release {
        reservation: u128,
    },
    Refund {
        payment: u32,
        total: Amount,
    },
    OpenDispute {
        dispute: u32,
        payment: u32,
        amount: Amount,
    },
    WinDispute {
        dispute: u32,
    },
    LoseDispute {
        dispute: u32,
    },
    Freeze {
        reason: usize,
        text: Text,
    },
    Unfreeze {
        reason: usize,
        text: Text,
    },
    Ban {
        text: Text,
    },
}

fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        4 => prop_oneof![1i64..=1_000, 1i64..=10_000_000, 1i64..=10_000_000_000_000].prop_map(Amount::Micros),
        1 => (i64::MAX / 4..=i64::MAX).prop_map(Amount::Micros),
        5 => (0u8..=12).prop_map(Amount::Eighths),
        1 => Just(Amount::Zero),
        1 => (1i64..=1_000_000_000).prop_map(Amount::Negative),
        1 => (1i64..=10_000_000).prop_map(Amount::Euros),
    ]
}

fn text() -> impl Strategy<Value = Text> {
    prop_oneof![10 => Just(Text::Fine), 1 => Just(Text::Blank), 1 => Just(Text::TooLong)]
}

fn op() -> impl Strategy<Value = Op> {
    let payment = 0..PAYMENTS;
    let reservation = 0..RESERVATIONS;
    let call = 0..CALLS;
    let dispute = 0..DISPUTES;
    prop_oneof![
        2 => Just(Op::Open),
        24 => (payment.clone(), amount(), prop_oneof![3 => Just(Amount::Zero), 2 => amount()])
            .prop_map(|(payment, paid, bonus)| Op::Purchase { payment, paid, bonus }),
        8 => (amount(), text()).prop_map(|(amount, text)| Op::Grant { amount, text }),
        8 => (amount(), any::<bool>(), text(), proptest::option::of(call.clone()))
            .prop_map(|(amount, take, text, rerating)| Op::Adjust { amount, take, text, rerating }),
        36 => (reservation.clone(), call.clone(), amount())
            .prop_map(|(reservation, call, amount)| Op::Reserve { reservation, call, amount }),
        24 => (call, amount()).prop_map(|(call, cost)| Op::Settle { call, cost }),
        12 => reservation.prop_map(|reservation| Op::Release { reservation }),
        16 => (payment.clone(), amount()).prop_map(|(payment, total)| Op::Refund { payment, total }),
        12 => (dispute.clone(), payment, amount())
            .prop_map(|(dispute, payment, amount)| Op::OpenDispute { dispute, payment, amount }),
        10 => dispute.clone().prop_map(|dispute| Op::WinDispute { dispute }),
        5 => dispute.prop_map(|dispute| Op::LoseDispute { dispute }),
        5 => (0..REASONS.len(), text()).prop_map(|(reason, text)| Op::Freeze { reason, text }),
        16 => (0..REASONS.len(), text()).prop_map(|(reason, text)| Op::Unfreeze { reason, text }),
        1 => text().prop_map(|text| Op::Ban { text }),
    ]
}

/// Mostly sequences on an opened account; sometimes the account is never opened first.
pub(super) fn sequence() -> impl Strategy<Value = Vec<Op>> {
    (
        proptest::bool::weighted(0.95),
        proptest::collection::vec(op(), 0..=60),
    )
        .prop_map(|(open_first, mut ops)| {
            if open_first {
                ops.insert(0, Op::Open);
            }
            ops
        })
}

fn money_of(amount: &Amount, base: i64) -> Money {
    match amount {
        Amount::Micros(m) => usd(*m),
        Amount::Eighths(k) => {
            usd((i128::from(base) * i128::from(*k) / 8).clamp(0, i128::from(i64::MAX)) as i64)
        }
        Amount::Zero => usd(0),
        Amount::Negative(m) => usd(-m),
        Amount::Euros(m) => eur(*m),
    }
}

fn text_of(text: Text, fine: &str) -> String {
    match text {
        Text::Fine => fine.to_owned(),
        Text::Blank => "  ".to_owned(),
        Text::TooLong => too_long(),
    }
}

/// Turns a generated operation into a concrete command, reading the current state only to
/// size shares (never to avoid refusals).
pub(super) fn command_for(op: &Op, account: &Account) -> AccountCommand {
    let available = account.balances().available;
    let paid_by = |payment: u32| {
        account
            .payments
            .get(&pi(payment))
            .map_or(10 * D, |t| t.paid_micros)
    };
    let held_for = |c: u128| -> i64 {
        account
            .open_reservations()
            .values()
            .filter(|r| r.call_id == call(c))
            .map(|r| r.amount_micros)
            .sum()
    };
    match op {
        Op::Open => open_cmd(),
        Op::Purchase { payment, paid, bonus } => {
            purchase(pi(*payment), money_of(paid, 10 * D), money_of(bonus, 2 * D))
        }
        Op::Grant { amount, text } => grant(0, money_of(amount, D), &text_of(*text, "welcome")),
        Op::Adjust {
            amount,
            take,
            text,
            rerating,
        } => {
            let mut amount = money_of(amount, if *take { available } else { D });
            if *take {
                amount = Money::from_micros(-amount.micros(), amount.currency());
            }
            AccountCommand::AdjustCredit {
                amount,
                reason: text_of(*text, "correction"),
                actor: admin(),
                call_id: rerating.map(call),
                correction: rerating.map(|_| "re-rated".to_owned()),
            }
        }
        Op::Reserve {
            reservation,
            call: c,
            amount,
        } => reserve(res(*reservation), call(*c), money_of(amount, available)),
        Op::Settle { call: c, cost } => settle(call(*c), money_of(cost, held_for(*c))),
        Op::Release { reservation } => release(res(*reservation), ReleaseReason::CallEnded),
        Op::Refund { payment, total } => refund(pi(*payment), money_of(total, paid_by(*payment))),
        Op::OpenDispute {
            dispute,
            payment,
            amount,
        } => open_dispute(dp(*dispute), pi(*payment), money_of(amount, paid_by(*payment))),
        Op::WinDispute { dispute } => win(dp(*dispute)),
        Op::LoseDispute { dispute } => lose(dp(*dispute)),
        Op::Freeze { reason, text } => freeze(REASONS[*reason], &text_of(*text, "review")),
        Op::Unfreeze { reason, text } => unfreeze(REASONS[*reason], &text_of(*text, "cleared")),
        Op::Ban { text } => ban(&text_of(*text, "abuse")),
    }
}
