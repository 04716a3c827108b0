//! Top-up offers: the tiers customers buy credit in (a price, an optional bonus in basis
//! points) and the bounds of a custom amount, as one small stream (`topup-offers`). Every change
//! is an event with a version, so each purchase names the terms it was bought under
//! (`terms_version` in the Stripe metadata) and later changes never touch it. The currency is
//! part of the data; nothing here assumes one. The credited amount is never taken from here:
//! the webhook side credits what Stripe says was paid.

pub mod aggregate;
pub mod commands;
pub mod events;
pub mod minor;
pub mod offers;

#[cfg(test)]
mod tests;

pub use aggregate::{TopUpOffers, OFFERS_STREAM};
pub use commands::OffersCommand;
pub use events::OffersEvent;
pub use offers::{Choice, CustomRange, Offers, OffersError, PurchaseTerms, Tier, CUSTOM_TIER};
