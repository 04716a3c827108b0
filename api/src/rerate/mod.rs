//! Re-rating after a rate correction: a process manager that, for every ended call a
//! `RatesCorrected` covers (matched prefix and placement time, found in the `call_margins`
//! read model, never by scanning the log), re-prices the call (`ReRate` on the Call, keyed
//! `rerate:rc-N`) and credits a lower price back to the account (`AdjustCredit` naming the call
//! and the correction, keyed `rerate:rc-N:CALL`). Both keys make a run idempotent per
//! (correction, call): a run killed between the Call's event and the Account's credit, and run
//! again, gets the Call's first answer back and credits it once.
//!
//! Work goes a page of calls at a time: the Call side of the whole page, then its credits,
//! then the page's record and the cursor in one short transaction. It never holds a
//! transaction open while commands run, never charges a customer more, and never edits an
//! event: every change is a new event.
//!
//! `what_if` prices the same history against a draft deck and writes nothing.

pub mod jobs;
mod records;
mod what_if;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use ringledger_domain::account::AccountCommand;
use ringledger_domain::call::{Call, CallCommand, CallError, CallEvent};
use ringledger_domain::rates::correction::{CorrectionEvent, RatesCorrected, CORRECTIONS_STREAM};
use ringledger_domain::{AccountId, CallId, Money};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use records::refund_reason;
pub use records::rerated_calls;
pub use what_if::{what_if, DraftDeck, WhatIf, WhatIfLine};

use crate::ledger::{AccountService, CommandError, Envelope, Ledger, LedgerConfig};
use crate::store::PostgresStore;

/// The Account's limit on an adjustment's reason.
const MAX_REASON_CHARS: usize = 500;
/// Calls read from the read model per page.
pub const PAGE_CALLS: i64 = 1_000;
/// Calls re-rated at once within a page.
pub const CONCURRENCY: usize = 32;
/// How long a run waits for the `call_margins` read model to reach the correction.
const READ_MODEL_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RerateError {
    #[error("no correction rc-{0}; see `ringledger-replay rates corrections`")]
    NoSuchCorrection(u64),
    #[error("the call_margins read model has not reached correction rc-{0} within {1:?}; is `ringledger serve` (or the projection runner) running?")]
    ReadModelBehind(u64, Duration),
    #[error("stopped before the credits of a page (a test's halt)")]
    Halted,
    #[error("call {call}: {message}")]
    Call { call: CallId, message: String },
    #[error("account {account}, call {call}: {message}")]
    Credit {
        account: AccountId,
        call: CallId,
        message: String,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Invalid(String),
}

impl RerateError {
    /// Worth trying again later (the job retries these).
    pub fn is_transient(&self) -> bool {
        !matches!(self, RerateError::NoSuchCorrection(_) | RerateError::Invalid(_))
    }
}

/// What a run did, for the summary line and the progress bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Calls the correction covers (counted when the run started).
    pub candidates: u64,
    /// Calls looked at so far.
    pub examined: u64,
}

/// The outcome of a whole correction, read from the run's records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub correction: String,
    pub examined: u64,
    /// Calls with a `CallReRated` for this correction.
    pub calls_rerated: u64,
    /// Distinct accounts credited a refund.
    pub accounts_credited: u64,
    pub refunds: u64,
    pub refunded_micros: i64,
    /// Our cost after minus before, over the re-rated calls (positive: the calls cost us more).
    pub our_cost_delta_micros: i64,
    pub currency: String,
}

/// Test hooks: how a run stops early, to show that running it again finishes the job.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop after the Call events of the first page, before any of its Account credits (a
    /// process killed between the two appends).
    pub halt_before_credits: bool,
}

/// One call the correction covers, from `call_margins`.
#[derive(Debug, Clone)]
struct Candidate {
    call_id: Uuid,
    account_id: Uuid,
    placed_at: DateTime<Utc>,
}

/// The Call side's result for one call.
#[derive(Debug, Clone)]
pub(super) struct CallSide {
    call_id: CallId,
    account_id: AccountId,
    refund: Money,
    our_cost_delta_micros: i64,
}

/// Cheap to clone.
#[derive(Clone)]
pub struct ReRater {
    pool: PgPool,
    calls: Ledger<Call, PostgresStore>,
    accounts: AccountService<PostgresStore>,
}

impl ReRater {
    /// Over the api's own ledgers, so re-rating and live metering share the per-call queues.
    pub fn new(
        pool: PgPool,
        calls: Ledger<Call, PostgresStore>,
        accounts: AccountService<PostgresStore>,
    ) -> Self {
        ReRater {
            pool,
            calls,
            accounts,
        }
    }

    /// Ledgers of its own over `pool` (the CLI, benchmarks, tests).
    pub fn standalone(pool: PgPool) -> ReRater {
        let store = Arc::new(PostgresStore::new(pool.clone()));
        let accounts = AccountService::new(store.clone(), LedgerConfig::default());
        let calls = Ledger::with_appended(store, LedgerConfig::default(), accounts.ledger().appended());
        ReRater {
            pool,
            calls,
            accounts,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Woken after each append (a NOTIFY sender may listen here).
    pub fn appended(&self) -> Arc<tokio::sync::Notify> {
        self.accounts.ledger().appended()
    }

    /// Correction `number` as the log holds it, with its place in commit order.
    pub async fn correction(&self, number: u64) -> Result<(RatesCorrected, (i64, i64)), RerateError> {
        let sequence = i64::try_from(number).map_err(|_| RerateError::NoSuchCorrection(number))?;
        let row = sqlx::query(
            "SELECT payload::text AS payload, tx_id::text::bigint AS tx, global_position FROM events
              WHERE aggregate_type = 'RateCorrections' AND aggregate_id = $1 AND sequence = $2",
        )
        .bind(CORRECTIONS_STREAM)
        .bind(sequence)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(RerateError::NoSuchCorrection(number))?;
        let payload: String = row.try_get("payload")?;
        let CorrectionEvent::RatesCorrected(c) = serde_json::from_str(&payload)
            .map_err(|e| RerateError::Invalid(format!("correction rc-{number} does not decode: {e}")))?;
        Ok((c, (row.try_get("tx")?, row.try_get("global_position")?)))
    }

    /// Runs (or resumes) the re-rating of correction `number`; `progress` is told after each page.
    pub async fn run(
        &self,
        number: u64,
        options: RunOptions,
        mut progress: impl FnMut(Progress),
    ) -> Result<Summary, RerateError> {
        let started = Instant::now();
        let (correction, position) = self.correction(number).await?;
        self.wait_for_read_model(number, position).await?;
        let mut state = self.start_run(&correction).await?;
        progress(state.progress);
        loop {
            let page = self.page(&correction, state.cursor).await?;
            let Some(last) = page.last() else { break };
            let cursor = (last.placed_at, last.call_id);
            let sides = self.call_sides(&correction, &page).await?;
            if options.halt_before_credits {
                return Err(RerateError::Halted);
            }
            let credited = self.credits(&correction, &sides).await?;
            state.progress.examined += page.len() as u64;
            state.cursor = Some(cursor);
            self.record_page(number, &state, &sides, &credited).await?;
            progress(state.progress);
        }
        let summary = self.finish(&correction, state.progress.examined).await?;
        tracing::info!(correction = %summary.correction, examined = summary.examined,
            rerated = summary.calls_rerated, accounts = summary.accounts_credited,
            refunded_micros = summary.refunded_micros, ms = started.elapsed().as_millis() as u64,
            "re-rating done");
        Ok(summary)
    }

    /// Waits until `call_margins` has applied every Call event committed before the correction.
    async fn wait_for_read_model(&self, number: u64, (tx, position): (i64, i64)) -> Result<(), RerateError> {
        let deadline = Instant::now() + READ_MODEL_WAIT;
        loop {
            let behind: Option<bool> = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM events e
                                 WHERE e.aggregate_type = 'Call'
                                   AND (e.tx_id, e.global_position) > (c.tx_id, c.global_position)
                                   AND (e.tx_id, e.global_position) < ($1::text::xid8, $2))
                   FROM projection_checkpoints c JOIN projection_versions v
                     ON v.projection = c.projection AND v.live_version = c.version
                  WHERE c.projection = 'call_margins'",
            )
            .bind(tx.to_string())
            .bind(position)
            .fetch_optional(&self.pool)
            .await?;
            if behind == Some(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(RerateError::ReadModelBehind(number, READ_MODEL_WAIT));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next page of covered, ended calls after `cursor`, by (placed_at, call_id).
    async fn page(
        &self,
        c: &RatesCorrected,
        cursor: Option<(DateTime<Utc>, Uuid)>,
    ) -> Result<Vec<Candidate>, RerateError> {
        let (after_at, after_id) = cursor.unwrap_or((c.effective_from, Uuid::nil()));
        let rows = sqlx::query(
            "SELECT call_id, account_id, placed_at FROM call_margins
              WHERE matched_prefix = $1 AND placed_at >= $2 AND ($3::timestamptz IS NULL OR placed_at < $3)
                AND (placed_at, call_id) > ($4, $5) AND state = 'ended'
              ORDER BY placed_at, call_id LIMIT $6",
        )
        .bind(&c.prefix)
        .bind(c.effective_from)
        .bind(c.effective_to)
        .bind(after_at)
        .bind(after_id)
        .bind(PAGE_CALLS)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Candidate {
                    call_id: r.try_get("call_id")?,
                    account_id: r.try_get("account_id")?,
                    placed_at: r.try_get("placed_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// The Call side of a page, concurrently: each call's `CallReRated` (new or answered again
    /// from its key), or nothing when the correction changes nothing for it.
    async fn call_sides(&self, c: &RatesCorrected, page: &[Candidate]) -> Result<Vec<CallSide>, RerateError> {
        // Owned values in each future: the job's future must be `Send` for any lifetime.
        let sides: Vec<Option<CallSide>> = futures::stream::iter(page.to_vec())
            .map(|candidate| {
                let (this, c) = (self.clone(), c.clone());
                async move { this.call_side(&c, candidate).await }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(sides.into_iter().flatten().collect())
    }

    async fn call_side(
        &self,
        c: &RatesCorrected,
        candidate: Candidate,
    ) -> Result<Option<CallSide>, RerateError> {
        let call_id = CallId(candidate.call_id);
        let command = CallCommand::ReRate {
            correction: c.id(),
            sequence: c.number,
            selling_per_minute: c.new.selling_per_minute,
            cost_per_minute: c.new.cost_per_minute,
            actor: c.actor,
            now: Utc::now(),
        };
        let key = format!("rerate:{}", c.id());
        let outcome = match self
            .calls
            .execute(&call_id.to_string(), Envelope::with_key(command, key))
            .await
        {
            Ok(outcome) => outcome,
            // The read model said ended; a call in another currency is not this correction's.
            Err(CommandError::Rejected(e @ (CallError::NotEnded(_) | CallError::WrongCurrency { .. }))) => {
                tracing::warn!(call = %call_id, correction = %c.id(), error = %e, "call not re-rated");
                metrics::counter!("ringledger_rerate_calls_total", "outcome" => "skipped").increment(1);
                return Ok(None);
            }
            Err(e) => {
                return Err(RerateError::Call {
                    call: call_id,
                    message: e.to_string(),
                })
            }
        };
        let account_id = outcome
            .state
            .as_ref()
            .and_then(|call| call.terms())
            .map_or(AccountId(candidate.account_id), |t| t.account_id);
        let side = outcome
            .events
            .iter()
            .find_map(|committed| match &committed.event {
                CallEvent::CallReRated {
                    correction,
                    refund,
                    old_our_cost,
                    new_our_cost,
                    ..
                } if *correction == c.id() => Some(CallSide {
                    call_id,
                    account_id,
                    refund: *refund,
                    our_cost_delta_micros: match (old_our_cost, new_our_cost) {
                        (Some(old), Some(new)) => new.micros().saturating_sub(old.micros()),
                        _ => 0,
                    },
                }),
                _ => None,
            });
        let outcome_name = if side.is_some() { "rerated" } else { "unchanged" };
        metrics::counter!("ringledger_rerate_calls_total", "outcome" => outcome_name).increment(1);
        Ok(side)
    }

    /// The Account side of a page: each refund credited once, by its key.
    async fn credits(&self, c: &RatesCorrected, sides: &[CallSide]) -> Result<Vec<bool>, RerateError> {
        futures::stream::iter(sides.to_vec())
            .map(|side| {
                let (this, c) = (self.clone(), c.clone());
                async move { this.credit(&c, &side).await }
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await
    }

    async fn credit(&self, c: &RatesCorrected, side: &CallSide) -> Result<bool, RerateError> {
        if !side.refund.is_positive() {
            return Ok(false);
        }
        let command = AccountCommand::AdjustCredit {
            amount: side.refund,
            reason: refund_reason(c),
            actor: c.actor,
            call_id: Some(side.call_id),
            correction: Some(c.id()),
        };
        let key = format!("rerate:{}:{}", c.id(), side.call_id);
        self.accounts
            .execute(side.account_id, Envelope::with_key(command, key))
            .await
            .map_err(|e| RerateError::Credit {
                account: side.account_id,
                call: side.call_id,
                message: e.to_string(),
            })?;
        metrics::counter!("ringledger_rerate_refund_micros_total")
            .increment(side.refund.micros().unsigned_abs());
        Ok(true)
    }
}
