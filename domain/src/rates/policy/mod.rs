//! The RatePolicy aggregate: one small stream (`rate-policy`) holding the admin's pricing rules
//! and the admin-editable list of blocked destinations, so every price a caller was shown can
//! be explained by the rules in force at that instant.

pub mod aggregate;
pub mod commands;
pub mod events;

#[cfg(test)]
mod tests;

pub use aggregate::{BlockRule, PolicyError, RatePolicy, MAX_BLOCK_RULES, POLICY_STREAM};
pub use commands::PolicyCommand;
pub use events::PolicyEvent;
