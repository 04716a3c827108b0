//! The re-rating process manager's own records: `rerate_runs` (where a run stands, so a killed
//! run resumes after its last page) and `rerate_calls` (each call a correction re-rated, for the
//! summary). The ledger's truth stays in the events; these are progress and reporting only.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ringledger_domain::rates::correction::RatesCorrected;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{CallSide, Progress, ReRater, RerateError, Summary, MAX_REASON_CHARS};

impl ReRater {
    pub(super) async fn start_run(&self, c: &RatesCorrected) -> Result<RunState, RerateError> {
        let number = run_key(c.number)?;
        let candidates: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM call_margins
              WHERE matched_prefix = $1 AND placed_at >= $2 AND ($3::timestamptz IS NULL OR placed_at < $3)
                AND state = 'ended'",
        )
        .bind(&c.prefix)
        .bind(c.effective_from)
        .bind(c.effective_to)
        .fetch_one(&self.pool)
        .await?;
        let row = sqlx::query(
            "INSERT INTO rerate_runs (correction, status, candidates) VALUES ($1, 'running', $2)
             ON CONFLICT (correction) DO UPDATE SET status = 'running', message = NULL, updated_at = now(),
               candidates = EXCLUDED.candidates, finished_at = NULL,
               -- A finished run started again goes over every call once more (nothing is
               -- appended twice); an interrupted one resumes after its last page.
               cursor_placed_at = CASE WHEN rerate_runs.status = 'done' THEN NULL ELSE rerate_runs.cursor_placed_at END,
               cursor_call_id = CASE WHEN rerate_runs.status = 'done' THEN NULL ELSE rerate_runs.cursor_call_id END,
               examined = CASE WHEN rerate_runs.status = 'done' THEN 0 ELSE rerate_runs.examined END
             RETURNING cursor_placed_at, cursor_call_id, examined",
        )
        .bind(number)
        .bind(candidates)
        .fetch_one(&self.pool)
        .await?;
        let at: Option<DateTime<Utc>> = row.try_get("cursor_placed_at")?;
        let id: Option<Uuid> = row.try_get("cursor_call_id")?;
        Ok(RunState {
            cursor: at.zip(id),
            progress: Progress {
                candidates: u64::try_from(candidates).unwrap_or(0),
                examined: u64::try_from(row.try_get::<i64, _>("examined")?).unwrap_or(0),
            },
        })
    }

    pub(super) async fn record_page(
        &self,
        number: u64,
        state: &RunState,
        sides: &[CallSide],
        credited: &[bool],
    ) -> Result<(), RerateError> {
        let key = run_key(number)?;
        let mut tx = self.pool.begin().await?;
        if !sides.is_empty() {
            let calls: Vec<Uuid> = sides.iter().map(|s| s.call_id.0).collect();
            let accounts: Vec<Uuid> = sides.iter().map(|s| s.account_id.0).collect();
            let refunds: Vec<i64> = sides.iter().map(|s| s.refund.micros()).collect();
            let deltas: Vec<i64> = sides.iter().map(|s| s.our_cost_delta_micros).collect();
            sqlx::query(
                "INSERT INTO rerate_calls (correction, call_id, account_id, refund_micros, our_cost_delta_micros, credited)
                 SELECT $1, * FROM UNNEST($2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::boolean[])
                 ON CONFLICT (correction, call_id) DO UPDATE SET credited = rerate_calls.credited OR EXCLUDED.credited",
            )
            .bind(key)
            .bind(&calls)
            .bind(&accounts)
            .bind(&refunds)
            .bind(&deltas)
            .bind(credited)
            .execute(&mut *tx)
            .await?;
        }
        let (at, id) = state.cursor.unzip();
        sqlx::query(
            "UPDATE rerate_runs SET cursor_placed_at = $2, cursor_call_id = $3, examined = $4, updated_at = now()
              WHERE correction = $1",
        )
        .bind(key)
        .bind(at)
        .bind(id)
        .bind(i64::try_from(state.progress.examined).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn finish(&self, c: &RatesCorrected, examined: u64) -> Result<Summary, RerateError> {
        let key = run_key(c.number)?;
        sqlx::query("UPDATE rerate_runs SET status = 'done', finished_at = now(), updated_at = now() WHERE correction = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        let mut summary = self.summary(c.number).await?;
        summary.examined = examined;
        summary.currency = c.new.selling_per_minute.currency().to_string();
        Ok(summary)
    }

    /// What the runs of correction `number` have done so far.
    pub async fn summary(&self, number: u64) -> Result<Summary, RerateError> {
        let key = run_key(number)?;
        let row = sqlx::query(
            "SELECT count(*) AS calls,
                    count(DISTINCT account_id) FILTER (WHERE credited AND refund_micros > 0) AS accounts,
                    count(*) FILTER (WHERE credited AND refund_micros > 0) AS refunds,
                    coalesce(sum(refund_micros) FILTER (WHERE credited), 0)::bigint AS refunded,
                    coalesce(sum(our_cost_delta_micros), 0)::bigint AS delta,
                    (SELECT examined FROM rerate_runs WHERE correction = $1) AS examined
               FROM rerate_calls WHERE correction = $1",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await?;
        let count = |name: &str| -> Result<u64, sqlx::Error> {
            Ok(u64::try_from(row.try_get::<Option<i64>, _>(name)?.unwrap_or(0)).unwrap_or(0))
        };
        Ok(Summary {
            correction: format!("rc-{number}"),
            examined: count("examined")?,
            calls_rerated: count("calls")?,
            accounts_credited: count("accounts")?,
            refunds: count("refunds")?,
            refunded_micros: row.try_get("refunded")?,
            our_cost_delta_micros: row.try_get("delta")?,
            currency: String::new(),
        })
    }

    /// Records a failed run's reason (the job's last error says the same).
    pub async fn mark_failed(&self, number: u64, message: &str) -> Result<(), RerateError> {
        sqlx::query("UPDATE rerate_runs SET status = 'failed', message = $2, updated_at = now() WHERE correction = $1")
            .bind(run_key(number)?)
            .bind(message)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

pub(super) struct RunState {
    pub(super) cursor: Option<(DateTime<Utc>, Uuid)>,
    pub(super) progress: Progress,
}

pub(super) fn run_key(number: u64) -> Result<i64, RerateError> {
    i64::try_from(number).map_err(|_| RerateError::NoSuchCorrection(number))
}

/// The statement and audit line of a refund: the correction and its reason, bounded.
pub(super) fn refund_reason(c: &RatesCorrected) -> String {
    let text = format!("rate correction {} of prefix {}: {}", c.id(), c.prefix, c.reason);
    text.chars().take(MAX_REASON_CHARS).collect()
}

/// Per-call numbers a caller may want beside the summary (tests compare them with what-if).
pub async fn rerated_calls(pool: &PgPool, number: u64) -> Result<HashMap<Uuid, i64>, RerateError> {
    let rows = sqlx::query("SELECT call_id, refund_micros FROM rerate_calls WHERE correction = $1")
        .bind(run_key(number)?)
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get("call_id")?, r.try_get("refund_micros")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}
