//! The Payment aggregate: one stream per Stripe payment intent, recording what Stripe told us
//! about it (paid, refunded so far, disputes) in whatever order Stripe delivered it, and the
//! process manager's plan: the Account command each new fact becomes, in the order the Account
//! must see them (the purchase first, whatever arrived before it).
//!
//! This module never credits anything itself (money moves only on the Account stream) and
//! never reads a clock: Stripe's times arrive as fields.

pub mod aggregate;
pub mod commands;
pub mod error;
pub mod events;
pub mod plan;

#[cfg(test)]
mod tests;

pub use aggregate::{Payment, MAX_FACTS};
pub use commands::{CheckoutTerms, DisputeStatus, FailureReason, PaymentCommand, MAX_BONUS_BPS};
pub use error::PaymentError;
pub use events::PaymentEvent;
pub use plan::{account_steps, AccountStep};
