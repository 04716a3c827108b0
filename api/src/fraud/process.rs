//! The fraud process manager's scan: Call events after its checkpoint and not past the
//! signals projection's, in commit order. Each call touched is evaluated on the projection
//! (which holds at least everything read); each hit becomes `Flag` keyed `fraud:{rule}:{call}`;
//! each `CallFlagged` read re-checks its account's score and, at the threshold, `Freeze`
//! keyed `fraud-freeze:{call}`. The checkpoint moves only after a step's commands succeeded,
//! so a crash repeats commands, and their keys make the repeat change nothing.

use chrono::Duration;
use ringledger_domain::account::{AccountCommand, AccountError, FreezeReason};
use ringledger_domain::call::{CallCommand, CallEvent};
use ringledger_domain::fraud::{account_score, evaluate, Hit};
use ringledger_domain::{AccountId, CallId};
use ringledger_projections::event::read_batch;
use ringledger_projections::fraud::{account_calls, account_facts, account_flags, call_facts};
use ringledger_projections::Position;
use sqlx::Row;
use uuid::Uuid;

use super::ranges::RangeBook;
use super::{FraudError, FraudService};
use crate::ledger::{CommandError, Envelope};

/// The process manager's checkpoint row, and the advisory lock one scan at a time holds.
const PROCESS: &str = "fraud";
const LOCK_KEY: i64 = 0x6672_6175_6400_0001;

/// What one scan did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub events: u64,
    pub calls_evaluated: u64,
    pub flags: u64,
    pub freezes: u64,
}

impl FraudService {
    /// Reads and decides until caught up with the signals projection (or `max_steps`).
    pub async fn scan_once(&self) -> Result<ScanReport, FraudError> {
        let mut lock = self.pool.acquire().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LOCK_KEY)
            .fetch_one(&mut *lock)
            .await?;
        if !locked {
            return Ok(ScanReport::default());
        }
        let result = self.scan_locked().await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(LOCK_KEY)
            .execute(&mut *lock)
            .await;
        result
    }

    async fn scan_locked(&self) -> Result<ScanReport, FraudError> {
        let mut report = ScanReport::default();
        let Some(fence) = self.signals_checkpoint().await? else {
            return Ok(report);
        };
        let mut after = self.checkpoint().await?;
        let mut ranges = super::ranges::RangeBook::as_listed(super::ranges::history(&self.pool).await?);
        for _ in 0..self.config.max_steps {
            let events = read_batch(
                &self.pool,
                after,
                Some(fence),
                &["Call"],
                i64::from(self.config.batch_events),
            )
            .await?;
            let Some(last) = events.last() else { break };
            let last = last.position;
            report.events += events.len() as u64;
            let mut evaluated: Vec<CallId> = Vec::new();
            let mut rechecked: Vec<CallId> = Vec::new();
            for recorded in &events {
                let call = CallId(Uuid::parse_str(&recorded.aggregate_id).map_err(|_| {
                    FraudError::Internal(format!(
                        "call stream id `{}` is not a UUID",
                        recorded.aggregate_id
                    ))
                })?);
                match recorded.event_type.as_str() {
                    "CallFlagged" if !rechecked.contains(&call) => rechecked.push(call),
                    "CallPlaced" | "CallEnded" | "CallFailed" | "CallReRated"
                        if !evaluated.contains(&call) =>
                    {
                        evaluated.push(call)
                    }
                    // Ticks matter only to the cost rule, once the cost reaches its threshold.
                    "CallTicked" if !evaluated.contains(&call) => {
                        if let CallEvent::CallTicked { cost, .. } = recorded.decode::<CallEvent>()? {
                            if cost.micros() >= self.config.rules.expensive_call_micros {
                                evaluated.push(call);
                            }
                        }
                    }
                    _ => {}
                }
            }
            if self.config.enabled {
                for call in &evaluated {
                    report.flags += self.evaluate_call(*call, &mut ranges).await?;
                }
                for call in &rechecked {
                    report.freezes += self.recheck_account(*call).await?;
                }
            }
            report.calls_evaluated += evaluated.len() as u64;
            self.save_checkpoint(last).await?;
            after = last;
        }
        metrics::counter!("ringledger_fraud_scan_events_total").increment(report.events);
        Ok(report)
    }

    /// The rules' verdicts on `call` now, as the projection shows it (nothing is written).
    pub async fn verdicts(&self, call: CallId, ranges: &mut RangeBook) -> Result<Vec<Hit>, FraudError> {
        let Some(facts) = call_facts(&self.pool, call).await? else {
            return Ok(vec![]);
        };
        let t = &self.config.rules;
        let calls = account_calls(
            &self.pool,
            facts.account_id,
            facts.placed_at,
            t.lookback_minutes(),
        )
        .await?;
        let account = account_facts(&self.pool, facts.account_id).await?;
        let ranges = ranges.for_call(facts.placed_at)?;
        Ok(evaluate(&facts, &account, &calls, ranges, t))
    }

    /// Flags each hit on `call`; returns how many flags were new.
    async fn evaluate_call(&self, call: CallId, ranges: &mut RangeBook) -> Result<u64, FraudError> {
        let mut new = 0;
        for hit in self.verdicts(call, ranges).await? {
            let command = CallCommand::Flag {
                rule: hit.rule.as_str().to_owned(),
                score: hit.score,
                evidence: hit.evidence.clone(),
            };
            let key = format!("fraud:{}:{}", hit.rule.as_str(), call);
            match self
                .calls
                .ledger()
                .execute(&call.to_string(), Envelope::with_key(command, key))
                .await
            {
                Ok(outcome) if !outcome.replayed && !outcome.events.is_empty() => {
                    new += 1;
                    metrics::counter!("ringledger_fraud_flags_total", "rule" => hit.rule.as_str())
                        .increment(1);
                    tracing::info!(call_id = %call, account_id = %hit.account_id, rule = hit.rule.as_str(),
                        score = hit.score, "call flagged");
                }
                Ok(_) => {}
                Err(e) => return Err(FraudError::Internal(format!("flagging call {call}: {e}"))),
            }
        }
        Ok(new)
    }

    /// After a flag on `call`: freeze its account if its flags now reach the threshold.
    async fn recheck_account(&self, call: CallId) -> Result<u64, FraudError> {
        let Some(facts) = call_facts(&self.pool, call).await? else {
            return Ok(0);
        };
        let t = &self.config.rules;
        let window = Duration::hours(t.score_window_hours);
        let flags = account_flags(
            &self.pool,
            facts.account_id,
            facts.placed_at - window,
            facts.placed_at + window,
        )
        .await?;
        let score = account_score(t, flags.iter().map(|(_, _, placed, score)| (*placed, *score)));
        if score < t.freeze_score {
            return Ok(0);
        }
        self.freeze(facts.account_id, call, score).await
    }

    async fn freeze(&self, account: AccountId, call: CallId, score: u32) -> Result<u64, FraudError> {
        let t = &self.config.rules;
        let note = format!(
            "fraud score {score} reached the threshold {} within {} h (call {call}); see /admin/fraud",
            t.freeze_score, t.score_window_hours
        );
        let command = AccountCommand::Freeze {
            reason: FreezeReason::Fraud,
            actor: None,
            note,
        };
        let key = format!("fraud-freeze:{call}");
        match self
            .accounts
            .execute(account, Envelope::with_key(command, key))
            .await
        {
            Ok(outcome) if !outcome.replayed && !outcome.events.is_empty() => {
                metrics::counter!("ringledger_fraud_freezes_total").increment(1);
                tracing::warn!(account_id = %account, call_id = %call, score, "account frozen for fraud");
                Ok(1)
            }
            Ok(_) | Err(CommandError::Rejected(AccountError::AlreadyFrozen(_))) => Ok(0),
            Err(CommandError::Rejected(e)) => {
                // Closed or banned meanwhile: nothing left to freeze.
                tracing::info!(account_id = %account, error = %e, "fraud freeze not applied");
                Ok(0)
            }
            Err(e) => Err(FraudError::Internal(format!("freezing account {account}: {e}"))),
        }
    }

    /// Where the signals projection's live version has read up to (`None` before it exists).
    async fn signals_checkpoint(&self) -> Result<Option<Position>, FraudError> {
        let live: Option<i32> = sqlx::query_scalar(
            "SELECT live_version FROM projection_versions WHERE projection = 'fraud_signals'",
        )
        .fetch_optional(&self.pool)
        .await?;
        match live {
            None => Ok(None),
            Some(v) => Ok(Some(
                ringledger_projections::runner::checkpoint(&self.pool, "fraud_signals", v).await?,
            )),
        }
    }

    pub async fn checkpoint(&self) -> Result<Position, FraudError> {
        let row = sqlx::query("SELECT tx_id, global_position FROM fraud_process WHERE name = $1")
            .bind(PROCESS)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            None => Ok(Position::default()),
            Some(r) => Ok(Position {
                tx_id: r.try_get("tx_id")?,
                global_position: r.try_get("global_position")?,
            }),
        }
    }

    async fn save_checkpoint(&self, at: Position) -> Result<(), FraudError> {
        sqlx::query(
            "INSERT INTO fraud_process (name, tx_id, global_position) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id,
               global_position = EXCLUDED.global_position, updated_at = now()",
        )
        .bind(PROCESS)
        .bind(at.tx_id)
        .bind(at.global_position)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves the checkpoint back to the start of the log, so the next scan re-runs every
    /// decision (its commands are keyed: nothing new is written for what was decided before).
    pub async fn reset_checkpoint(&self) -> Result<(), FraudError> {
        self.save_checkpoint(Position::default()).await
    }
}
