//! Why a Payment command is refused. A refusal means Stripe's facts contradict each other or
//! our limits; the webhook job dead-letters it for a person to look at.

use crate::ids::CheckoutSessionId;
use crate::money::{Money, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("amount must be positive (got {0})")]
    AmountMustBePositive(Money),
    #[error("amount is in {got}, but this payment is in {expected}")]
    WrongCurrency { expected: String, got: String },
    #[error("bonus of {0} basis points is above the limit of 10000 (100 %)")]
    BonusTooLarge(u32),
    #[error("checkout session {other} paid this payment intent, but {first} already did; a payment intent belongs to one session")]
    OtherSession {
        first: CheckoutSessionId,
        other: CheckoutSessionId,
    },
    #[error("this payment was already recorded as paid {recorded}; Stripe now says {reported}")]
    AmountChanged { recorded: Money, reported: Money },
    #[error("refunded total {refunded_total} exceeds the {paid} paid")]
    RefundExceedsPayment { paid: Money, refunded_total: Money },
    #[error("a payment records at most {0} facts; this one has too many")]
    TooManyFacts(usize),
    #[error("{field} is longer than {max} characters")]
    TextTooLong { field: &'static str, max: usize },
    #[error(transparent)]
    Money(#[from] MoneyError),
}
