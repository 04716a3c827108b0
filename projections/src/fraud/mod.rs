//! Fraud signals (issue 6, item 7): what the fraud rules read, folded from Call and Account
//! events — per call its account, time, matched prefix (never the number), rate, duration and
//! cost (`fraud_calls`); per account its opening time (`fraud_accounts`) and purchases
//! (`fraud_purchases`); and the flags already recorded (`fraud_flags`, from `CallFlagged`).
//! Rebuildable like any projection; it never writes events — the fraud process manager in the
//! api reads it and issues the commands.

mod fold;
mod read;
mod store;

#[cfg(test)]
mod tests;

pub use fold::{flag_row, fold_account, fold_call, FlagRow, Signals};
pub use read::{account_calls, account_facts, account_flags, call_facts, flags_page, FlagView};
pub use store::FraudSignals;
