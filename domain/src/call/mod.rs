//! The Call aggregate: one call from `start` to its settlement, decided on the reports of the
//! metering protocol (docs/metering-protocol.md). It records metering facts and which
//! reservations belong to the call; it never moves money itself — the Account stream holds the
//! money (`CreditReserved` per grant, one `ReservationSettled` per call), driven by the api
//! from each `Decision`'s `grant` and `settle`.
//!
//! How the api drives a call:
//! 1. `PlaceCall` → `CallPlaced`, and a `GrantRequest`. The api reserves it on the Account
//!    (`ReserveCredit`, capped by what is available), then `RecordGrant` (→ `CallGranted`,
//!    whose reply is the `start` answer) or, if the Account refused, `RefuseGrant` (→
//!    `CallFailed { cause: no_credit }`, a denial for the node).
//! 2. `ReportProgress` / `ReportInterim` → `CallRinging`, `CallAnswered`, `CallTicked`; a
//!    `GrantRequest` when the grant runs low (then as in 1, with `CallFinalUnit` when refused).
//! 3. `ReportStop` or `Sweep` → `CallEnded` / `CallFailed` and `settle: Some(cost)`: the api
//!    sends `SettleCall { call_id, cost }`, which charges `min(cost, reserved)` and posts the
//!    rest of the cost from `overrun`, exactly as `CallEnded` says.
//! 4. `RequestHangup` → `CallHangupRequested`; the api posts `hangup` to the call's node.
//! 5. `ReRate` (after a rate correction) → `CallReRated`; a positive `refund` is credited by
//!    the api with `AdjustCredit { call_id, correction }`. Corrections only ever refund the
//!    customer; our cost side (the margin) follows the latest correction.

pub mod aggregate;
pub mod commands;
mod decide;
pub mod error;
pub mod events;
mod grant;
pub mod limits;
mod metering;
pub mod reply;
mod review;
pub mod values;

#[cfg(test)]
mod tests;

pub use aggregate::{talk_seconds, Call, CallTerms, Phase};
pub use commands::{CallCommand, PlaceCall, Progress};
pub use error::CallError;
pub use events::CallEvent;
pub use grant::MAX_GRANTS_PER_CALL;
pub use limits::{authorise, CallerFacts, Denial, GrantPolicy, Limits, LimitsError, Standing};
pub use metering::MAX_TALK_MS;
pub use reply::{Decision, GrantAnswer, GrantRequest, Reply, Settlement};
pub use review::{our_cost, MAX_CORRECTION_CHARS, MAX_EVIDENCE_CHARS, MAX_RULE_CHARS, MAX_SCORE};
pub use values::{
    CallQuality, DialledNumber, EndCause, FailCause, FinalUnitReason, HangupReason, LegQuality, NodeId,
    SealedDestination, ValueError,
};
