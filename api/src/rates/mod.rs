//! The rate engine's services: deck imports (a durable job), activation, pricing policy,
//! the in-memory lookup rebuilt from the rate table projection, and quotes. The admin pages,
//! the JSON API and `ringledger-replay rates` all call these; none of them holds a rule of
//! its own.

mod book;
mod corrections;
mod import;
pub mod jobs;
mod quotes;
mod seed;

use std::sync::Arc;

use ringledger_domain::rates::correction::RateCorrections;
use ringledger_domain::rates::deck::{DeckCommand, RateDeck, RateDeckError};
use ringledger_domain::rates::policy::{PolicyCommand, PolicyError, RatePolicy, POLICY_STREAM};
use ringledger_domain::{ActorId, DeckId};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

pub use book::{BookCorrection, PriceListRow, RateBook, RateBookHandle, Rated};
pub use corrections::CorrectionRequest;
pub use import::{deck_imported, fingerprint, ImportRequest, ImportStatus};
pub use quotes::{QuoteOutcome, QuoteRefusal, QuoteRequest};
pub use seed::seed_development_deck;

use crate::ledger::{CommandError, Envelope, Ledger, LedgerConfig};
use crate::store::PostgresStore;

/// `[rates]` in the configuration (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatesConfig {
    /// How long a quote holds.
    pub quote_ttl_seconds: i64,
    /// The longest call a quote promises, whatever the credit.
    pub max_call_seconds: u64,
    /// Region for numbers typed in national format when the caller has none.
    pub default_region: String,
    /// Our caller id toward the trunk, for rows priced by caller origin (digits, optional).
    pub origination_number: Option<String>,
    /// Largest deck file accepted.
    pub max_upload_bytes: u64,
    /// Development only: import and activate a small sample deck into an empty log
    /// (`scripts/dev` turns it on).
    pub seed_sample_deck: bool,
}

impl Default for RatesConfig {
    fn default() -> Self {
        RatesConfig {
            quote_ttl_seconds: ringledger_domain::rates::quote::DEFAULT_QUOTE_TTL_SECONDS,
            max_call_seconds: 4 * 3_600,
            default_region: "US".into(),
            origination_number: None,
            max_upload_bytes: 256 * 1024 * 1024,
            seed_sample_deck: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Refused(String),
    /// A stored quote does not fit the call that names it.
    #[error("{0}")]
    Quote(#[from] quotes::QuoteRefusal),
    #[error("no rate deck is active yet; import one and activate it")]
    NoActiveDeck,
    #[error("the rate service is busy; try again shortly")]
    Busy,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Store(String),
}

impl RateError {
    fn command<E: std::error::Error>(e: CommandError<E>) -> RateError {
        match e {
            CommandError::Rejected(reason) => RateError::Refused(reason.to_string()),
            CommandError::Busy | CommandError::Conflict(_) => RateError::Busy,
            other => RateError::Store(other.to_string()),
        }
    }
    pub(crate) fn deck(e: CommandError<RateDeckError>) -> RateError {
        Self::command(e)
    }
}

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct RateService {
    pool: PgPool,
    decks: Ledger<RateDeck, PostgresStore>,
    policy: Ledger<RatePolicy, PostgresStore>,
    corrections: Ledger<RateCorrections, PostgresStore>,
    book: RateBookHandle,
    config: Arc<RatesConfig>,
}

impl RateService {
    /// `appended` is the wake-up the NOTIFY sender listens on (shared with the other ledgers).
    pub fn new(
        pool: PgPool,
        store: Arc<PostgresStore>,
        ledger: LedgerConfig,
        appended: Arc<tokio::sync::Notify>,
        config: RatesConfig,
    ) -> RateService {
        RateService {
            pool,
            decks: Ledger::with_appended(store.clone(), ledger.clone(), appended.clone()),
            policy: Ledger::with_appended(store.clone(), ledger.clone(), appended.clone()),
            corrections: Ledger::with_appended(store, ledger, appended),
            book: RateBookHandle::default(),
            config: Arc::new(config),
        }
    }

    /// A service of its own over `pool` (the CLI, benchmarks, tests): a store and a wake-up
    /// of its own; run `crate::notify::run` on [`RateService::appended`] to tell live runners.
    pub fn standalone(pool: PgPool, config: RatesConfig) -> RateService {
        let store = Arc::new(PostgresStore::new(pool.clone()));
        let appended = Arc::new(tokio::sync::Notify::new());
        RateService::new(pool, store, LedgerConfig::default(), appended, config)
    }

    /// Woken after each append by this service's ledgers.
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.decks.appended()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
    pub fn config(&self) -> &RatesConfig {
        &self.config
    }
    pub fn book(&self) -> &RateBookHandle {
        &self.book
    }

    /// Makes a fully imported deck the one quotes and calls use.
    pub async fn activate(
        &self,
        deck_id: DeckId,
        actor: ActorId,
        skip_bad_rows: bool,
    ) -> Result<(), RateError> {
        let command = DeckCommand::Activate {
            deck_id,
            actor,
            skip_bad_rows,
        };
        self.decks
            .execute(&deck_id.to_string(), Envelope::new(command))
            .await
            .map_err(RateError::deck)?;
        Ok(())
    }

    pub async fn set_policy(&self, command: PolicyCommand) -> Result<(), RateError> {
        self.policy
            .execute(POLICY_STREAM, Envelope::new(command))
            .await
            .map_err(RateError::command::<PolicyError>)?;
        Ok(())
    }
}
