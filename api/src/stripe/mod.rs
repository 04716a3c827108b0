//! Stripe: the webhook signature scheme shared by our verifier and the development test double.
//! Checkout, the client and the test double build on it (issue 8).

pub mod event;
pub mod signature;
