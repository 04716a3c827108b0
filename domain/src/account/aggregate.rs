//! The Account aggregate (the wallet): decides on commands, applies events.
//!
//! `decide` is pure: no IO, no clock, no id minting. `apply` only folds, and folds balances
//! from postings alone, so "a balance is the sum of postings" holds by construction. The state
//! stays small: open reservations, open disputes and the terms of each purchase (needed for
//! refunds), never the history of idempotency keys.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::account::commands::{AccountCommand, CallCreditLimits};
use crate::account::error::AccountError;
use crate::account::events::{AccountEvent, FreezeReason, ReleaseReason};
use crate::account::ledger::Draft;
use crate::ids::{AccountId, CallId, ChargeId, CheckoutSessionId, DisputeId, PaymentId, ReservationId};
use crate::money::{Currency, Money};
use crate::postings::LedgerAccount;

/// At most this many reservations may be open at once (one or a few per concurrent call).
pub const MAX_OPEN_RESERVATIONS: usize = 256;
/// Free-text fields (reasons, notes, promotion names) are bounded.
pub const MAX_TEXT_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenReservation {
    pub call_id: CallId,
    pub amount_micros: i64,
    /// The UTC day whose spend it counts toward (reservations made under call limits).
    #[serde(default)]
    pub day: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentTerms {
    pub paid_micros: i64,
    pub bonus_micros: i64,
    pub refunded_micros: i64,
    pub bonus_reversed_micros: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenDisputeState {
    pub payment_id: PaymentId,
    pub amount_micros: i64,
}

/// The four customer ledger accounts, in micro-units of the account's currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerBalances {
    pub available: i64,
    pub reserved: i64,
    pub receivable: i64,
    pub disputed: i64,
}

impl CustomerBalances {
    pub fn get(&self, account: LedgerAccount) -> i64 {
        match account {
            LedgerAccount::Available => self.available,
            LedgerAccount::Reserved => self.reserved,
            LedgerAccount::Receivable => self.receivable,
            LedgerAccount::Disputed => self.disputed,
            _ => 0,
        }
    }

    pub fn slot(&mut self, account: LedgerAccount) -> Option<&mut i64> {
        match account {
            LedgerAccount::Available => Some(&mut self.available),
            LedgerAccount::Reserved => Some(&mut self.reserved),
            LedgerAccount::Receivable => Some(&mut self.receivable),
            LedgerAccount::Disputed => Some(&mut self.disputed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Account {
    pub(crate) id: Option<AccountId>,
    pub(crate) currency: Option<Currency>,
    pub(crate) balances: CustomerBalances,
    pub(crate) reservations: BTreeMap<ReservationId, OpenReservation>,
    pub(crate) payments: BTreeMap<PaymentId, PaymentTerms>,
    pub(crate) disputes: BTreeMap<DisputeId, OpenDisputeState>,
    pub(crate) frozen: BTreeSet<FreezeReason>,
    pub(crate) banned: bool,
    /// A dispute was lost: the `dispute` reason waits for an operator, whatever else is won.
    pub(crate) dispute_lost: bool,
    /// The latest UTC day a call reservation counted toward, and what calls committed that
    /// day: reserved and not returned (held now, or charged). Older days are forgotten.
    pub(crate) spend_day: Option<NaiveDate>,
    pub(crate) spend_day_micros: i64,
}

impl Account {
    pub fn id(&self) -> Option<AccountId> {
        self.id
    }
    pub fn currency(&self) -> Option<Currency> {
        self.currency
    }
    pub fn balances(&self) -> CustomerBalances {
        self.balances
    }
    pub fn frozen_reasons(&self) -> &BTreeSet<FreezeReason> {
        &self.frozen
    }
    pub fn is_banned(&self) -> bool {
        self.banned
    }
    pub fn open_reservations(&self) -> &BTreeMap<ReservationId, OpenReservation> {
        &self.reservations
    }
    /// Calls holding reservations now: the live calls the concurrent-calls limit counts.
    pub fn live_calls(&self) -> usize {
        let calls: BTreeSet<CallId> = self.reservations.values().map(|r| r.call_id).collect();
        calls.len()
    }

    /// What calls committed on `day` (UTC): reserved that day and not returned since.
    pub fn spent_on(&self, day: NaiveDate) -> Money {
        match self.spend_day {
            Some(d) if d == day => self.money(self.spend_day_micros),
            _ => self.money(0),
        }
    }

    pub fn money(&self, micros: i64) -> Money {
        Money::from_micros(micros, self.currency.unwrap_or(Currency::USD))
    }

    fn require_open(&self) -> Result<Currency, AccountError> {
        self.currency.ok_or(AccountError::NotOpened)
    }

    /// Checks currency and sign of an amount the command brings.
    fn amount(&self, amount: Money, allow_zero: bool) -> Result<Money, AccountError> {
        let currency = self.require_open()?;
        if amount.currency() != currency {
            return Err(AccountError::WrongCurrency {
                expected: currency,
                got: amount.currency(),
            });
        }
        if amount.is_negative() || (!allow_zero && amount.is_zero()) {
            return Err(AccountError::AmountMustBePositive(amount));
        }
        Ok(amount)
    }

    fn draft(&self) -> Result<Draft, AccountError> {
        Ok(Draft::new(self.require_open()?, self.balances))
    }

    /// The decision: which events a command produces, or why it is refused.
    pub fn decide(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand as C;
        match command {
            C::OpenAccount { account_id, currency } => self.open(*account_id, *currency),
            C::PurchaseCredit {
                payment_id,
                paid,
                bonus,
                checkout_session_id,
            } => self.purchase(payment_id, *paid, *bonus, checkout_session_id.clone()),
            C::GrantCredit {
                grant_id,
                amount,
                promotion,
            } => {
                self.require_open()?;
                if self.banned {
                    return Err(AccountError::Banned);
                }
                let amount = self.amount(*amount, false)?;
                let promotion = text("promotion", promotion)?;
                let mut d = self.draft()?;
                d.credit(LedgerAccount::Promotions, amount)?;
                let (postings, after) = d.finish()?;
                let event = AccountEvent::CreditGranted {
                    grant_id: *grant_id,
                    amount,
                    promotion,
                    postings,
                };
                Ok(self.with_receivable_follow_up(vec![event], after))
            }
            C::AdjustCredit {
                amount,
                reason,
                actor,
                call_id,
                correction,
            } => {
                self.require_open()?;
                let reason = text("reason", reason)?;
                let correction = correction.as_deref().map(|c| text("correction", c)).transpose()?;
                let mut d = self.draft()?;
                if amount.is_negative() {
                    let take = self.amount(amount.checked_neg().map_err(AccountError::money)?, false)?;
                    if take.micros() > self.balances.available {
                        return Err(AccountError::AdjustmentExceedsAvailable {
                            available: self.money(self.balances.available),
                            requested: take,
                        });
                    }
                    d.flow(LedgerAccount::Available, LedgerAccount::Adjustments, take)?;
                } else {
                    d.credit(LedgerAccount::Adjustments, self.amount(*amount, false)?)?;
                }
                let (postings, after) = d.finish()?;
                let event = AccountEvent::CreditAdjusted {
                    amount: *amount,
                    reason,
                    actor: *actor,
                    call_id: *call_id,
                    correction,
                    postings,
                };
                Ok(self.with_receivable_follow_up(vec![event], after))
            }
            C::ReserveCredit {
                reservation_id,
                call_id,
                amount,
            } => self.reserve(*reservation_id, *call_id, *amount, None),
            C::ReserveCallCredit {
                reservation_id,
                call_id,
                amount,
                limits,
            } => self.reserve(*reservation_id, *call_id, *amount, Some(limits)),
            C::SettleCall { call_id, cost } => self.settle(*call_id, *cost),
            C::ReleaseReservation {
                reservation_id,
                reason,
            } => self.release(*reservation_id, *reason),
            C::RecordRefund {
                payment_id,
                refunded_total,
                charge_id,
            } => self.refund(payment_id, *refunded_total, charge_id.clone()),
            C::OpenDispute {
                dispute_id,
                payment_id,
                amount,
            } => self.open_dispute(dispute_id, payment_id, *amount),
            C::WinDispute { dispute_id } => self.close_dispute(dispute_id, true),
            C::LoseDispute { dispute_id } => self.close_dispute(dispute_id, false),
            C::Freeze { reason, actor, note } => {
                self.require_open()?;
                if *reason == FreezeReason::Receivable {
                    return Err(AccountError::ReceivableReasonIsAutomatic);
                }
                if self.frozen.contains(reason) {
                    return Err(AccountError::AlreadyFrozen(*reason));
                }
                let note = text_or_empty(note)?;
                Ok(vec![AccountEvent::AccountFrozen {
                    reason: *reason,
                    actor: *actor,
                    note,
                }])
            }
            C::Unfreeze { reason, actor, note } => {
                self.require_open()?;
                if *reason == FreezeReason::Receivable {
                    return Err(AccountError::ReceivableReasonIsAutomatic);
                }
                if !self.frozen.contains(reason) {
                    return Err(AccountError::NotFrozenFor(*reason));
                }
                let note = text_or_empty(note)?;
                Ok(vec![AccountEvent::AccountUnfrozen {
                    reason: *reason,
                    actor: *actor,
                    note,
                }])
            }
            C::Ban { actor, reason } => {
                self.require_open()?;
                if self.banned {
                    return Err(AccountError::AlreadyBanned);
                }
                Ok(vec![AccountEvent::AccountBanned {
                    actor: *actor,
                    reason: text("reason", reason)?,
                }])
            }
        }
    }

    fn open(&self, account_id: AccountId, currency: Currency) -> Result<Vec<AccountEvent>, AccountError> {
        if self.currency.is_some() {
            return Err(AccountError::AlreadyOpened);
        }
        Ok(vec![AccountEvent::AccountOpened { account_id, currency }])
    }

    fn purchase(
        &self,
        payment_id: &PaymentId,
        paid: Money,
        bonus: Money,
        checkout_session_id: Option<CheckoutSessionId>,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let paid = self.amount(paid, false)?;
        let bonus = self.amount(bonus, true)?;
        if self.payments.contains_key(payment_id) {
            return Err(AccountError::DuplicatePayment(payment_id.clone()));
        }
        let mut d = self.draft()?;
        d.credit(LedgerAccount::StripeClearing, paid)?;
        d.credit(LedgerAccount::Promotions, bonus)?;
        let (postings, after) = d.finish()?;
        let event = AccountEvent::CreditPurchased {
            payment_id: payment_id.clone(),
            paid,
            bonus,
            checkout_session_id,
            postings,
        };
        Ok(self.with_receivable_follow_up(vec![event], after))
    }

    fn reserve(
        &self,
        reservation_id: ReservationId,
        call_id: CallId,
        amount: Money,
        limits: Option<&CallCreditLimits>,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        self.require_open()?;
        if self.banned {
            return Err(AccountError::Banned);
        }
        if !self.frozen.is_empty() {
            return Err(AccountError::Frozen(self.frozen.iter().copied().collect()));
        }
        let amount = self.amount(amount, false)?;
        if self.reservations.contains_key(&reservation_id) {
            return Err(AccountError::DuplicateReservation(reservation_id));
        }
        if self.reservations.len() >= MAX_OPEN_RESERVATIONS {
            return Err(AccountError::TooManyReservations(MAX_OPEN_RESERVATIONS));
        }
        if amount.micros() > self.balances.available {
            return Err(AccountError::InsufficientFunds {
                available: self.money(self.balances.available),
                requested: amount,
            });
        }
        if let Some(limits) = limits {
            self.within_call_limits(call_id, amount, limits)?;
        }
        let mut d = self.draft()?;
        d.flow(LedgerAccount::Available, LedgerAccount::Reserved, amount)?;
        let (postings, _) = d.finish()?;
        Ok(vec![AccountEvent::CreditReserved {
            reservation_id,
            call_id,
            amount,
            postings,
            day: limits.map(|l| l.day),
        }])
    }

    /// The call limits, decided on this stream's state (which every reservation goes
    /// through in order), so they hold however many calls start at once.
    fn within_call_limits(
        &self,
        call_id: CallId,
        amount: Money,
        limits: &CallCreditLimits,
    ) -> Result<(), AccountError> {
        let first = !self.reservations.values().any(|r| r.call_id == call_id);
        let live = u32::try_from(self.live_calls()).unwrap_or(u32::MAX);
        if first && live >= limits.max_live_calls {
            return Err(AccountError::ConcurrentCalls {
                limit: limits.max_live_calls,
            });
        }
        let cap = self.amount(limits.daily_spend_cap, true)?;
        let spent = self.spent_on(limits.day);
        let left = self.money(cap.micros().saturating_sub(spent.micros()).max(0));
        if amount > left {
            return Err(AccountError::DailySpendCap {
                cap,
                spent,
                left,
                requested: amount,
            });
        }
        Ok(())
    }

    fn settle(&self, call_id: CallId, cost: Money) -> Result<Vec<AccountEvent>, AccountError> {
        let cost = self.amount(cost, true)?;
        let held: Vec<(ReservationId, i64)> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.call_id == call_id)
            .map(|(id, r)| (*id, r.amount_micros))
            .collect();
        if held.is_empty() {
            return Err(AccountError::NothingReservedForCall(call_id));
        }
        let reserved = self.money(
            held.iter()
                .try_fold(0i64, |s, (_, a)| s.checked_add(*a))
                .ok_or(AccountError::Overflow)?,
        );
        let charged = cost.min(reserved).map_err(AccountError::money)?;
        let overrun = cost.checked_sub(charged).map_err(AccountError::money)?;
        let unused = reserved.checked_sub(charged).map_err(AccountError::money)?;
        let mut d = self.draft()?;
        d.flow(LedgerAccount::Reserved, LedgerAccount::RevenueCalls, charged)?;
        d.flow(LedgerAccount::Overrun, LedgerAccount::RevenueCalls, overrun)?;
        d.credit(LedgerAccount::Reserved, unused)?;
        let (postings, after) = d.finish()?;
        let event = AccountEvent::ReservationSettled {
            call_id,
            reservation_ids: held.iter().map(|(id, _)| *id).collect(),
            reserved,
            cost,
            charged,
            overrun,
            postings,
        };
        Ok(self.with_receivable_follow_up(vec![event], after))
    }

    fn release(
        &self,
        reservation_id: ReservationId,
        reason: ReleaseReason,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        self.require_open()?;
        let held = self
            .reservations
            .get(&reservation_id)
            .ok_or(AccountError::UnknownReservation(reservation_id))?;
        let amount = self.money(held.amount_micros);
        let mut d = self.draft()?;
        d.credit(LedgerAccount::Reserved, amount)?;
        let (postings, after) = d.finish()?;
        let event = AccountEvent::ReservationReleased {
            reservation_id,
            call_id: held.call_id,
            amount,
            reason,
            postings,
        };
        Ok(self.with_receivable_follow_up(vec![event], after))
    }

    fn refund(
        &self,
        payment_id: &PaymentId,
        refunded_total: Money,
        charge_id: Option<ChargeId>,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let refunded_total = self.amount(refunded_total, true)?;
        let terms = self
            .payments
            .get(payment_id)
            .ok_or_else(|| AccountError::UnknownPayment(payment_id.clone()))?;
        if refunded_total.micros() > terms.paid_micros {
            return Err(AccountError::RefundExceedsPayment {
                paid: self.money(terms.paid_micros),
                refunded_total,
            });
        }
        if refunded_total.micros() <= terms.refunded_micros {
            // Stripe's amount is cumulative: nothing new has been refunded.
            return Ok(vec![]);
        }
        let refunded = self.money(refunded_total.micros() - terms.refunded_micros);
        let bonus_total = self
            .money(terms.bonus_micros)
            .mul_div_floor(refunded_total.micros(), terms.paid_micros)
            .map_err(AccountError::money)?;
        let bonus_reversed = self.money(bonus_total.micros() - terms.bonus_reversed_micros);
        let mut d = self.draft()?;
        d.debit(LedgerAccount::StripeClearing, refunded)?;
        d.debit(LedgerAccount::Promotions, bonus_reversed)?;
        let (postings, after) = d.finish()?;
        let event = AccountEvent::PaymentRefunded {
            payment_id: payment_id.clone(),
            refunded_total,
            refunded,
            bonus_reversed,
            charge_id,
            postings,
        };
        Ok(self.with_receivable_follow_up(vec![event], after))
    }

    fn open_dispute(
        &self,
        dispute_id: &DisputeId,
        payment_id: &PaymentId,
        amount: Money,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        let amount = self.amount(amount, false)?;
        let terms = self
            .payments
            .get(payment_id)
            .ok_or_else(|| AccountError::UnknownPayment(payment_id.clone()))?;
        if self.disputes.contains_key(dispute_id) {
            return Err(AccountError::DuplicateDispute(dispute_id.clone()));
        }
        // What can still be disputed: paid, less refunds, less disputes already open on it.
        let held: i64 = self
            .disputes
            .values()
            .filter(|d| &d.payment_id == payment_id)
            .map(|d| d.amount_micros)
            .sum();
        let open_to_dispute = terms.paid_micros - terms.refunded_micros - held;
        if amount.micros() > open_to_dispute {
            return Err(AccountError::DisputeExceedsPayment {
                paid: self.money(open_to_dispute),
                disputed: amount,
            });
        }
        let mut d = self.draft()?;
        d.debit(LedgerAccount::Disputed, amount)?;
        let (postings, after) = d.finish()?;
        let mut events = vec![AccountEvent::DisputeOpened {
            dispute_id: dispute_id.clone(),
            payment_id: payment_id.clone(),
            amount,
            postings,
        }];
        if !self.frozen.contains(&FreezeReason::Dispute) {
            events.push(AccountEvent::AccountFrozen {
                reason: FreezeReason::Dispute,
                actor: None,
                note: format!("dispute {dispute_id} opened"),
            });
        }
        Ok(self.with_receivable_follow_up(events, after))
    }

    /// Won: the held amount comes back (paying any receivable first) and, when no other
    /// dispute is open, the dispute reason lifts (a fraud freeze stays). Lost: the held
    /// amount goes back through Stripe and the account stays frozen for review.
    fn close_dispute(&self, dispute_id: &DisputeId, won: bool) -> Result<Vec<AccountEvent>, AccountError> {
        self.require_open()?;
        let open = self
            .disputes
            .get(dispute_id)
            .ok_or_else(|| AccountError::UnknownDispute(dispute_id.clone()))?;
        let amount = self.money(open.amount_micros);
        let mut d = self.draft()?;
        let dispute_id = dispute_id.clone();
        if won {
            d.credit(LedgerAccount::Disputed, amount)?;
            let (postings, after) = d.finish()?;
            let mut events = vec![AccountEvent::DisputeWon {
                dispute_id: dispute_id.clone(),
                amount,
                postings,
            }];
            let last_open = self.disputes.len() == 1;
            if last_open && !self.dispute_lost && self.frozen.contains(&FreezeReason::Dispute) {
                events.push(AccountEvent::AccountUnfrozen {
                    reason: FreezeReason::Dispute,
                    actor: None,
                    note: format!("dispute {dispute_id} won"),
                });
            }
            Ok(self.with_receivable_follow_up(events, after))
        } else {
            d.flow(LedgerAccount::Disputed, LedgerAccount::StripeClearing, amount)?;
            let (postings, _) = d.finish()?;
            Ok(vec![AccountEvent::DisputeLost {
                dispute_id,
                amount,
                postings,
            }])
        }
    }

    /// Freezes with reason `receivable` when money becomes owed, lifts it when paid off.
    fn with_receivable_follow_up(
        &self,
        mut events: Vec<AccountEvent>,
        after: CustomerBalances,
    ) -> Vec<AccountEvent> {
        let standing = self.frozen.contains(&FreezeReason::Receivable);
        if after.receivable < 0 && !standing {
            events.push(AccountEvent::AccountFrozen {
                reason: FreezeReason::Receivable,
                actor: None,
                note: format!("{} owed", self.money(after.receivable.saturating_neg())),
            });
        } else if after.receivable == 0 && standing {
            events.push(AccountEvent::AccountUnfrozen {
                reason: FreezeReason::Receivable,
                actor: None,
                note: "balance owed is paid".to_owned(),
            });
        }
        events
    }

    fn apply_event(&mut self, event: &AccountEvent) {
        if let Some(postings) = event.postings() {
            for line in postings.lines() {
                if let Some(slot) = self.balances.slot(line.account) {
                    *slot = slot.saturating_add(line.amount.micros());
                }
            }
        }
        match event {
            AccountEvent::AccountOpened { account_id, currency } => {
                self.id = Some(*account_id);
                self.currency = Some(*currency);
            }
            AccountEvent::CreditPurchased {
                payment_id,
                paid,
                bonus,
                ..
            } => {
                let terms = PaymentTerms {
                    paid_micros: paid.micros(),
                    bonus_micros: bonus.micros(),
                    ..Default::default()
                };
                self.payments.insert(payment_id.clone(), terms);
            }
            AccountEvent::CreditReserved {
                reservation_id,
                call_id,
                amount,
                day,
                ..
            } => {
                let held = OpenReservation {
                    call_id: *call_id,
                    amount_micros: amount.micros(),
                    day: *day,
                };
                self.reservations.insert(*reservation_id, held);
                if let Some(day) = day {
                    self.count_spend(*day, amount.micros());
                }
            }
            AccountEvent::ReservationSettled {
                reservation_ids,
                charged,
                ..
            } => {
                self.return_unused_spend(reservation_ids, charged.micros());
                for id in reservation_ids {
                    self.reservations.remove(id);
                }
            }
            AccountEvent::ReservationReleased { reservation_id, .. } => {
                if let Some(held) = self.reservations.remove(reservation_id) {
                    if held.day.is_some() && held.day == self.spend_day {
                        self.spend_day_micros = self.spend_day_micros.saturating_sub(held.amount_micros);
                    }
                }
            }
            AccountEvent::PaymentRefunded {
                payment_id,
                refunded_total,
                bonus_reversed,
                ..
            } => {
                if let Some(terms) = self.payments.get_mut(payment_id) {
                    terms.refunded_micros = refunded_total.micros();
                    terms.bonus_reversed_micros = terms
                        .bonus_reversed_micros
                        .saturating_add(bonus_reversed.micros());
                }
            }
            AccountEvent::DisputeOpened {
                dispute_id,
                payment_id,
                amount,
                ..
            } => {
                let open = OpenDisputeState {
                    payment_id: payment_id.clone(),
                    amount_micros: amount.micros(),
                };
                self.disputes.insert(dispute_id.clone(), open);
            }
            AccountEvent::DisputeWon { dispute_id, .. } => {
                self.disputes.remove(dispute_id);
            }
            AccountEvent::DisputeLost { dispute_id, .. } => {
                self.disputes.remove(dispute_id);
                self.dispute_lost = true;
            }
            AccountEvent::AccountFrozen { reason, .. } => {
                self.frozen.insert(*reason);
            }
            AccountEvent::AccountUnfrozen { reason, .. } => {
                self.frozen.remove(reason);
                if *reason == FreezeReason::Dispute {
                    self.dispute_lost = false;
                }
            }
            AccountEvent::AccountBanned { .. } => self.banned = true,
            AccountEvent::CreditGranted { .. } | AccountEvent::CreditAdjusted { .. } => {}
        }
    }
}

fn text(field: &'static str, value: &str) -> Result<String, AccountError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AccountError::MissingText(field));
    }
    if trimmed.chars().count() > MAX_TEXT_CHARS {
        return Err(AccountError::TextTooLong {
            field,
            max: MAX_TEXT_CHARS,
        });
    }
    Ok(trimmed.to_owned())
}

fn text_or_empty(value: &str) -> Result<String, AccountError> {
    if value.trim().is_empty() {
        Ok(String::new())
    } else {
        text("note", value)
    }
}

impl Account {
    /// Counts a call reservation toward the spend of `day`; a later day starts from zero.
    fn count_spend(&mut self, day: NaiveDate, micros: i64) {
        match self.spend_day {
            Some(d) if d == day => {
                self.spend_day_micros = self.spend_day_micros.saturating_add(micros);
            }
            Some(d) if d > day => {}
            _ => {
                self.spend_day = Some(day);
                self.spend_day_micros = micros;
            }
        }
    }

    /// A settlement returns what the call did not use. The charge is taken from the call's
    /// oldest reservations first, so what comes back is the current day's, up to what the
    /// call reserved that day.
    fn return_unused_spend(&mut self, reservation_ids: &[ReservationId], charged_micros: i64) {
        let Some(day) = self.spend_day else { return };
        let (mut today, mut earlier) = (0i64, 0i64);
        for held in reservation_ids.iter().filter_map(|id| self.reservations.get(id)) {
            match held.day {
                Some(d) if d == day => today = today.saturating_add(held.amount_micros),
                _ => earlier = earlier.saturating_add(held.amount_micros),
            }
        }
        let charged_today = charged_micros.saturating_sub(earlier).clamp(0, today);
        let returned = today.saturating_sub(charged_today);
        self.spend_day_micros = self.spend_day_micros.saturating_sub(returned).max(0);
    }
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        for event in self.decide(&command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        self.apply_event(&event);
    }
}

impl Account {
    /// Folds one event; the same as cqrs-es's `apply` without taking ownership.
    pub fn fold(&mut self, event: &AccountEvent) {
        self.apply_event(event);
    }
}
