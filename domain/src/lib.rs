//! RingLedger's pure model: money, ids, rating and the aggregates that turn commands into
//! events. Nothing here does IO or reads a clock: time, ids and quotes arrive with commands.
//! This crate must never depend on sqlx, tokio, axum, reqwest or hyper (a test checks).

pub mod account;
pub mod call;
pub mod e164;
pub mod fraud;
pub mod ids;
pub mod money;
pub mod payment;
pub mod postings;
pub mod rates;
pub mod rating;
pub mod topup;

pub use e164::{ParseNumberError, Region, UnknownRegion, E164};
pub use ids::{
    AccountId, ActorId, CallId, ChargeId, CheckoutSessionId, DeckId, DisputeId, GrantId, PaymentId, QuoteId,
    ReservationId,
};
pub use money::{Currency, Money, MoneyError, ParseMoneyError, MICROS_PER_UNIT};
pub use postings::{LedgerAccount, Posting, Postings, PostingsBuilder, PostingsError};
pub use rating::{BillingPlan, RatingError, Tariff};
