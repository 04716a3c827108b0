//! Fraud detection (issue 6, item 7; docs/fraud.md). The `fraud_signals` projection folds what
//! the rules need; this process manager reads the Call events after its own checkpoint (never
//! past the projection's), runs the rules (`ringledger_domain::fraud`) on each call touched,
//! and issues idempotent commands: `Flag` on the call keyed by (rule, call), and `Freeze`
//! (reason `fraud`) on the account keyed by the call whose flag tipped the score. So a rebuild,
//! a re-run from position 0 or `ringledger-replay verify` never flags or freezes twice.
//! `what_if` runs the same rules over history in memory and writes nothing. Never logs a number
//! or evidence (evidence names prefixes only, but stays in the log and the admin pages).

mod config;
mod process;
pub mod ranges;
mod whatif;

use ringledger_domain::fraud::RiskRangeError;
use sqlx::PgPool;

use crate::calls::CallService;
use crate::ledger::AccountService;
use crate::store::PostgresStore;

pub use config::FraudConfig;
pub use process::ScanReport;
pub use whatif::{what_if, AccountVerdict, WhatIf, WhatIfReport};

#[derive(Debug, thiserror::Error)]
pub enum FraudError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Projection(#[from] ringledger_projections::ProjectionError),
    #[error("{0}")]
    Range(#[from] RiskRangeError),
    #[error("{0}")]
    Internal(String),
}

/// Cheap to clone.
#[derive(Clone)]
pub struct FraudService {
    pool: PgPool,
    calls: CallService,
    accounts: AccountService<PostgresStore>,
    config: std::sync::Arc<FraudConfig>,
}

impl FraudService {
    pub fn new(
        pool: PgPool,
        calls: CallService,
        accounts: AccountService<PostgresStore>,
        config: FraudConfig,
    ) -> FraudService {
        FraudService {
            pool,
            calls,
            accounts,
            config: std::sync::Arc::new(config),
        }
    }

    pub fn config(&self) -> &FraudConfig {
        &self.config
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
