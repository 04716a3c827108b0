//! The Account aggregate: a customer's wallet. Every posting on a customer's ledger accounts
//! is on this stream, so folding it gives the exact balance at any point.

pub mod aggregate;
pub mod commands;
pub mod error;
pub mod events;
mod ledger;

#[cfg(test)]
mod tests;

pub use aggregate::{Account, CustomerBalances, OpenReservation, MAX_OPEN_RESERVATIONS};
pub use commands::{AccountCommand, CallCreditLimits};
pub use error::AccountError;
pub use events::{AccountEvent, FreezeReason, ReleaseReason};
