//! Account events: past tense, and every one that moves money carries its postings.

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::{
    AccountId, ActorId, CallId, ChargeId, CheckoutSessionId, DisputeId, GrantId, PaymentId, ReservationId,
};
use crate::money::{Currency, Money};
use crate::postings::Postings;

/// Why an account is frozen. It stays frozen while any reason stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeReason {
    Fraud,
    Dispute,
    Admin,
    Receivable,
}

/// Why a reservation was released without being charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    /// The call never recorded it (e.g. a re-grant that lost a race with the sweeper).
    Unused,
    /// The call ended before using it.
    CallEnded,
    /// Withdrawn by an operator.
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum AccountEvent {
    AccountOpened {
        account_id: AccountId,
        currency: Currency,
    },
    CreditPurchased {
        payment_id: PaymentId,
        paid: Money,
        bonus: Money,
        /// The Checkout Session it was paid through (absent in events written before issue 8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        checkout_session_id: Option<CheckoutSessionId>,
        postings: Postings,
    },
    CreditGranted {
        grant_id: GrantId,
        amount: Money,
        promotion: String,
        postings: Postings,
    },
    CreditAdjusted {
        amount: Money,
        reason: String,
        actor: ActorId,
        /// Set when the adjustment is a re-rating refund.
        call_id: Option<CallId>,
        correction: Option<String>,
        postings: Postings,
    },
    CreditReserved {
        reservation_id: ReservationId,
        call_id: CallId,
        amount: Money,
        postings: Postings,
        /// The UTC day whose spend this reservation counts toward (set by
        /// `ReserveCallCredit`); absent on reservations made without call limits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        day: Option<NaiveDate>,
    },
    ReservationSettled {
        call_id: CallId,
        reservation_ids: Vec<ReservationId>,
        reserved: Money,
        /// What the call cost; may exceed `reserved` (talk past the grant).
        cost: Money,
        /// What the customer paid: `min(cost, reserved)`.
        charged: Money,
        /// The house's loss: `cost - charged`.
        overrun: Money,
        postings: Postings,
    },
    ReservationReleased {
        reservation_id: ReservationId,
        call_id: CallId,
        amount: Money,
        reason: ReleaseReason,
        postings: Postings,
    },
    PaymentRefunded {
        payment_id: PaymentId,
        /// Stripe's cumulative refunded amount after this refund.
        refunded_total: Money,
        refunded: Money,
        bonus_reversed: Money,
        /// The refunded charge (absent in events written before issue 8).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        charge_id: Option<ChargeId>,
        postings: Postings,
    },
    DisputeOpened {
        dispute_id: DisputeId,
        payment_id: PaymentId,
        amount: Money,
        postings: Postings,
    },
    DisputeWon {
        dispute_id: DisputeId,
        amount: Money,
        postings: Postings,
    },
    DisputeLost {
        dispute_id: DisputeId,
        amount: Money,
        postings: Postings,
    },
    AccountFrozen {
        reason: FreezeReason,
        actor: Option<ActorId>,
        note: String,
    },
    AccountUnfrozen {
        reason: FreezeReason,
        actor: Option<ActorId>,
        note: String,
    },
    AccountBanned {
        actor: ActorId,
        reason: String,
    },
}

impl AccountEvent {
    pub fn name(&self) -> &'static str {
        match self {
            AccountEvent::AccountOpened { .. } => "AccountOpened",
            AccountEvent::CreditPurchased { .. } => "CreditPurchased",
            AccountEvent::CreditGranted { .. } => "CreditGranted",
            AccountEvent::CreditAdjusted { .. } => "CreditAdjusted",
            AccountEvent::CreditReserved { .. } => "CreditReserved",
            AccountEvent::ReservationSettled { .. } => "ReservationSettled",
            AccountEvent::ReservationReleased { .. } => "ReservationReleased",
            AccountEvent::PaymentRefunded { .. } => "PaymentRefunded",
            AccountEvent::DisputeOpened { .. } => "DisputeOpened",
            AccountEvent::DisputeWon { .. } => "DisputeWon",
            AccountEvent::DisputeLost { .. } => "DisputeLost",
            AccountEvent::AccountFrozen { .. } => "AccountFrozen",
            AccountEvent::AccountUnfrozen { .. } => "AccountUnfrozen",
            AccountEvent::AccountBanned { .. } => "AccountBanned",
        }
    }

    /// The postings of a money event; `None` for events that move no money.
    pub fn postings(&self) -> Option<&Postings> {
        match self {
            AccountEvent::CreditPurchased { postings, .. }
            | AccountEvent::CreditGranted { postings, .. }
            | AccountEvent::CreditAdjusted { postings, .. }
            | AccountEvent::CreditReserved { postings, .. }
            | AccountEvent::ReservationSettled { postings, .. }
            | AccountEvent::ReservationReleased { postings, .. }
            | AccountEvent::PaymentRefunded { postings, .. }
            | AccountEvent::DisputeOpened { postings, .. }
            | AccountEvent::DisputeWon { postings, .. }
            | AccountEvent::DisputeLost { postings, .. } => Some(postings),
            AccountEvent::AccountOpened { .. }
            | AccountEvent::AccountFrozen { .. }
            | AccountEvent::AccountUnfrozen { .. }
            | AccountEvent::AccountBanned { .. } => None,
        }
    }
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
