//! Payment: which reports are news, and the plan the process manager runs on the Account.
//! The property test delivers one payment's Stripe reports in every order, with repeats,
//! running the plan after each delivery as the webhook job does, and checks the Account ends
//! with the same balances and freezes every time, equal to the postings worked out by hand.

use std::collections::HashSet;

use proptest::prelude::*;

use crate::account::{Account, AccountCommand, FreezeReason};
use crate::ids::{AccountId, ChargeId, CheckoutSessionId, DisputeId, PaymentId};
use crate::money::{Currency, Money};
use crate::payment::*;

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}
fn account() -> AccountId {
    AccountId(uuid::Uuid::from_u128(7))
}
fn pi() -> PaymentId {
    PaymentId::parse("pi_1").unwrap()
}
fn cs() -> CheckoutSessionId {
    CheckoutSessionId::parse("cs_1").unwrap()
}
fn ch() -> ChargeId {
    ChargeId::parse("ch_1").unwrap()
}
fn dp(n: u32) -> DisputeId {
    DisputeId::parse(&format!("dp_{n}")).unwrap()
}

fn paid(micros: i64, bonus_bps: u32) -> PaymentCommand {
    PaymentCommand::RecordCheckoutPaid {
        checkout_session_id: cs(),
        terms: CheckoutTerms {
            account_id: account(),
            tier: "t25".to_owned(),
            terms_version: 3,
            bonus_bps,
        },
        paid: usd(micros),
    }
}
fn refund(total: i64) -> PaymentCommand {
    PaymentCommand::RecordRefund {
        charge_id: ch(),
        refunded_total: usd(total),
    }
}
fn dispute(n: u32, amount: i64, status: DisputeStatus) -> PaymentCommand {
    PaymentCommand::RecordDispute {
        dispute_id: dp(n),
        charge_id: ch(),
        amount: usd(amount),
        reason: "fraudulent".to_owned(),
        status,
    }
}

fn run(payment: &mut Payment, command: &PaymentCommand) -> Vec<PaymentEvent> {
    let events = payment.decide(command).expect("decides");
    for e in &events {
        payment.fold(e);
    }
    events
}

#[test]
fn paid_records_the_bonus_rounded_down_and_a_repeat_is_no_news() {
    let mut p = Payment::default();
    // 5 % of 10.000001 = 0.50000005 -> 0.500000
    let events = run(&mut p, &paid(10_000_001, 500));
    match &events[..] {
        [PaymentEvent::PaymentSucceeded { paid, bonus, .. }] => {
            assert_eq!((paid.micros(), bonus.micros()), (10_000_001, 500_000));
        }
        other => panic!("{other:?}"),
    }
    assert!(run(&mut p, &paid(10_000_001, 500)).is_empty());
    assert!(matches!(
        p.decide(&paid(9_000_000, 500)),
        Err(PaymentError::AmountChanged { .. })
    ));
    assert!(p
        .decide(&PaymentCommand::RecordCheckoutFailed {
            checkout_session_id: cs(),
            reason: FailureReason::Expired
        })
        .unwrap()
        .is_empty());
}

#[test]
fn refunds_are_cumulative_and_stale_totals_are_no_news() {
    let mut p = Payment::default();
    run(&mut p, &paid(10_000_000, 0));
    assert_eq!(run(&mut p, &refund(4_000_000)).len(), 1);
    assert!(run(&mut p, &refund(4_000_000)).is_empty());
    assert!(run(&mut p, &refund(3_000_000)).is_empty());
    assert_eq!(run(&mut p, &refund(6_000_000)).len(), 1);
    assert!(matches!(
        p.decide(&refund(10_000_001)),
        Err(PaymentError::RefundExceedsPayment { .. })
    ));
}

#[test]
fn a_refund_before_the_purchase_waits_and_the_plan_puts_the_purchase_first() {
    let mut p = Payment::default();
    run(&mut p, &refund(2_000_000));
    assert!(account_steps(&pi(), &p).is_empty(), "nothing to credit yet");
    run(&mut p, &paid(10_000_000, 1_000));
    let steps = account_steps(&pi(), &p);
    assert_eq!(steps.len(), 2);
    assert!(matches!(steps[0].command, AccountCommand::PurchaseCredit { .. }));
    assert_eq!(steps[0].idempotency_key, "payment:pi_1:2");
    assert!(matches!(steps[1].command, AccountCommand::RecordRefund { .. }));
    assert_eq!(steps[1].idempotency_key, "payment:pi_1:1");
}

#[test]
fn a_dispute_closed_before_it_was_seen_opens_and_closes_it() {
    let mut p = Payment::default();
    run(&mut p, &paid(10_000_000, 0));
    let events = run(&mut p, &dispute(1, 10_000_000, DisputeStatus::Won));
    assert!(matches!(
        &events[..],
        [
            PaymentEvent::DisputeOpened { .. },
            PaymentEvent::DisputeClosed { won: true, .. }
        ]
    ));
    assert!(run(&mut p, &dispute(1, 10_000_000, DisputeStatus::Open)).is_empty());
    assert!(run(&mut p, &dispute(1, 10_000_000, DisputeStatus::Lost)).is_empty());
}

#[test]
fn refusals() {
    let p = Payment::default();
    assert!(matches!(
        p.decide(&paid(0, 0)),
        Err(PaymentError::AmountMustBePositive(_))
    ));
    assert!(matches!(
        p.decide(&paid(1, 10_001)),
        Err(PaymentError::BonusTooLarge(_))
    ));
    let mut p = Payment::default();
    run(&mut p, &paid(10_000_000, 0));
    let eur = PaymentCommand::RecordRefund {
        charge_id: ch(),
        refunded_total: Money::from_micros(1, Currency::EUR),
    };
    assert!(matches!(p.decide(&eur), Err(PaymentError::WrongCurrency { .. })));
}

/// One payment's Stripe reports: paid 25.00 with a 10 % bonus, refunds of `refunds` (cumulative),
/// and a dispute of `disputed` that is won or lost.
#[derive(Debug, Clone)]
struct Scenario {
    paid: i64,
    bonus_bps: u32,
    refunds: Vec<i64>,
    dispute: Option<(i64, bool)>,
}

impl Scenario {
    fn reports(&self) -> Vec<PaymentCommand> {
        let mut r = vec![paid(self.paid, self.bonus_bps)];
        r.extend(self.refunds.iter().map(|t| refund(*t)));
        if let Some((amount, won)) = self.dispute {
            let closed = if won {
                DisputeStatus::Won
            } else {
                DisputeStatus::Lost
            };
            r.push(dispute(1, amount, DisputeStatus::Open));
            r.push(dispute(1, amount, closed));
        }
        r
    }

    /// The customer's net by hand: paid + bonus - refunded - the same share of the bonus -
    /// a lost dispute.
    fn expected(&self) -> (i64, i64, bool, bool) {
        let refunded = self.refunds.iter().copied().max().unwrap_or(0);
        let bonus = i64::try_from(i128::from(self.paid) * i128::from(self.bonus_bps) / 10_000).unwrap();
        let bonus_back =
            i64::try_from(i128::from(bonus) * i128::from(refunded) / i128::from(self.paid)).unwrap();
        let lost = self.dispute.filter(|(_, won)| !won).map_or(0, |(a, _)| a);
        let net = self.paid + bonus - refunded - bonus_back - lost;
        let dispute_frozen = self.dispute.is_some_and(|(_, won)| !won);
        (net.max(0), net.min(0), net < 0, dispute_frozen)
    }
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        1_000_000i64..100_000_000,
        prop::sample::select(vec![0u32, 500, 1_000, 333]),
    )
        .prop_flat_map(|(paid, bonus_bps)| {
            let refunds = prop::collection::vec(0..=paid, 0..3);
            let dispute = prop::option::of((1..=paid, any::<bool>()));
            (Just(paid), Just(bonus_bps), refunds, dispute)
        })
        .prop_map(|(paid, bonus_bps, mut refunds, dispute)| {
            refunds.retain(|r| *r > 0);
            // Stripe never lets a dispute and refunds together exceed the charge.
            let dispute = dispute.map(|(amount, won)| {
                let left = paid - refunds.iter().copied().max().unwrap_or(0);
                (amount.min(left), won)
            });
            let dispute = dispute.filter(|(amount, _)| *amount > 0);
            Scenario {
                paid,
                bonus_bps,
                refunds,
                dispute,
            }
        })
}

/// Delivers `order` (indexes into the reports, repeats allowed), running the whole plan after
/// each delivery with a set of used keys standing in for the store's idempotency table.
fn deliver(reports: &[PaymentCommand], order: &[usize]) -> Account {
    let mut payment = Payment::default();
    let mut acct = Account::default();
    let open = AccountCommand::OpenAccount {
        account_id: account(),
        currency: Currency::USD,
    };
    for e in acct.decide(&open).unwrap() {
        acct.fold(&e);
    }
    let mut done = HashSet::new();
    for &i in order {
        run(&mut payment, &reports[i]);
        for step in account_steps(&pi(), &payment) {
            if done.insert(step.idempotency_key.clone()) {
                let events = acct.decide(&step.command).expect("the Account accepts each step");
                for e in &events {
                    acct.fold(e);
                }
            }
        }
    }
    acct
}

proptest! {
    #[test]
    fn any_order_and_any_repeats_give_the_same_ledger(
        s in scenario(),
        seed in any::<u64>(),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let reports = s.reports();
        let mut order: Vec<usize> = (0..reports.len()).collect();
        order.extend(repeats.iter().map(|ix| ix.index(reports.len())));
        // A seeded Fisher-Yates shuffle.
        let mut state = seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, usize::try_from(state % (i as u64 + 1)).unwrap());
        }
        let in_order = deliver(&reports, &(0..reports.len()).collect::<Vec<_>>());
        let shuffled = deliver(&reports, &order);
        prop_assert_eq!(shuffled.balances(), in_order.balances());
        prop_assert_eq!(shuffled.frozen_reasons(), in_order.frozen_reasons());
        let b = shuffled.balances();
        let (available, receivable, owes, dispute_frozen) = s.expected();
        prop_assert_eq!((b.available, b.receivable, b.reserved, b.disputed), (available, receivable, 0, 0));
        prop_assert_eq!(shuffled.frozen_reasons().contains(&FreezeReason::Receivable), owes);
        prop_assert_eq!(shuffled.frozen_reasons().contains(&FreezeReason::Dispute), dispute_frozen);
    }
}
