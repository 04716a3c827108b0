//! Payment events: facts Stripe reported about one payment intent. None carries postings:
//! money moves on the Account stream, through the commands `plan` derives from these.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, ChargeId, CheckoutSessionId, DisputeId};
use crate::money::Money;
use crate::payment::commands::FailureReason;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum PaymentEvent {
    /// The money is ours: `paid` from Stripe's object, `bonus` = `bonus_bps` of it, rounded
    /// down to the micro-unit.
    PaymentSucceeded {
        account_id: AccountId,
        checkout_session_id: CheckoutSessionId,
        paid: Money,
        bonus: Money,
        bonus_bps: u32,
        tier: String,
        terms_version: u32,
    },
    PaymentPending {
        account_id: AccountId,
        checkout_session_id: CheckoutSessionId,
    },
    PaymentFailed {
        checkout_session_id: CheckoutSessionId,
        reason: FailureReason,
    },
    /// Stripe's cumulative refunded amount grew to `refunded_total`.
    PaymentRefunded {
        charge_id: ChargeId,
        refunded_total: Money,
    },
    DisputeOpened {
        dispute_id: DisputeId,
        charge_id: ChargeId,
        amount: Money,
        reason: String,
    },
    DisputeClosed {
        dispute_id: DisputeId,
        won: bool,
    },
}

impl PaymentEvent {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentEvent::PaymentSucceeded { .. } => "PaymentSucceeded",
            PaymentEvent::PaymentPending { .. } => "PaymentPending",
            PaymentEvent::PaymentFailed { .. } => "PaymentFailed",
            PaymentEvent::PaymentRefunded { .. } => "PaymentRefunded",
            PaymentEvent::DisputeOpened { .. } => "DisputeOpened",
            PaymentEvent::DisputeClosed { .. } => "DisputeClosed",
        }
    }
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
