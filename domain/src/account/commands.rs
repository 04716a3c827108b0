//! Account commands: imperative, carrying every id, amount and actor the decision needs.
//! Time and ids come from outside; the aggregate never mints or reads them.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::account::events::{FreezeReason, ReleaseReason};
use crate::ids::{
    AccountId, ActorId, CallId, ChargeId, CheckoutSessionId, DisputeId, GrantId, PaymentId, ReservationId,
};
use crate::money::{Currency, Money};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum AccountCommand {
    OpenAccount {
        account_id: AccountId,
        currency: Currency,
    },
    /// A Stripe payment that succeeded: `paid` from the card, `bonus` from the tier's terms.
    PurchaseCredit {
        payment_id: PaymentId,
        paid: Money,
        bonus: Money,
        /// The Checkout Session it was paid through, for the statement line.
        checkout_session_id: Option<CheckoutSessionId>,
    },
    GrantCredit {
        grant_id: GrantId,
        amount: Money,
        promotion: String,
    },
    /// An operator's correction, either sign; never takes `available` below zero.
    AdjustCredit {
        amount: Money,
        reason: String,
        actor: ActorId,
        call_id: Option<CallId>,
        correction: Option<String>,
    },
    ReserveCredit {
        reservation_id: ReservationId,
        call_id: CallId,
        amount: Money,
    },
    /// `ReserveCredit` for a call's grant, within the account's call limits, decided here on
    /// the Account's own state so two calls starting at once cannot both pass: a call's first
    /// reservation is refused when `max_live_calls` calls already hold reservations, and any
    /// grant is refused past what `daily_spend_cap` leaves of the spend of `day` (UTC, the
    /// command's time).
    ReserveCallCredit {
        reservation_id: ReservationId,
        call_id: CallId,
        amount: Money,
        limits: CallCreditLimits,
    },
    /// Charge a finished call once, against everything reserved for it.
    SettleCall {
        call_id: CallId,
        cost: Money,
    },
    ReleaseReservation {
        reservation_id: ReservationId,
        reason: ReleaseReason,
    },
    /// Stripe's cumulative refunded amount for a payment.
    RecordRefund {
        payment_id: PaymentId,
        refunded_total: Money,
        /// The refunded charge, for the statement line.
        charge_id: Option<ChargeId>,
    },
    OpenDispute {
        dispute_id: DisputeId,
        payment_id: PaymentId,
        amount: Money,
    },
    WinDispute {
        dispute_id: DisputeId,
    },
    LoseDispute {
        dispute_id: DisputeId,
    },
    Freeze {
        reason: FreezeReason,
        actor: Option<ActorId>,
        note: String,
    },
    Unfreeze {
        reason: FreezeReason,
        actor: Option<ActorId>,
        note: String,
    },
    Ban {
        actor: ActorId,
        reason: String,
    },
}

/// The per-account call limits a `ReserveCallCredit` is decided under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallCreditLimits {
    pub max_live_calls: u32,
    pub daily_spend_cap: Money,
    /// The UTC day of the command's time: the day whose spend the cap bounds.
    pub day: NaiveDate,
}

impl AccountCommand {
    pub fn name(&self) -> &'static str {
        match self {
            AccountCommand::OpenAccount { .. } => "OpenAccount",
            AccountCommand::PurchaseCredit { .. } => "PurchaseCredit",
            AccountCommand::GrantCredit { .. } => "GrantCredit",
            AccountCommand::AdjustCredit { .. } => "AdjustCredit",
            AccountCommand::ReserveCredit { .. } => "ReserveCredit",
            AccountCommand::ReserveCallCredit { .. } => "ReserveCallCredit",
            AccountCommand::SettleCall { .. } => "SettleCall",
            AccountCommand::ReleaseReservation { .. } => "ReleaseReservation",
            AccountCommand::RecordRefund { .. } => "RecordRefund",
            AccountCommand::OpenDispute { .. } => "OpenDispute",
            AccountCommand::WinDispute { .. } => "WinDispute",
            AccountCommand::LoseDispute { .. } => "LoseDispute",
            AccountCommand::Freeze { .. } => "Freeze",
            AccountCommand::Unfreeze { .. } => "Unfreeze",
            AccountCommand::Ban { .. } => "Ban",
        }
    }
}
