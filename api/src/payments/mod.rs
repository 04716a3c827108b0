//! Prepaid credit from Stripe (issue 8, the money half): the webhook's receiving end, the
//! inbox, the durable job that processes it (the brief's StripeWebhookJob) and the process
//! manager that turns each fact on a Payment stream into one Account command.
//!
//! The request only verifies, records and answers; everything that moves money runs later in
//! the job, from the recorded payload. Money is credited only from Stripe's own object, never
//! from our tier table, and only through idempotent Account commands: any order of delivery,
//! any number of repeats and a crash between any two steps give the same ledger. This module
//! never logs a payload, a secret or a signature (docs/payments.md).

pub mod inbox;
pub mod jobs;
mod process;
mod receipt;

use std::sync::Arc;

use ringledger_domain::payment::Payment;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::config::Secret;
use crate::ledger::{AccountService, Ledger, LedgerConfig};
use crate::store::PostgresStore;

pub use inbox::{ReceiveError, Received, Refusal};
pub use process::{Processed, StepDone};

/// `[payments]` in the configuration (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsConfig {
    /// Raw webhook payloads (personal data) are purged this many days after receipt, once
    /// processed or ignored. The ledger and the inbox row's ids stay.
    pub inbox_retention_days: u32,
    /// The largest webhook body accepted; Stripe's events are a few kilobytes.
    pub webhook_max_body_bytes: usize,
    /// Webhook events processed at once by this process.
    pub worker_concurrency: usize,
    /// Attempts before a webhook event is dead-lettered for an admin (about a day of backoff).
    pub max_attempts: i32,
    /// How often the purge of old payloads runs.
    pub purge_every_seconds: i32,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            inbox_retention_days: 30,
            webhook_max_body_bytes: 256 * 1024,
            worker_concurrency: 8,
            max_attempts: 12,
            purge_every_seconds: 3_600,
        }
    }
}

impl PaymentsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=3_650).contains(&self.inbox_retention_days) {
            return Err(format!(
                "inbox_retention_days is {}; use 1 to 3650",
                self.inbox_retention_days
            ));
        }
        if !(1_024..=4 * 1024 * 1024).contains(&self.webhook_max_body_bytes) {
            return Err(format!(
                "webhook_max_body_bytes is {}; use 1024 to 4194304",
                self.webhook_max_body_bytes
            ));
        }
        if !(1..=64).contains(&self.worker_concurrency) {
            return Err(format!(
                "worker_concurrency is {}; use 1 to 64",
                self.worker_concurrency
            ));
        }
        if !(1..=100).contains(&self.max_attempts) {
            return Err(format!("max_attempts is {}; use 1 to 100", self.max_attempts));
        }
        if !(60..=86_400).contains(&self.purge_every_seconds) {
            return Err(format!(
                "purge_every_seconds is {}; use 60 to 86400",
                self.purge_every_seconds
            ));
        }
        Ok(())
    }
}

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct PaymentService {
    pool: PgPool,
    payments: Ledger<Payment, PostgresStore>,
    accounts: AccountService<PostgresStore>,
    config: Arc<PaymentsConfig>,
    /// The webhook endpoint's secrets: the current one, and the previous one during a rotation.
    secrets: Arc<Vec<Secret>>,
}

impl PaymentService {
    pub fn new(
        pool: PgPool,
        store: Arc<PostgresStore>,
        ledger: LedgerConfig,
        accounts: AccountService<PostgresStore>,
        config: PaymentsConfig,
        secrets: Vec<Secret>,
    ) -> PaymentService {
        let payments = Ledger::with_appended(store, ledger, accounts.ledger().appended());
        PaymentService {
            pool,
            payments,
            accounts,
            config: Arc::new(config),
            secrets: Arc::new(secrets),
        }
    }

    pub fn config(&self) -> &PaymentsConfig {
        &self.config
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The Payment command service (tests and tools read streams through it).
    pub fn ledger(&self) -> &Ledger<Payment, PostgresStore> {
        &self.payments
    }

    pub fn accounts(&self) -> &AccountService<PostgresStore> {
        &self.accounts
    }
}
