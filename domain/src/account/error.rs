//! Why an Account command is refused. Each message says what happened and, where it helps,
//! what to do.

use crate::account::events::FreezeReason;
use crate::ids::{CallId, DisputeId, PaymentId, ReservationId};
use crate::money::{Currency, Money, MoneyError};
use crate::postings::PostingsError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("the account has not been opened")]
    NotOpened,
    #[error("the account is already open")]
    AlreadyOpened,
    #[error("the account is banned")]
    Banned,
    #[error("the account is already banned")]
    AlreadyBanned,
    #[error("the account is frozen ({})", reasons_text(.0))]
    Frozen(Vec<FreezeReason>),
    #[error("the account is already frozen for reason {0:?}")]
    AlreadyFrozen(FreezeReason),
    #[error("the account is not frozen for reason {0:?}")]
    NotFrozenFor(FreezeReason),
    #[error("the receivable freeze is set and lifted by the ledger itself, when money is owed and when it is paid")]
    ReceivableReasonIsAutomatic,
    #[error("amount is in {got}, but this account keeps {expected}")]
    WrongCurrency { expected: Currency, got: Currency },
    #[error("amount must be positive (got {0})")]
    AmountMustBePositive(Money),
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds { available: Money, requested: Money },
    #[error("adjustment of -{requested} would take available ({available}) below zero")]
    AdjustmentExceedsAvailable { available: Money, requested: Money },
    #[error("payment {0} is already credited")]
    DuplicatePayment(PaymentId),
    #[error("payment {0} is not known on this account")]
    UnknownPayment(PaymentId),
    #[error("refunded total {refunded_total} exceeds the {paid} paid")]
    RefundExceedsPayment { paid: Money, refunded_total: Money },
    #[error("reservation {0} already exists")]
    DuplicateReservation(ReservationId),
    #[error("reservation {0} is not open on this account")]
    UnknownReservation(ReservationId),
    #[error("at most {0} reservations may be open at once")]
    TooManyReservations(usize),
    #[error("nothing is reserved for call {0}: it was never reserved or is already settled")]
    NothingReservedForCall(CallId),
    #[error("dispute {0} is already open")]
    DuplicateDispute(DisputeId),
    #[error("dispute {0} is not open on this account")]
    UnknownDispute(DisputeId),
    #[error("disputed amount {disputed} exceeds the {paid} still open to dispute on that payment (paid, less refunds and other open disputes)")]
    DisputeExceedsPayment { paid: Money, disputed: Money },
    #[error("{0} is required")]
    MissingText(&'static str),
    #[error("{field} is longer than {max} characters")]
    TextTooLong { field: &'static str, max: usize },
    #[error("at most {limit} calls may hold credit at once on this account (limit max_concurrent_calls = {limit}); end a call first")]
    ConcurrentCalls { limit: u32 },
    #[error("today's spend of {spent} leaves {left} of the daily spend cap of {cap} (limit daily_spend_cap_micros = {}), less than the {requested} asked for", .cap.micros())]
    DailySpendCap {
        cap: Money,
        spent: Money,
        left: Money,
        requested: Money,
    },
    #[error("amount out of range")]
    Overflow,
    #[error(transparent)]
    Money(MoneyError),
    #[error(transparent)]
    Postings(PostingsError),
}

impl AccountError {
    pub(crate) fn money(e: MoneyError) -> AccountError {
        match e {
            MoneyError::Overflow => AccountError::Overflow,
            other => AccountError::Money(other),
        }
    }
}

fn reasons_text(reasons: &[FreezeReason]) -> String {
    reasons
        .iter()
        .map(|r| format!("{r:?}").to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}
