//! Why a Call command is refused. Each error has the protocol's machine `code`
//! (docs/metering-protocol.md, "Errors") and a message that says what to do.

use crate::call::limits::{Denial, LimitsError};
use crate::money::{Currency, Money, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("call refused: {0}")]
    Denied(Denial),
    #[error("no such call: it was never started")]
    UnknownCall,
    #[error("this call was started with another quote or from another node; a call token starts one call")]
    StartMismatch,
    #[error("the call's first grant is still being reserved; try again shortly")]
    GrantPending,
    #[error("report seq {seq} is older than the last accepted seq {last} for this call; resend only the newest report")]
    StaleSeq { seq: u64, last: u64 },
    #[error("report seq must start at 1")]
    SeqZero,
    #[error("talk of {talk_ms} ms is longer than any call may last ({max_ms} ms)")]
    TalkTooLong { talk_ms: u64, max_ms: u64 },
    #[error("the call was answered; a failure after the answer is reported with `stop`")]
    FailedAfterAnswer,
    #[error("SIP status {0} is not a final failure status (300-699)")]
    BadSipStatus(u16),
    #[error("the call is over ({0}); hang up")]
    CallOver(&'static str),
    #[error("the call is not silent long enough to sweep: {silent_seconds} s since its last report, the sweeper waits {threshold_seconds} s")]
    NotStale {
        silent_seconds: i64,
        threshold_seconds: i64,
    },
    #[error("at most {0} grants per call")]
    TooManyGrants(u32),
    #[error("amount is in {got}, but this call is charged in {expected}")]
    WrongCurrency { expected: Currency, got: Currency },
    #[error("a grant must reserve a positive amount (got {0})")]
    AmountMustBePositive(Money),
    #[error("fraud score {0} is above the scale's 1000")]
    ScoreOutOfRange(u16),
    #[error("{field} must be 1-{max} characters")]
    Text { field: &'static str, max: usize },
    #[error("only an ended call can be re-rated; this one is {0}")]
    NotEnded(&'static str),
    #[error("a correction's number starts at 1 (rc-1)")]
    CorrectionNumberZero,
    #[error("a corrected rate cannot be negative (got {0})")]
    NegativeRate(Money),
    #[error("configuration: {0}")]
    Limits(#[from] LimitsError),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl CallError {
    /// The protocol's machine code.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Denied(denial) => denial.code(),
            CallError::UnknownCall => "unknown_call",
            CallError::GrantPending => "busy",
            CallError::StaleSeq { .. } => "stale_seq",
            CallError::CallOver(_) => "call_over",
            CallError::SeqZero
            | CallError::TalkTooLong { .. }
            | CallError::FailedAfterAnswer
            | CallError::BadSipStatus(_) => "invalid_report",
            CallError::StartMismatch => "invalid_call_token",
            _ => "internal",
        }
    }
}
