//! RingLedger's api: the event store adapter, command services, HTTP, configuration and
//! startup. Business decisions live in the domain crate; this crate does the IO around them.

pub mod auth;
pub mod background;
pub mod calls;
pub mod checkout;
pub mod config;
pub mod devdb;
pub mod fraud;
pub mod http;
pub mod ledger;
pub mod mail;
pub mod notify;
pub mod payments;
pub mod rates;
pub mod rerate;
pub mod startup;
pub mod store;
pub mod stripe;
pub mod telemetry;
