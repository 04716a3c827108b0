//! The high-risk ranges table: seeded once from `api/data/high-risk-ranges.csv`, then edited
//! by admins; every change is written to `fraud_risk_range_audit` in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ringledger_domain::fraud::{RangeChange, RangeHistory, RiskRange, RiskRanges};
use ringledger_domain::AccountId;
use sqlx::PgPool;

use super::FraudError;

const STARTER: &str = include_str!("../../data/high-risk-ranges.csv");

/// One row of the table, for the admin page.
#[derive(Debug, Clone)]
pub struct RangeRow {
    pub prefix: String,
    pub label: String,
    pub source: String,
}

/// The starter list: (range, source).
pub fn starter() -> Result<Vec<(RiskRange, String)>, FraudError> {
    parse_csv(STARTER, "high-risk-ranges.csv")
}

/// A `prefix,label[,source]` file with a header line, as the starter list (the source cell
/// defaults to `name`).
pub fn parse_csv(text: &str, name: &str) -> Result<Vec<(RiskRange, String)>, FraudError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let mut cells = line.splitn(3, ',');
        let (Some(prefix), Some(label)) = (cells.next(), cells.next()) else {
            return Err(FraudError::Internal(format!(
                "{name} line {}: expected `prefix,label[,source]`",
                n + 1
            )));
        };
        let source = cells.next().map_or(name, str::trim).to_owned();
        let range = RiskRange::parse(prefix, label)
            .map_err(|e| FraudError::Internal(format!("{name} line {}: {e}", n + 1)))?;
        out.push((range, source));
    }
    Ok(out)
}

/// Loads the starter list the first time (when the audit has no `seed` row); an admin's
/// removal of a starter range is never undone by a restart.
pub async fn seed(pool: &PgPool) -> Result<(), FraudError> {
    let mut tx = pool.begin().await?;
    sqlx::query("LOCK TABLE fraud_risk_range_audit IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let seeded: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM fraud_risk_range_audit WHERE action = 'seed')")
            .fetch_one(&mut *tx)
            .await?;
    if !seeded {
        for (range, source) in starter()? {
            sqlx::query(
                "INSERT INTO fraud_risk_ranges (prefix, label, source) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(&range.prefix)
            .bind(&range.label)
            .bind(&source)
            .execute(&mut *tx)
            .await?;
            audit(&mut tx, None, "seed", &range).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn audit(
    tx: &mut sqlx::PgConnection,
    actor: Option<AccountId>,
    action: &str,
    range: &RiskRange,
) -> Result<(), FraudError> {
    sqlx::query("INSERT INTO fraud_risk_range_audit (actor, action, prefix, label) VALUES ($1, $2, $3, $4)")
        .bind(actor.map(|a| a.0))
        .bind(action)
        .bind(&range.prefix)
        .bind(&range.label)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The list the rules match against now.
pub async fn load(pool: &PgPool) -> Result<RiskRanges, FraudError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT prefix, label FROM fraud_risk_ranges ORDER BY prefix LIMIT 10001")
            .fetch_all(pool)
            .await?;
    let ranges = rows
        .iter()
        .map(|(p, l)| RiskRange::parse(p, l))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FraudError::Internal(format!("fraud_risk_ranges: {e}")))?;
    Ok(RiskRanges::new(ranges)?)
}

pub async fn list(pool: &PgPool) -> Result<Vec<RangeRow>, FraudError> {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT prefix, label, source FROM fraud_risk_ranges ORDER BY prefix LIMIT 10001")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(prefix, label, source)| RangeRow {
            prefix,
            label,
            source,
        })
        .collect())
}

/// Adds (or relabels) a range as `actor`; audited.
pub async fn add(pool: &PgPool, actor: AccountId, range: &RiskRange) -> Result<(), FraudError> {
    let mut tx = pool.begin().await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM fraud_risk_ranges")
        .fetch_one(&mut *tx)
        .await?;
    if usize::try_from(count).unwrap_or(usize::MAX) >= ringledger_domain::fraud::MAX_RANGES {
        return Err(FraudError::Range(
            ringledger_domain::fraud::RiskRangeError::TooMany,
        ));
    }
    sqlx::query(
        "INSERT INTO fraud_risk_ranges (prefix, label, source, added_by) VALUES ($1, $2, 'admin', $3)
         ON CONFLICT (prefix) DO UPDATE SET label = EXCLUDED.label, source = 'admin',
           added_by = EXCLUDED.added_by, added_at = now()",
    )
    .bind(&range.prefix)
    .bind(&range.label)
    .bind(actor.0)
    .execute(&mut *tx)
    .await?;
    audit(&mut tx, Some(actor), "add", range).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes a range as `actor`; audited. Removing an absent range changes nothing.
pub async fn remove(pool: &PgPool, actor: AccountId, prefix: &str) -> Result<bool, FraudError> {
    let mut tx = pool.begin().await?;
    let removed: Option<(String, String)> =
        sqlx::query_as("DELETE FROM fraud_risk_ranges WHERE prefix = $1 RETURNING prefix, label")
            .bind(prefix)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((prefix, label)) = &removed {
        let range = RiskRange {
            prefix: prefix.clone(),
            label: label.clone(),
        };
        audit(&mut tx, Some(actor), "remove", &range).await?;
    }
    tx.commit().await?;
    Ok(removed.is_some())
}

/// Audit rows read at most (every change ever made to the list).
const MAX_AUDIT_ROWS: i64 = 100_000;

/// The list through time, from the audit.
pub async fn history(pool: &PgPool) -> Result<RangeHistory, FraudError> {
    let rows: Vec<(DateTime<Utc>, String, String, String)> = sqlx::query_as(
        "SELECT at, action, prefix, label FROM fraud_risk_range_audit ORDER BY at, id LIMIT $1",
    )
    .bind(MAX_AUDIT_ROWS)
    .fetch_all(pool)
    .await?;
    let changes = rows
        .into_iter()
        .map(|(at, action, prefix, label)| {
            Ok(RangeChange {
                at,
                added: action != "remove",
                range: RiskRange { prefix, label },
            })
        })
        .collect::<Result<Vec<_>, FraudError>>()?;
    Ok(RangeHistory::new(changes))
}

/// Which list judges a call: the list as it stood when the call was placed (what the live
/// rules use), or one fixed list for every call (a what-if's hypothesis).
#[derive(Debug, Clone)]
pub struct RangeBook {
    history: RangeHistory,
    fixed: Option<RiskRanges>,
    built: HashMap<usize, RiskRanges>,
}

impl RangeBook {
    pub fn as_listed(history: RangeHistory) -> RangeBook {
        RangeBook {
            history,
            fixed: None,
            built: HashMap::new(),
        }
    }

    pub fn fixed(ranges: RiskRanges) -> RangeBook {
        RangeBook {
            history: RangeHistory::default(),
            fixed: Some(ranges),
            built: HashMap::new(),
        }
    }

    /// The list a call placed at `placed_at` is judged by.
    pub fn for_call(&mut self, placed_at: DateTime<Utc>) -> Result<&RiskRanges, FraudError> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed);
        }
        let n = self.history.changes_by(placed_at);
        if !self.built.contains_key(&n) {
            let ranges = self.history.after_changes(n)?;
            self.built.insert(n, ranges);
        }
        self.built
            .get(&n)
            .ok_or_else(|| FraudError::Internal("range list cache".into()))
    }
}
