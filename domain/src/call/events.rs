//! Call events: past tense, facts about one call. None of them moves money: the money of a
//! call is on its Account stream (`CreditReserved` per grant, one `ReservationSettled`); the
//! Call stream records which reservations belong to the call and what its talk cost.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::call::limits::GrantPolicy;
use crate::call::values::{
    CallQuality, EndCause, FailCause, FinalUnitReason, HangupReason, NodeId, SealedDestination,
};
use crate::ids::{AccountId, ActorId, CallId, DeckId, QuoteId, ReservationId};
use crate::money::Money;
use crate::rating::Tariff;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CallEvent {
    /// `start` was authorised: the call is charged by `tariff`, the quote's selling price.
    CallPlaced {
        call_id: CallId,
        account_id: AccountId,
        node_id: NodeId,
        destination: SealedDestination,
        country_iso: String,
        country: String,
        matched_prefix: String,
        description: String,
        tariff: Tariff,
        /// Our cost per minute from the deck row the quote matched (absent in calls placed
        /// before rate corrections existed); our cost side and margin are rated from it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_per_minute: Option<Money>,
        deck_id: DeckId,
        quote_id: QuoteId,
        max_ring_seconds: u32,
        max_call_seconds: u32,
        /// What the daily spend cap left when the call started; grants stop there.
        spend_limit: Money,
        policy: GrantPolicy,
        placed_at: DateTime<Utc>,
    },
    /// A reservation on the account (its `CreditReserved`) now belongs to this call.
    CallGranted {
        reservation_id: ReservationId,
        amount: Money,
        /// Everything reserved for the call so far, this grant included.
        reserved: Money,
        /// The talk-time ceiling `reserved` pays for, cumulative since the 200 OK.
        granted_seconds: u64,
        /// Set when no further grant will come.
        final_unit: Option<FinalUnitReason>,
        at: DateTime<Utc>,
    },
    /// A grant was asked for and could not be made: the current ceiling is the last.
    CallFinalUnit {
        reason: FinalUnitReason,
        granted_seconds: u64,
        at: DateTime<Utc>,
    },
    CallRinging {
        seq: u64,
        at: DateTime<Utc>,
    },
    /// The 200 OK: billing starts. `seq` is the report that said so (an interim implies it).
    CallAnswered {
        seq: u64,
        at: DateTime<Utc>,
    },
    /// A metering fact, no postings: cumulative talk, billed seconds and cost after `seq`.
    CallTicked {
        seq: u64,
        talk_ms: u64,
        billed_seconds: u64,
        cost: Money,
        at: DateTime<Utc>,
    },
    CallHangupRequested {
        reason: HangupReason,
        at: DateTime<Utc>,
    },
    /// The call is over; the api settles `cost` on the account, which charges `charged`.
    CallEnded {
        /// The `stop` report's seq; `None` when swept.
        seq: Option<u64>,
        cause: EndCause,
        talk_ms: u64,
        billed_seconds: u64,
        cost: Money,
        reserved: Money,
        /// `min(cost, reserved)`: never more than was reserved for the call.
        charged: Money,
        /// `cost - charged`: the house's loss, talk past the grants.
        overrun: Money,
        quality: Option<CallQuality>,
        at: DateTime<Utc>,
    },
    /// The call ended before it was answered; it costs nothing.
    CallFailed {
        seq: Option<u64>,
        cause: FailCause,
        sip_status: Option<u16>,
        at: DateTime<Utc>,
    },
    /// A fraud rule's verdict on the call, from the fraud process manager.
    CallFlagged {
        rule: String,
        /// 0-1000, higher is more suspicious.
        score: u16,
        evidence: String,
    },
    /// An ended call re-priced by a rate correction (`correction` is its id, `rc-N`, and
    /// `sequence` its N). The customer side only ever goes down: `refund`
    /// (`old_charged - new_charged`, zero when the corrected price is not lower) goes back to
    /// the customer by `AdjustCredit { call_id, correction }`. Our cost side is re-rated by the
    /// latest correction: `our_rate_per_minute` and `new_our_cost` are the margin's new basis.
    CallReRated {
        correction: String,
        #[serde(default)]
        sequence: u64,
        actor: ActorId,
        /// The corrected selling price under the call's own plan.
        tariff: Tariff,
        /// What the talk is worth at the selling price in force before and after.
        old_cost: Money,
        new_cost: Money,
        old_charged: Money,
        new_charged: Money,
        refund: Money,
        #[serde(default)]
        our_rate_per_minute: Option<Money>,
        #[serde(default)]
        old_our_cost: Option<Money>,
        #[serde(default)]
        new_our_cost: Option<Money>,
        at: DateTime<Utc>,
    },
}

impl CallEvent {
    pub fn name(&self) -> &'static str {
        match self {
            CallEvent::CallPlaced { .. } => "CallPlaced",
            CallEvent::CallGranted { .. } => "CallGranted",
            CallEvent::CallFinalUnit { .. } => "CallFinalUnit",
            CallEvent::CallRinging { .. } => "CallRinging",
            CallEvent::CallAnswered { .. } => "CallAnswered",
            CallEvent::CallTicked { .. } => "CallTicked",
            CallEvent::CallHangupRequested { .. } => "CallHangupRequested",
            CallEvent::CallEnded { .. } => "CallEnded",
            CallEvent::CallFailed { .. } => "CallFailed",
            CallEvent::CallFlagged { .. } => "CallFlagged",
            CallEvent::CallReRated { .. } => "CallReRated",
        }
    }
}

impl DomainEvent for CallEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
