//! Builders for the Account tests: fixed ids, amounts, commands and events with their exact
//! postings. The postings here are the test's own statement of the rules; nothing is computed
//! by the aggregate under test.

pub(super) use cqrs_es::test::{AggregateTestExecutor, TestFramework};
pub(super) use cqrs_es::Aggregate;
use uuid::Uuid;

pub(super) use crate::account::aggregate::MAX_TEXT_CHARS;
pub(super) use crate::account::{
    Account, AccountCommand, AccountError, AccountEvent, FreezeReason, ReleaseReason, MAX_OPEN_RESERVATIONS,
};
pub(super) use crate::ids::{AccountId, ActorId, CallId, DisputeId, GrantId, PaymentId, ReservationId};
pub(super) use crate::money::{Currency, Money};
pub(super) use crate::postings::{LedgerAccount, Posting, Postings};

pub(super) const USD: Currency = Currency::USD;
pub(super) const EUR: Currency = Currency::EUR;
/// One whole dollar in micro-units.
pub(super) const D: i64 = 1_000_000;

pub(super) const AVAILABLE: LedgerAccount = LedgerAccount::Available;
pub(super) const RESERVED: LedgerAccount = LedgerAccount::Reserved;
pub(super) const RECEIVABLE: LedgerAccount = LedgerAccount::Receivable;
pub(super) const DISPUTED: LedgerAccount = LedgerAccount::Disputed;
pub(super) const STRIPE: LedgerAccount = LedgerAccount::StripeClearing;
pub(super) const REVENUE: LedgerAccount = LedgerAccount::RevenueCalls;
pub(super) const PROMOTIONS: LedgerAccount = LedgerAccount::Promotions;
pub(super) const ADJUSTMENTS: LedgerAccount = LedgerAccount::Adjustments;
pub(super) const OVERRUN: LedgerAccount = LedgerAccount::Overrun;

pub(super) fn usd(micros: i64) -> Money {
    Money::from_micros(micros, USD)
}

pub(super) fn eur(micros: i64) -> Money {
    Money::from_micros(micros, EUR)
}

pub(super) fn account_id() -> AccountId {
    AccountId(Uuid::from_u128(0xACC0))
}

pub(super) fn pi(n: u32) -> PaymentId {
    PaymentId::parse(&format!("pi_{n}")).expect("valid payment id")
}

pub(super) fn dp(n: u32) -> DisputeId {
    DisputeId::parse(&format!("dp_{n}")).expect("valid dispute id")
}

pub(super) fn res(n: u128) -> ReservationId {
    ReservationId(Uuid::from_u128(0x5E5_0000 + n))
}

pub(super) fn call(n: u128) -> CallId {
    CallId(Uuid::from_u128(0xCA11_0000 + n))
}

pub(super) fn grant_id(n: u128) -> GrantId {
    GrantId(Uuid::from_u128(0x6A_0000 + n))
}

pub(super) fn admin() -> ActorId {
    ActorId(Uuid::from_u128(0xAD41))
}

pub(super) fn too_long() -> String {
    "x".repeat(MAX_TEXT_CHARS + 1)
}

/// The given/when/then harness of cqrs-es.
pub(super) fn given(events: Vec<AccountEvent>) -> AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(()).given(events)
}

/// Folds events into a fresh aggregate (cqrs-es `apply`), for checks on the resulting state.
pub(super) fn state_after(events: &[AccountEvent]) -> Account {
    let mut account = Account::default();
    for event in events {
        account.apply(event.clone());
    }
    account
}

/// Exact postings in USD, in the order written.
pub(super) fn lines(entries: &[(LedgerAccount, i64)]) -> Postings {
    let lines = entries.iter().map(|(account, micros)| Posting {
        account: *account,
        amount: usd(*micros),
    });
    Postings::new(lines.collect()).expect("the test's own postings balance")
}

// ---- commands ----

pub(super) fn open_cmd() -> AccountCommand {
    AccountCommand::OpenAccount {
        account_id: account_id(),
        currency: USD,
    }
}

pub(super) fn purchase(payment: PaymentId, paid: Money, bonus: Money) -> AccountCommand {
    AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: payment,
        paid,
        bonus,
    }
}

pub(super) fn grant(n: u128, amount: Money, promotion: &str) -> AccountCommand {
    AccountCommand::GrantCredit {
        grant_id: grant_id(n),
        amount,
        promotion: promotion.to_owned(),
    }
}

pub(super) fn adjust(amount: Money, reason: &str) -> AccountCommand {
    AccountCommand::AdjustCredit {
        amount,
        reason: reason.to_owned(),
        actor: admin(),
        call_id: None,
        correction: None,
    }
}

pub(super) fn reserve(reservation: ReservationId, call_id: CallId, amount: Money) -> AccountCommand {
    AccountCommand::ReserveCredit {
        reservation_id: reservation,
        call_id,
        amount,
    }
}

pub(super) fn settle(call_id: CallId, cost: Money) -> AccountCommand {
    AccountCommand::SettleCall { call_id, cost }
}

pub(super) fn release(reservation: ReservationId, reason: ReleaseReason) -> AccountCommand {
    AccountCommand::ReleaseReservation {
        reservation_id: reservation,
        reason,
    }
}

pub(super) fn refund(payment: PaymentId, refunded_total: Money) -> AccountCommand {
    AccountCommand::RecordRefund {
        charge_id: None,
        payment_id: payment,
        refunded_total,
    }
}

pub(super) fn open_dispute(dispute: DisputeId, payment: PaymentId, amount: Money) -> AccountCommand {
    AccountCommand::OpenDispute {
        dispute_id: dispute,
        payment_id: payment,
        amount,
    }
}

pub(super) fn win(dispute: DisputeId) -> AccountCommand {
    AccountCommand::WinDispute { dispute_id: dispute }
}

pub(super) fn lose(dispute: DisputeId) -> AccountCommand {
    AccountCommand::LoseDispute { dispute_id: dispute }
}

pub(super) fn freeze(reason: FreezeReason, note: &str) -> AccountCommand {
    AccountCommand::Freeze {
        reason,
        actor: Some(admin()),
        note: note.to_owned(),
    }
}

pub(super) fn unfreeze(reason: FreezeReason, note: &str) -> AccountCommand {
    AccountCommand::Unfreeze {
        reason,
        actor: Some(admin()),
        note: note.to_owned(),
    }
}

pub(super) fn ban(reason: &str) -> AccountCommand {
    AccountCommand::Ban {
        actor: admin(),
        reason: reason.to_owned(),
    }
}

// ---- events ----

pub(super) fn opened() -> AccountEvent {
    AccountEvent::AccountOpened {
        account_id: account_id(),
        currency: USD,
    }
}

/// A purchase on an account that owes nothing: paid from Stripe, bonus from promotions.
pub(super) fn purchased(payment: PaymentId, paid: i64, bonus: i64) -> AccountEvent {
    purchased_with(
        payment,
        paid,
        bonus,
        lines(&[(STRIPE, -paid), (AVAILABLE, paid + bonus), (PROMOTIONS, -bonus)]),
    )
}

pub(super) fn purchased_with(payment: PaymentId, paid: i64, bonus: i64, postings: Postings) -> AccountEvent {
    AccountEvent::CreditPurchased {
        payment_id: payment,
        paid: usd(paid),
        bonus: usd(bonus),
        checkout_session_id: None,
        postings,
    }
}

/// Opened and funded with one purchase (`pi_1`, no bonus).
pub(super) fn funded(paid: i64) -> Vec<AccountEvent> {
    vec![opened(), purchased(pi(1), paid, 0)]
}

pub(super) fn granted(n: u128, amount: i64, promotion: &str, postings: Postings) -> AccountEvent {
    AccountEvent::CreditGranted {
        grant_id: grant_id(n),
        amount: usd(amount),
        promotion: promotion.to_owned(),
        postings,
    }
}

pub(super) fn adjusted(amount: i64, reason: &str, postings: Postings) -> AccountEvent {
    AccountEvent::CreditAdjusted {
        amount: usd(amount),
        reason: reason.to_owned(),
        actor: admin(),
        call_id: None,
        correction: None,
        postings,
    }
}

pub(super) fn reserved(reservation: ReservationId, call_id: CallId, amount: i64) -> AccountEvent {
    AccountEvent::CreditReserved {
        reservation_id: reservation,
        call_id,
        amount: usd(amount),
        postings: lines(&[(AVAILABLE, -amount), (RESERVED, amount)]),
        day: None,
    }
}

pub(super) fn settled(
    call_id: CallId,
    reservations: Vec<ReservationId>,
    reserved: i64,
    cost: i64,
    postings: Postings,
) -> AccountEvent {
    let charged = cost.min(reserved);
    AccountEvent::ReservationSettled {
        call_id,
        reservation_ids: reservations,
        reserved: usd(reserved),
        cost: usd(cost),
        charged: usd(charged),
        overrun: usd(cost - charged),
        postings,
    }
}

pub(super) fn released(
    reservation: ReservationId,
    call_id: CallId,
    amount: i64,
    reason: ReleaseReason,
    postings: Postings,
) -> AccountEvent {
    AccountEvent::ReservationReleased {
        reservation_id: reservation,
        call_id,
        amount: usd(amount),
        reason,
        postings,
    }
}

pub(super) fn refunded(
    payment: PaymentId,
    total: i64,
    refunded: i64,
    bonus_reversed: i64,
    postings: Postings,
) -> AccountEvent {
    AccountEvent::PaymentRefunded {
        payment_id: payment,
        refunded_total: usd(total),
        refunded: usd(refunded),
        bonus_reversed: usd(bonus_reversed),
        charge_id: None,
        postings,
    }
}

pub(super) fn dispute_opened(
    dispute: DisputeId,
    payment: PaymentId,
    amount: i64,
    postings: Postings,
) -> AccountEvent {
    AccountEvent::DisputeOpened {
        dispute_id: dispute,
        payment_id: payment,
        amount: usd(amount),
        postings,
    }
}

pub(super) fn dispute_won(dispute: DisputeId, amount: i64, postings: Postings) -> AccountEvent {
    AccountEvent::DisputeWon {
        dispute_id: dispute,
        amount: usd(amount),
        postings,
    }
}

pub(super) fn dispute_lost(dispute: DisputeId, amount: i64) -> AccountEvent {
    AccountEvent::DisputeLost {
        dispute_id: dispute,
        amount: usd(amount),
        postings: lines(&[(DISPUTED, -amount), (STRIPE, amount)]),
    }
}

/// A freeze set by an operator (actor `admin()`).
pub(super) fn frozen(reason: FreezeReason, note: &str) -> AccountEvent {
    AccountEvent::AccountFrozen {
        reason,
        actor: Some(admin()),
        note: note.to_owned(),
    }
}

/// A freeze lifted by an operator (actor `admin()`).
pub(super) fn unfrozen(reason: FreezeReason, note: &str) -> AccountEvent {
    AccountEvent::AccountUnfrozen {
        reason,
        actor: Some(admin()),
        note: note.to_owned(),
    }
}

/// The automatic freeze when money becomes owed; `owed` as the note prints it ("7.000000 USD").
pub(super) fn receivable_frozen(owed: &str) -> AccountEvent {
    AccountEvent::AccountFrozen {
        reason: FreezeReason::Receivable,
        actor: None,
        note: format!("{owed} owed"),
    }
}

/// The automatic lift when what was owed is paid.
pub(super) fn receivable_lifted() -> AccountEvent {
    AccountEvent::AccountUnfrozen {
        reason: FreezeReason::Receivable,
        actor: None,
        note: "balance owed is paid".to_owned(),
    }
}

pub(super) fn dispute_frozen(dispute: &str) -> AccountEvent {
    AccountEvent::AccountFrozen {
        reason: FreezeReason::Dispute,
        actor: None,
        note: format!("dispute {dispute} opened"),
    }
}

pub(super) fn dispute_lifted(dispute: &str) -> AccountEvent {
    AccountEvent::AccountUnfrozen {
        reason: FreezeReason::Dispute,
        actor: None,
        note: format!("dispute {dispute} won"),
    }
}

pub(super) fn banned(reason: &str) -> AccountEvent {
    AccountEvent::AccountBanned {
        actor: admin(),
        reason: reason.to_owned(),
    }
}

/// An account that owes `owed` (1..=∞ micros): `pi_9` paid `owed`, all of it reserved for
/// `call(9)` as `res(9)`, then fully refunded during the call, so available is 0, reserved is
/// `owed`, receivable is `-owed` and the receivable freeze stands.
pub(super) fn owing(owed: i64, owed_note: &str) -> Vec<AccountEvent> {
    vec![
        opened(),
        purchased(pi(9), owed, 0),
        reserved(res(9), call(9), owed),
        refunded(
            pi(9),
            owed,
            owed,
            0,
            lines(&[(RECEIVABLE, -owed), (STRIPE, owed)]),
        ),
        receivable_frozen(owed_note),
    ]
}

/// Runs commands through `decide` + `fold` from a fresh account, panicking on any refusal;
/// returns every event emitted. Used to check that hand-written fixtures are reachable.
pub(super) fn events_of(commands: &[AccountCommand]) -> Vec<AccountEvent> {
    let mut account = Account::default();
    let mut all = Vec::new();
    for command in commands {
        let events = account
            .decide(command)
            .unwrap_or_else(|e| panic!("{} refused: {e}", command.name()));
        for event in &events {
            account.fold(event);
        }
        all.extend(events);
    }
    all
}

/// `events` followed by `more`.
pub(super) fn with(mut events: Vec<AccountEvent>, more: Vec<AccountEvent>) -> Vec<AccountEvent> {
    events.extend(more);
    events
}
