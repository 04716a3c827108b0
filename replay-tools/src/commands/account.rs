//! Finance's view of one account: the raw stream, the statement, and the audit to an instant.

use std::io::Write;

use ringledger_projections::as_of;
use sqlx::{PgPool, Row};

use super::{parse_account, parse_instant};
use crate::output::{micros, Format, Table};

pub async fn events(
    pool: &PgPool,
    account: &str,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let account = parse_account(account)?;
    let mut table = Table::new(vec![
        "sequence",
        "global_position",
        "event_id",
        "occurred_at",
        "event",
        "payload",
    ]);
    for e in as_of::events(pool, account, None).await? {
        table.push(vec![
            e.sequence.to_string(),
            e.global_position.to_string(),
            e.event_id.to_string(),
            e.occurred_at.to_rfc3339(),
            e.event.name().to_owned(),
            serde_json::to_string(&e.event)?,
        ]);
    }
    table.write(format, out)?;
    Ok(0)
}

fn statement_table(rows: &[sqlx::postgres::PgRow]) -> anyhow::Result<Table> {
    let mut table = Table::new(vec![
        "occurred_at",
        "sequence",
        "global_position",
        "event_id",
        "kind",
        "ledger_account",
        "amount",
        "running_balance",
        "counterparty",
        "reference",
    ]);
    for r in rows {
        table.push(vec![
            r.try_get::<chrono::DateTime<chrono::Utc>, _>("occurred_at")?
                .to_rfc3339(),
            r.try_get::<i64, _>("sequence")?.to_string(),
            r.try_get::<i64, _>("global_position")?.to_string(),
            r.try_get::<uuid::Uuid, _>("event_id")?.to_string(),
            r.try_get("kind")?,
            r.try_get("ledger_account")?,
            micros(r.try_get("amount_micros")?),
            micros(r.try_get("running_balance_micros")?),
            r.try_get("counterparty")?,
            r.try_get("reference")?,
        ]);
    }
    Ok(table)
}

async fn lines(
    pool: &PgPool,
    account: uuid::Uuid,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<Vec<sqlx::postgres::PgRow>> {
    super::ensure_projections(pool).await?;
    Ok(sqlx::query(
        "SELECT occurred_at, sequence, global_position, event_id, kind, ledger_account, amount_micros,
                running_balance_micros, counterparty, reference
           FROM statement_lines
          WHERE account_id = $1 AND ($2::timestamptz IS NULL OR occurred_at >= $2)
            AND ($3::timestamptz IS NULL OR occurred_at <= $3)
          ORDER BY sequence, ledger_account",
    )
    .bind(account)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

pub async fn statement(
    pool: &PgPool,
    account: &str,
    from: Option<&str>,
    to: Option<&str>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let account = parse_account(account)?;
    let from = from.map(parse_instant).transpose()?;
    let to = to.map(parse_instant).transpose()?;
    statement_table(&lines(pool, account, from, to).await?)?.write(format, out)?;
    Ok(0)
}

/// Balances both ways plus the statement to that instant; exit 1 if the two ways disagree.
pub async fn audit(
    pool: &PgPool,
    account: &str,
    as_of_text: Option<&str>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let account = parse_account(account)?;
    let at = match as_of_text {
        Some(text) => parse_instant(text)?,
        None => chrono::Utc::now(),
    };
    let folded = as_of::by_fold(pool, account, at).await?;
    super::ensure_projections(pool).await?;
    let projected = as_of::from_statements(pool, account, at).await?;
    let agree = folded == projected;
    let mut balances = Table::new(vec![
        "computed_by",
        "available",
        "reserved",
        "receivable",
        "disputed",
        "last_sequence",
    ])
    .titled(format!("account {account} as of {}", at.to_rfc3339()));
    for (name, b) in [
        ("fold of the event stream", folded),
        ("statement projection", projected),
    ] {
        balances.push(vec![
            name.to_owned(),
            micros(b.available_micros),
            micros(b.reserved_micros),
            micros(b.receivable_micros),
            micros(b.disputed_micros),
            b.last_sequence.to_string(),
        ]);
    }
    let statement = statement_table(&lines(pool, account, None, Some(at)).await?)?;
    let rerated = rerated_calls(pool, account, at).await?;
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "account": account, "as_of": at, "agree": agree,
                "by_fold": folded, "from_statements": projected, "lines": statement.to_json(),
                "rerated_calls": rerated.to_json(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Format::Csv => statement.write(format, out)?,
        Format::Table => {
            balances.write(format, out)?;
            writeln!(out)?;
            statement
                .titled("statement lines (each traced to its event)")
                .write(format, out)?;
            writeln!(out)?;
            rerated.write(format, out)?;
            writeln!(
                out,
                "\n{}",
                if agree {
                    "the two computations agree"
                } else {
                    "MISMATCH: the fold and the statement projection disagree"
                }
            )?;
        }
    }
    Ok(if agree { 0 } else { 1 })
}

/// The account's calls re-rated by rate corrections up to `at`: which correction, who made it
/// and why, and what it changed (from the `call_rerates` margin records).
async fn rerated_calls(
    pool: &PgPool,
    account: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Table> {
    let rows = sqlx::query(
        "SELECT r.call_id, r.correction, r.actor, c.reason, r.old_charged_micros, r.new_charged_micros,
                r.refund_micros, r.old_our_cost_micros, r.new_our_cost_micros, r.rerated_at
           FROM call_rerates r LEFT JOIN rate_corrections c ON 'rc-' || c.number = r.correction
          WHERE r.account_id = $1 AND r.rerated_at <= $2 ORDER BY r.position",
    )
    .bind(account)
    .bind(at)
    .fetch_all(pool)
    .await?;
    let mut table = Table::new(vec![
        "call",
        "correction",
        "corrected_by",
        "reason",
        "charged_before",
        "charged_after",
        "refund",
        "our_cost_before",
        "our_cost_after",
        "rerated_at",
    ])
    .titled("calls re-rated by rate corrections");
    let opt = |v: Option<i64>| v.map(micros).unwrap_or_default();
    for r in rows {
        table.push(vec![
            r.try_get::<uuid::Uuid, _>("call_id")?.to_string(),
            r.try_get("correction")?,
            r.try_get::<uuid::Uuid, _>("actor")?.to_string(),
            r.try_get::<Option<String>, _>("reason")?.unwrap_or_default(),
            micros(r.try_get("old_charged_micros")?),
            micros(r.try_get("new_charged_micros")?),
            micros(r.try_get("refund_micros")?),
            opt(r.try_get("old_our_cost_micros")?),
            opt(r.try_get("new_our_cost_micros")?),
            r.try_get::<chrono::DateTime<chrono::Utc>, _>("rerated_at")?
                .to_rfc3339(),
        ]);
    }
    Ok(table)
}
