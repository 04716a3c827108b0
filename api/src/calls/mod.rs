//! The Call command service: drives each metering report across the Call and Account
//! aggregates as a process (docs/metering-protocol.md, "What each side records"). The Call
//! decides; this service reserves the grants it asks for and settles what it charged on the
//! Account. Every cross-aggregate step is idempotent by a key derived from the call (the grant
//! number, or the call itself for settlement), so a retry or a crash between two steps neither
//! loses nor doubles money: the next report, or a retry of the same one, picks the process up
//! from the Call's state. It never moves money except through Account commands, and never logs
//! a full phone number.

mod config;
mod facts;
pub mod hangup;
pub mod listing;
mod process;
pub mod seal;
mod sweep;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ringledger_domain::call::{
    Call, CallCommand, CallError, CallQuality, Denial, EndCause, FailCause, NodeId, Progress, Reply,
};
use ringledger_domain::{AccountId, CallId, Money, QuoteId, E164};
use sqlx::PgPool;

use crate::config::Secret;
use crate::ledger::{AccountService, Ledger, LedgerConfig};
use crate::rates::{QuoteRefusal, RateService};
use crate::store::PostgresStore;
use ringledger_projections::jobs::JobQueue;

pub use config::CallsConfig;
pub use sweep::{SweepReport, SWEEP_BATCH};

/// Why a metering request could not be answered as asked; `code()` is the protocol's.
#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("{0}")]
    Quote(#[from] QuoteRefusal),
    #[error("the token's `sub` is not the media node that holds this call")]
    OtherNode,
    #[error("the call service is busy; try again shortly")]
    Busy,
    #[error("internal error: {0}")]
    Internal(String),
}

impl CallsError {
    pub fn code(&self) -> &'static str {
        match self {
            CallsError::Call(e) => e.code(),
            CallsError::Quote(refusal) => refusal.code(),
            CallsError::OtherNode => "unauthorised",
            CallsError::Busy => "busy",
            CallsError::Internal(_) => "internal",
        }
    }

    /// The limit a denial names: `(name, value)`.
    pub fn limit(&self) -> Option<(&'static str, i64)> {
        match self {
            CallsError::Call(CallError::Denied(denial)) => denial.limit(),
            _ => None,
        }
    }
}

/// A `start` the api checked at its edge: the call token's account and node, the number parsed.
#[derive(Debug, Clone)]
pub struct StartCall {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub node_id: NodeId,
    pub quote_id: QuoteId,
    pub number: E164,
}

/// A report after `start`.
#[derive(Debug, Clone)]
pub enum Report {
    Progress(Progress),
    Interim {
        talk_ms: u64,
    },
    Stop {
        talk_ms: u64,
        cause: EndCause,
        quality: Option<CallQuality>,
    },
}

/// Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct CallService {
    pool: PgPool,
    calls: Ledger<Call, PostgresStore>,
    accounts: AccountService<PostgresStore>,
    rates: RateService,
    config: Arc<CallsConfig>,
    /// Where hangups and final-unit timers are enqueued.
    jobs: JobQueue,
    /// Signs the api's requests to media nodes (`hangup`); `None` refuses to send them.
    media_secret: Option<Secret>,
    http: reqwest::Client,
    /// The node holding each call (fixed by `CallPlaced` for the call's life, so never stale):
    /// the ownership check of a report without loading the call's stream each time.
    owners: Arc<Mutex<HashMap<CallId, NodeId>>>,
}

/// Calls whose node is remembered at most; past this the memory starts afresh.
const MAX_OWNERS: usize = 200_000;

impl CallService {
    pub fn new(
        pool: PgPool,
        store: Arc<PostgresStore>,
        ledger: LedgerConfig,
        accounts: AccountService<PostgresStore>,
        rates: RateService,
        config: CallsConfig,
    ) -> CallService {
        let calls = Ledger::with_appended(store, ledger, accounts.ledger().appended());
        CallService {
            jobs: JobQueue::new(pool.clone()),
            pool,
            calls,
            accounts,
            rates,
            config: Arc::new(config),
            media_secret: None,
            http: reqwest::Client::new(),
            owners: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The same service signing hangups with `media_secret`.
    pub fn with_media_secret(mut self, media_secret: Option<Secret>) -> CallService {
        self.media_secret = media_secret;
        self
    }

    pub fn config(&self) -> &CallsConfig {
        &self.config
    }

    pub fn ledger(&self) -> &Ledger<Call, PostgresStore> {
        &self.calls
    }

    /// The Account service the calls settle on (re-rating credits refunds through it).
    pub fn accounts(&self) -> &AccountService<PostgresStore> {
        &self.accounts
    }

    /// `start`: check the quote, gather the caller's facts, place the call and reserve its
    /// first grant. A retried start (same call id) gets the first answer.
    pub async fn start(&self, start: &StartCall, now: DateTime<Utc>) -> Result<(Call, Reply), CallsError> {
        let quote = self
            .rates
            .quote_for_call(start.quote_id, start.account_id, &start.number, now)
            .await
            .map_err(quote_error)?;
        let caller = facts::gather(&self.accounts, start.account_id, start.call_id, now).await?;
        let key = seal::account_key(&self.pool, start.account_id).await?;
        let sealed = seal::seal(&key, start.call_id, start.number.digits())?;
        let dialled = ringledger_domain::call::DialledNumber::parse(start.number.digits())
            .map_err(|e| CallsError::Internal(e.to_string()))?;
        let place = ringledger_domain::call::PlaceCall {
            call_id: start.call_id,
            account_id: start.account_id,
            node_id: start.node_id.clone(),
            dialled,
            sealed,
            quote,
            caller,
            limits: self.config.limits,
            policy: self.config.policy,
            now,
        };
        let (call, reply) = self
            .drive(start.call_id, CallCommand::PlaceCall(Box::new(place)))
            .await?;
        match reply {
            Reply::Grant(_) => Ok((call, reply)),
            _ => Err(self.first_grant_denial(&call, now).await?),
        }
    }

    /// Why the account refused a call's first grant, as the denial the node is sent: the
    /// limit and its value, the account's state, or the credit it lacks.
    async fn first_grant_denial(&self, call: &Call, now: DateTime<Utc>) -> Result<CallsError, CallsError> {
        let terms = call.terms().ok_or(CallsError::Call(CallError::UnknownCall))?;
        let account: ringledger_domain::account::Account = self
            .accounts
            .ledger()
            .load(&terms.account_id.to_string())
            .await
            .map_err(|e| CallsError::Internal(e.to_string()))?;
        let limits = &self.config.limits;
        let currency = terms.tariff.rate_per_minute.currency();
        let denial = match call.fail_cause() {
            Some(FailCause::ConcurrentCalls) => Denial::ConcurrentCalls {
                limit: limits.max_concurrent_calls,
            },
            Some(FailCause::DailySpendCap) => Denial::DailySpendCap {
                cap: Money::from_micros(limits.daily_spend_cap_micros, currency),
                spent: account.spent_on(now.date_naive()),
            },
            Some(FailCause::AccountBanned) => Denial::AccountBanned,
            Some(FailCause::AccountFrozen) => Denial::AccountFrozen {
                reasons: account.frozen_reasons().iter().copied().collect(),
            },
            _ => Denial::InsufficientCredit {
                available: account.money(account.balances().available),
                needed: terms.tariff.cost(1).map_err(CallError::from)?,
            },
        };
        Ok(CallsError::Call(CallError::Denied(denial)))
    }

    /// `progress`, `interim` or `stop` with its `seq`.
    /// `node` is the requesting node (the JWT's `sub`): only the node holding the call may
    /// report on it. Read from the stored call the first time (one snapshot and at most
    /// `snapshot_every` events), then remembered: a call's node never changes.
    pub async fn report(
        &self,
        node: &str,
        call_id: CallId,
        seq: u64,
        report: Report,
        now: DateTime<Utc>,
    ) -> Result<(Call, Reply), CallsError> {
        if self.owner(call_id).await?.as_str() != node {
            return Err(CallsError::OtherNode);
        }
        let command = match report {
            Report::Progress(progress) => CallCommand::ReportProgress { seq, progress, now },
            Report::Interim { talk_ms } => CallCommand::ReportInterim { seq, talk_ms, now },
            Report::Stop {
                talk_ms,
                cause,
                quality,
            } => CallCommand::ReportStop {
                seq,
                talk_ms,
                cause,
                quality,
                now,
            },
        };
        self.drive(call_id, command).await
    }
}

impl CallService {
    /// The node holding `call_id`, remembered after the first load.
    async fn owner(&self, call_id: CallId) -> Result<NodeId, CallsError> {
        if let Some(node) = self.owners.lock().ok().and_then(|o| o.get(&call_id).cloned()) {
            return Ok(node);
        }
        let stored = self
            .calls
            .load(&call_id.to_string())
            .await
            .map_err(|e| CallsError::Internal(e.to_string()))?;
        let node = stored
            .terms()
            .map(|t| t.node_id.clone())
            .ok_or(CallsError::Call(CallError::UnknownCall))?;
        if let Ok(mut owners) = self.owners.lock() {
            if owners.len() >= MAX_OWNERS {
                owners.clear();
            }
            owners.insert(call_id, node.clone());
        }
        Ok(node)
    }
}

/// The quote checks' refusals keep their type (and so their protocol code).
fn quote_error(e: crate::rates::RateError) -> CallsError {
    use crate::rates::RateError as R;
    match e {
        R::Quote(refusal) => CallsError::Quote(refusal),
        R::Busy => CallsError::Busy,
        other => CallsError::Internal(other.to_string()),
    }
}
