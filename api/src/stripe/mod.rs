//! Stripe: the webhook signature scheme shared by our verifier and the development test double,
//! the API client Checkout and refunds use, and the double itself (`ringledger stripe-sim`).

pub mod client;
pub mod event;
pub mod signature;
pub mod sim;
