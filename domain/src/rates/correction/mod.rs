//! Rate corrections: one small stream (`rate-corrections`) of `RatesCorrected` events, each
//! fixing the cost and selling rate of one destination prefix over an effective range. A
//! correction never edits a deck or a call: the rate table and the rate book apply it to
//! quotes within its range, and the re-rating process manager re-prices the ended calls it
//! covers with compensating events (`CallReRated`, `CreditAdjusted`).
//!
//! Corrections are numbered by their place in the stream (`rc-1`, `rc-2`, ...): a later
//! correction of the same call decides our cost side, whichever order the calls are reached in.

pub mod aggregate;
pub mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{
    CorrectRates, CorrectionError, CorrectionId, RateCorrections, CORRECTIONS_STREAM, MAX_REASON_CHARS,
};
pub use events::{CorrectionEvent, RatePair, RatesCorrected};
