//! What a decision tells the api besides its events: the answer for the media node (kept for
//! the last `seq`, so a repeat gets it again) and, when the grant runs low, how much to reserve
//! on the account before answering.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::call::events::CallEvent;
use crate::call::values::HangupReason;
use crate::money::Money;

/// The grant as the protocol sends it (docs/metering-protocol.md, "The grant").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAnswer {
    pub seq: u64,
    pub granted_seconds: u64,
    pub seconds_left: u64,
    pub final_unit: bool,
    pub valid_until: DateTime<Utc>,
    pub validity_seconds: u32,
    pub hangup: Option<HangupReason>,
}

/// The `stop` answer, and what the api settles on the account: `SettleCall { cost }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    pub seq: Option<u64>,
    pub billed_seconds: u64,
    pub cost: Money,
    pub reserved: Money,
    pub charged: Money,
    pub overrun: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reply {
    Grant(GrantAnswer),
    /// `progress: failed` was recorded.
    Failed {
        seq: Option<u64>,
    },
    Ended(Settlement),
    /// Nothing to say to the media node (flags, hangup requests, sweeps of unanswered calls).
    Done,
}

/// A decision: events to append, the answer, and an optional grant for the api to reserve
/// (`ReserveCredit` on the Account, then `RecordGrant` or `RefuseGrant` here, whose reply
/// replaces this one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<CallEvent>,
    pub reply: Reply,
    pub grant: Option<GrantRequest>,
    /// The call ended or failed holding reservations: settle them with
    /// `AccountCommand::SettleCall { call_id, cost: settle }` (zero for a failed call).
    pub settle: Option<Money>,
}

/// Reserve `amount` for the call: all of it if the account holds it, else what it holds
/// (the grant is then final), else refuse the grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRequest {
    pub amount: Money,
}

impl Decision {
    /// The hangup the api must send to the media node, if this decision asked for one.
    pub fn hangup(&self) -> Option<HangupReason> {
        self.events.iter().find_map(|e| match e {
            CallEvent::CallHangupRequested { reason, .. } => Some(*reason),
            _ => None,
        })
    }

    /// The refund the api must credit with `AdjustCredit { call_id, correction }`, if any.
    pub fn refund(&self) -> Option<(Money, &str)> {
        self.events.iter().find_map(|e| match e {
            CallEvent::CallReRated {
                refund, correction, ..
            } if refund.is_positive() => Some((*refund, correction.as_str())),
            _ => None,
        })
    }
}
