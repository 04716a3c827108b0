//! Call commands. Time (`now`, the api's clock when the command runs), ids (call, reservation)
//! and the quote come in with the command; the aggregate never reads a clock or mints an id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::call::limits::{CallerFacts, GrantPolicy, Limits};
use crate::call::values::{
    CallQuality, DialledNumber, EndCause, FailCause, FinalUnitReason, HangupReason, NodeId, SealedDestination,
};
use crate::ids::{AccountId, ActorId, CallId, ReservationId};
use crate::money::Money;
use crate::rates::quote::Quote;

/// The `start` request, with everything the api gathered to decide it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceCall {
    /// `UUIDv5(NS_CALL, call token jti)`: a retried start lands on the same call.
    pub call_id: CallId,
    /// From the call token.
    pub account_id: AccountId,
    /// From the call token; the node that sent `start`.
    pub node_id: NodeId,
    /// Only to check the quote; the event keeps `sealed`.
    pub dialled: DialledNumber,
    pub sealed: SealedDestination,
    pub quote: Quote,
    pub caller: CallerFacts,
    pub limits: Limits,
    pub policy: GrantPolicy,
    pub now: DateTime<Utc>,
}

/// What the node reported in `progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Progress {
    Ringing,
    Answered,
    Failed {
        cause: FailCause,
        sip_status: Option<u16>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum CallCommand {
    PlaceCall(Box<PlaceCall>),
    /// The api reserved `amount` on the account (`CreditReserved`) for the grant a decision
    /// asked for; `amount` may be less than asked when that is all the account holds.
    RecordGrant {
        reservation_id: ReservationId,
        amount: Money,
        now: DateTime<Utc>,
    },
    /// The account refused the reservation a decision asked for.
    RefuseGrant {
        reason: FinalUnitReason,
        now: DateTime<Utc>,
    },
    ReportProgress {
        seq: u64,
        progress: Progress,
        now: DateTime<Utc>,
    },
    ReportInterim {
        seq: u64,
        talk_ms: u64,
        now: DateTime<Utc>,
    },
    ReportStop {
        seq: u64,
        talk_ms: u64,
        cause: EndCause,
        quality: Option<CallQuality>,
        now: DateTime<Utc>,
    },
    /// Ban, freeze, admin action, or talk past a final grant: ask the node to end the call.
    RequestHangup {
        reason: HangupReason,
        now: DateTime<Utc>,
    },
    /// From the sweeper: end the call if it has been silent too long.
    Sweep {
        now: DateTime<Utc>,
    },
    Flag {
        rule: String,
        score: u16,
        evidence: String,
    },
    /// A rate correction (`rc-N` as `AdjustCredit` names it, and its N) re-prices an ended
    /// call at corrected per-minute rates under the call's own plan. The customer is only ever
    /// refunded (the caller was shown the quote); our cost side follows the latest correction.
    ReRate {
        correction: String,
        sequence: u64,
        selling_per_minute: Money,
        cost_per_minute: Money,
        actor: ActorId,
        now: DateTime<Utc>,
    },
}

impl CallCommand {
    pub fn name(&self) -> &'static str {
        match self {
            CallCommand::PlaceCall(_) => "PlaceCall",
            CallCommand::RecordGrant { .. } => "RecordGrant",
            CallCommand::RefuseGrant { .. } => "RefuseGrant",
            CallCommand::ReportProgress { .. } => "ReportProgress",
            CallCommand::ReportInterim { .. } => "ReportInterim",
            CallCommand::ReportStop { .. } => "ReportStop",
            CallCommand::RequestHangup { .. } => "RequestHangup",
            CallCommand::Sweep { .. } => "Sweep",
            CallCommand::Flag { .. } => "Flag",
            CallCommand::ReRate { .. } => "ReRate",
        }
    }
}
