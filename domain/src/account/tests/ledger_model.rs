//! The property tests' checker: runs operations through `decide` + `fold`, through cqrs-es's
//! `handle`, and onto a replica fed JSON round-tripped events, and after every step checks the
//! aggregate against a ledger summed here from the postings alone.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use cqrs_es::event_sink::EventSink;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::sequences::{command_for, Op};
use super::support::*;

/// Drives a future that never waits (cqrs-es's sink uses an uncontended tokio mutex).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("future did not complete without waiting");
}

#[derive(Debug, Clone, Copy)]
struct Terms {
    paid: i64,
    bonus: i64,
    refunded_total: i64,
    bonus_reversed: i64,
}

/// One run: the aggregate three ways (decide + fold, cqrs-es handle, JSON replica), and the
/// test's own ledger built from the postings alone.
#[derive(Default)]
pub(super) struct Run {
    account: Account,
    handled: Account,
    replica: Account,
    history: Vec<AccountEvent>,
    sums: BTreeMap<LedgerAccount, i128>,
    open_reservations: BTreeMap<ReservationId, (CallId, i64)>,
    open_disputes: BTreeMap<DisputeId, i64>,
    payments: BTreeMap<PaymentId, Terms>,
    /// How often each event, refusal and interesting path occurred (see the coverage test).
    pub(super) seen: BTreeMap<String, usize>,
}

fn net(postings: &Postings, account: LedgerAccount) -> i128 {
    postings
        .lines()
        .iter()
        .filter(|l| l.account == account)
        .map(|l| i128::from(l.amount.micros()))
        .sum()
}

impl Run {
    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let command = command_for(op, &self.account);
        let before = self.account.clone();
        let decided = self.account.decide(&command);
        prop_assert_eq!(&self.account, &before);

        let mut handled = self.handled.clone();
        let sink = EventSink::<Account>::default();
        let outcome = block_on(handled.handle(command.clone(), &(), &sink));
        let sunk = block_on(sink.collect());
        let events = match (decided, outcome) {
            (Err(refusal), Err(again)) => {
                prop_assert_eq!(&refusal, &again);
                prop_assert_eq!(
                    &handled,
                    &self.handled,
                    "refused {:?} yet the state changed",
                    command
                );
                prop_assert!(sunk.is_empty());
                *self
                    .seen
                    .entry(format!("refused {}", error_kind(&refusal)))
                    .or_default() += 1;
                return Ok(());
            }
            (Ok(events), Ok(())) => events,
            (decided, outcome) => {
                return Err(TestCaseError::fail(format!(
                    "decide gave {decided:?}, handle gave {outcome:?}"
                )));
            }
        };
        prop_assert_eq!(&events, &sunk);
        self.handled = handled;
        for event in &events {
            self.record(event)?;
        }
        if events
            .iter()
            .any(|e| matches!(e, AccountEvent::DisputeOpened { .. }))
        {
            prop_assert!(
                self.account.frozen_reasons().contains(&FreezeReason::Dispute),
                "an open dispute freezes"
            );
        }
        if events
            .iter()
            .any(|e| matches!(e, AccountEvent::DisputeLost { .. }))
        {
            prop_assert_eq!(events.len(), 1, "a lost dispute lifts no freeze: {:?}", events);
        }
        self.check_state()
    }

    fn record(&mut self, event: &AccountEvent) -> Result<(), TestCaseError> {
        if let Some(postings) = event.postings() {
            prop_assert!(!postings.lines().is_empty());
            prop_assert!(
                postings.lines().iter().all(|l| l.amount.currency() == USD),
                "{:?}",
                event
            );
            let total: i128 = postings
                .lines()
                .iter()
                .map(|l| i128::from(l.amount.micros()))
                .sum();
            prop_assert_eq!(total, 0, "postings of {:?} do not sum to zero", event);
            for line in postings.lines() {
                *self.sums.entry(line.account).or_default() += i128::from(line.amount.micros());
            }
        }
        self.check_event(event)?;
        *self.seen.entry(event.name().to_owned()).or_default() += 1;
        if let Some(path) = interesting_path(event) {
            *self.seen.entry(path.to_owned()).or_default() += 1;
        }

        self.account.fold(event);
        let json = serde_json::to_string(event).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: AccountEvent =
            serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}: {json}")))?;
        prop_assert_eq!(&back, event);
        self.replica.apply(back);
        self.history.push(event.clone());
        Ok(())
    }

    /// What each money event must say, checked against the test's own model.
    fn check_event(&mut self, event: &AccountEvent) -> Result<(), TestCaseError> {
        let moved_reserved = event.postings().map_or(0, |p| net(p, RESERVED));
        match event {
            AccountEvent::CreditPurchased {
                payment_id,
                paid,
                bonus,
                postings,
                ..
            } => {
                prop_assert_eq!(net(postings, STRIPE), -i128::from(paid.micros()));
                prop_assert_eq!(net(postings, PROMOTIONS), -i128::from(bonus.micros()));
                let terms = Terms {
                    paid: paid.micros(),
                    bonus: bonus.micros(),
                    refunded_total: 0,
                    bonus_reversed: 0,
                };
                prop_assert!(
                    self.payments.insert(payment_id.clone(), terms).is_none(),
                    "credited twice"
                );
            }
            AccountEvent::CreditReserved {
                reservation_id,
                call_id,
                amount,
                ..
            } => {
                prop_assert!(!self.account.is_banned(), "reserved on a banned account");
                prop_assert!(self.account.frozen_reasons().is_empty(), "reserved while frozen");
                prop_assert_eq!(moved_reserved, i128::from(amount.micros()));
                let previous = self
                    .open_reservations
                    .insert(*reservation_id, (*call_id, amount.micros()));
                prop_assert!(previous.is_none(), "{:?} reserved while open", reservation_id);
            }
            AccountEvent::ReservationSettled {
                call_id,
                reservation_ids,
                reserved,
                cost,
                charged,
                overrun,
                postings,
            } => {
                let expected: Vec<ReservationId> = self
                    .open_reservations
                    .iter()
                    .filter(|(_, (c, _))| c == call_id)
                    .map(|(id, _)| *id)
                    .collect();
                let mut named = reservation_ids.clone();
                named.sort();
                prop_assert!(!named.is_empty());
                prop_assert_eq!(
                    &named,
                    &expected,
                    "settlement must end exactly the call's open reservations"
                );
                let held: i64 = named.iter().map(|id| self.open_reservations[id].1).sum();
                prop_assert_eq!(reserved.micros(), held);
                prop_assert_eq!(charged.micros(), cost.micros().min(held));
                prop_assert_eq!(overrun.micros(), cost.micros() - charged.micros());
                prop_assert_eq!(moved_reserved, -i128::from(held));
                prop_assert_eq!(net(postings, REVENUE), i128::from(cost.micros()));
                prop_assert_eq!(net(postings, OVERRUN), -i128::from(overrun.micros()));
                let returned = net(postings, AVAILABLE) + net(postings, RECEIVABLE);
                prop_assert_eq!(returned, i128::from(held - charged.micros()));
                for id in &named {
                    self.open_reservations.remove(id);
                }
            }
            AccountEvent::ReservationReleased {
                reservation_id,
                call_id,
                amount,
                ..
            } => {
                let ended = self.open_reservations.remove(reservation_id);
                prop_assert_eq!(
                    ended,
                    Some((*call_id, amount.micros())),
                    "released a reservation that was not open"
                );
                prop_assert_eq!(moved_reserved, -i128::from(amount.micros()));
            }
            AccountEvent::PaymentRefunded {
                payment_id,
                refunded_total,
                refunded,
                bonus_reversed,
                postings,
                ..
            } => {
                let terms = self
                    .payments
                    .get_mut(payment_id)
                    .ok_or_else(|| TestCaseError::fail("unknown payment"))?;
                let total = refunded_total.micros();
                prop_assert!(total > terms.refunded_total && total <= terms.paid);
                prop_assert_eq!(refunded.micros(), total - terms.refunded_total);
                let bonus_share =
                    (i128::from(terms.bonus) * i128::from(total) / i128::from(terms.paid)) as i64;
                prop_assert_eq!(bonus_reversed.micros(), bonus_share - terms.bonus_reversed);
                if total == terms.paid {
                    prop_assert_eq!(bonus_share, terms.bonus, "a full refund reverses the whole bonus");
                }
                prop_assert_eq!(net(postings, STRIPE), i128::from(refunded.micros()));
                prop_assert_eq!(net(postings, PROMOTIONS), i128::from(bonus_reversed.micros()));
                terms.refunded_total = total;
                terms.bonus_reversed = bonus_share;
            }
            AccountEvent::DisputeOpened {
                dispute_id,
                amount,
                postings,
                ..
            } => {
                prop_assert_eq!(net(postings, DISPUTED), i128::from(amount.micros()));
                prop_assert!(self
                    .open_disputes
                    .insert(dispute_id.clone(), amount.micros())
                    .is_none());
            }
            AccountEvent::DisputeWon {
                dispute_id,
                amount,
                postings,
            }
            | AccountEvent::DisputeLost {
                dispute_id,
                amount,
                postings,
            } => {
                prop_assert_eq!(self.open_disputes.remove(dispute_id), Some(amount.micros()));
                prop_assert_eq!(net(postings, DISPUTED), -i128::from(amount.micros()));
                if matches!(event, AccountEvent::DisputeLost { .. }) {
                    prop_assert_eq!(net(postings, STRIPE), i128::from(amount.micros()));
                }
            }
            AccountEvent::CreditGranted { .. } => {
                prop_assert!(!self.account.is_banned(), "granted to a banned account")
            }
            AccountEvent::AccountUnfrozen {
                reason: FreezeReason::Dispute,
                actor: None,
                ..
            } => {
                prop_assert!(
                    self.open_disputes.is_empty(),
                    "the dispute freeze lifted while a dispute is open"
                );
            }
            _ => {}
        }
        if !matches!(
            event,
            AccountEvent::CreditReserved { .. }
                | AccountEvent::ReservationSettled { .. }
                | AccountEvent::ReservationReleased { .. }
        ) {
            prop_assert_eq!(moved_reserved, 0, "{:?} moved reserved money", event);
        }
        Ok(())
    }

    fn check_state(&self) -> Result<(), TestCaseError> {
        let b = self.account.balances();
        let sum = |account: LedgerAccount| self.sums.get(&account).copied().unwrap_or(0);
        prop_assert_eq!(i128::from(b.available), sum(AVAILABLE));
        prop_assert_eq!(i128::from(b.reserved), sum(RESERVED));
        prop_assert_eq!(i128::from(b.receivable), sum(RECEIVABLE));
        prop_assert_eq!(i128::from(b.disputed), sum(DISPUTED));
        prop_assert_eq!(
            self.sums.values().sum::<i128>(),
            0,
            "the whole ledger must balance"
        );
        prop_assert!(
            b.available >= 0 && b.reserved >= 0 && b.disputed >= 0 && b.receivable <= 0,
            "{:?}",
            b
        );
        prop_assert!(
            !(b.available > 0 && b.receivable < 0),
            "money is owed while some is available: {:?}",
            b
        );

        let held: i64 = self.open_reservations.values().map(|(_, a)| a).sum();
        prop_assert_eq!(b.reserved, held);
        let aggregate_held: i64 = self
            .account
            .open_reservations()
            .values()
            .map(|r| r.amount_micros)
            .sum();
        prop_assert_eq!(b.reserved, aggregate_held);
        let ids: BTreeSet<_> = self.account.open_reservations().keys().copied().collect();
        prop_assert_eq!(
            ids,
            self.open_reservations.keys().copied().collect::<BTreeSet<_>>()
        );
        prop_assert_eq!(b.disputed, self.open_disputes.values().sum::<i64>());

        let owes = b.receivable < 0;
        prop_assert_eq!(
            self.account.frozen_reasons().contains(&FreezeReason::Receivable),
            owes
        );
        prop_assert_eq!(&self.account, &self.handled);
        prop_assert_eq!(&self.account, &self.replica);
        Ok(())
    }

    fn replay_matches(&self) -> Result<(), TestCaseError> {
        let mut fresh = Account::default();
        for event in &self.history {
            fresh.apply(event.clone());
        }
        prop_assert_eq!(&fresh, &self.account);
        Ok(())
    }
}

/// Paths of the posting rules worth counting on their own, beyond the event name.
fn interesting_path(event: &AccountEvent) -> Option<&'static str> {
    let postings = event.postings();
    let touches = |account: LedgerAccount| postings.is_some_and(|p| net(p, account) != 0);
    match event {
        AccountEvent::ReservationSettled { overrun, .. } if overrun.is_positive() => {
            Some("settled with overrun")
        }
        AccountEvent::AccountFrozen {
            reason: FreezeReason::Receivable,
            ..
        } => Some("receivable freeze set"),
        AccountEvent::AccountUnfrozen {
            reason: FreezeReason::Receivable,
            ..
        } => Some("receivable freeze lifted"),
        AccountEvent::AccountUnfrozen {
            reason: FreezeReason::Dispute,
            actor: None,
            ..
        } => Some("dispute freeze lifted"),
        AccountEvent::PaymentRefunded { bonus_reversed, .. } if bonus_reversed.is_positive() => {
            Some("bonus reversed")
        }
        AccountEvent::CreditPurchased { .. }
        | AccountEvent::CreditGranted { .. }
        | AccountEvent::DisputeWon { .. }
            if touches(RECEIVABLE) =>
        {
            Some("money arriving paid a debt")
        }
        _ => None,
    }
}

fn error_kind(error: &AccountError) -> String {
    let debug = format!("{error:?}");
    debug.split(['(', ' ']).next().unwrap_or_default().to_owned()
}

pub(super) fn run(ops: &[Op]) -> Result<Run, TestCaseError> {
    let mut run = Run::default();
    for op in ops {
        run.step(op)?;
    }
    run.replay_matches()?;
    Ok(run)
}
