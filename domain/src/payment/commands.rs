//! Payment commands: one per Stripe fact, already parsed into typed values at the edge (the
//! webhook job). Amounts are in micro-units of the payment's currency.

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ChargeId, CheckoutSessionId, DisputeId};
use crate::money::Money;

/// The largest bonus a tier may carry: 100 % of the paid amount.
pub const MAX_BONUS_BPS: u32 = 10_000;

/// The terms a Checkout Session was sold under, from its metadata (issue 8's contract with the
/// checkout side: `account_id`, `tier`, `terms_version`, `bonus_bps`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutTerms {
    pub account_id: AccountId,
    /// A tier id, or `custom`.
    pub tier: String,
    pub terms_version: u32,
    /// Bonus credit in basis points of the paid amount (0 for none).
    pub bonus_bps: u32,
}

/// How Stripe closed (or has not yet closed) a dispute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeStatus {
    /// Any status before the outcome (`needs_response`, `under_review`, `warning_*`).
    Open,
    /// `won`, or an inquiry closed without a chargeback (`warning_closed`).
    Won,
    Lost,
}

/// Why a Checkout Session ended without money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// `checkout.session.async_payment_failed`.
    AsyncPaymentFailed,
    /// `checkout.session.expired`.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum PaymentCommand {
    /// `checkout.session.completed` with `payment_status = paid`, or
    /// `checkout.session.async_payment_succeeded`. `paid` is Stripe's `amount_total`.
    RecordCheckoutPaid {
        checkout_session_id: CheckoutSessionId,
        terms: CheckoutTerms,
        paid: Money,
    },
    /// `checkout.session.completed` with `payment_status = unpaid`: an asynchronous method
    /// (a bank debit) will succeed or fail later.
    RecordCheckoutPending {
        checkout_session_id: CheckoutSessionId,
        account_id: AccountId,
    },
    RecordCheckoutFailed {
        checkout_session_id: CheckoutSessionId,
        reason: FailureReason,
    },
    /// `charge.refunded`: Stripe's `amount_refunded` is cumulative.
    RecordRefund {
        charge_id: ChargeId,
        refunded_total: Money,
    },
    /// `charge.dispute.created` or `charge.dispute.closed` (which carries the whole dispute,
    /// so a close that arrives first opens it too).
    RecordDispute {
        dispute_id: DisputeId,
        charge_id: ChargeId,
        amount: Money,
        reason: String,
        status: DisputeStatus,
    },
}

impl PaymentCommand {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentCommand::RecordCheckoutPaid { .. } => "RecordCheckoutPaid",
            PaymentCommand::RecordCheckoutPending { .. } => "RecordCheckoutPending",
            PaymentCommand::RecordCheckoutFailed { .. } => "RecordCheckoutFailed",
            PaymentCommand::RecordRefund { .. } => "RecordRefund",
            PaymentCommand::RecordDispute { .. } => "RecordDispute",
        }
    }
}
