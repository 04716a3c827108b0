//! `ringledger-replay rates correct | rerate | corrections | what-if`: rate corrections and
//! their re-rating, through the api's services. `correct` records the correction and queues its
//! re-rating, then works the `rerate` queue itself (a running `serve` may take the job instead)
//! with a progress bar; `rerate` runs or resumes one correction's re-rating here; `what-if`
//! prices history against a draft deck and writes nothing.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use ringledger_api::rates::{CorrectionRequest, RateService};
use ringledger_api::rerate::{what_if, DraftDeck, ReRater, RunOptions, Summary, WhatIfLine};
use ringledger_domain::rates::correction::CorrectionId;
use ringledger_domain::{ActorId, Currency, Money};
use ringledger_projections::jobs::JobQueue;
use sqlx::{PgPool, Row};

use crate::output::{micros, Format, Table};

/// Parsed `rates correct` arguments.
pub struct Correct {
    pub prefix: String,
    pub cost: String,
    pub selling: Option<String>,
    pub from: String,
    pub to: Option<String>,
    pub reason: String,
    pub actor: ActorId,
    pub key: Option<String>,
}

/// Applies a projection up to now in this process (safe beside a running serve: runners of
/// one version give way to each other).
pub async fn catch_up(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    let projection = ringledger_projections::by_name(name)?;
    let version = ringledger_projections::versions::ensure_live(pool, projection.as_ref()).await?;
    let runner = ringledger_projections::Runner::new(
        pool.clone(),
        projection,
        version,
        ringledger_projections::RunnerConfig::default(),
    );
    runner.catch_up(None, |_| {}).await?;
    Ok(())
}

fn money(text: &str, currency: Currency, flag: &str) -> anyhow::Result<Money> {
    Money::parse(text, currency)
        .map_err(|e| anyhow::anyhow!("{flag}: {e} (write e.g. 0.0135 for 1.35 cents a minute)"))
}

fn bar(total: u64) -> ProgressBar {
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} re-rating [{bar:40}] {pos}/{len} calls ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}

pub async fn correct(
    pool: &PgPool,
    service: &RateService,
    args: Correct,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    for p in ["rate_table", "rate_corrections"] {
        catch_up(pool, p).await?;
    }
    service.book().refresh(pool).await?;
    let currency = service
        .book()
        .get()
        .currency
        .context("no rate deck is active yet; import one and activate it")?;
    let from = super::parse_instant(&args.from)?;
    let to = args.to.as_deref().map(super::parse_instant).transpose()?;
    let request = CorrectionRequest {
        prefix: args.prefix,
        cost_per_minute: money(&args.cost, currency, "--cost")?,
        selling_per_minute: args
            .selling
            .as_deref()
            .map(|s| money(s, currency, "--selling"))
            .transpose()?,
        effective_from: from,
        effective_to: to,
        reason: args.reason,
        actor: args.actor,
        idempotency_key: args.key,
    };
    let recorded = service.correct(&request).await?;
    eprintln!(
        "{}: prefix {} cost {} -> {}, selling {} -> {} a minute, for calls placed from {}{}",
        recorded.id(),
        recorded.prefix,
        recorded.old.cost_per_minute,
        recorded.new.cost_per_minute,
        recorded.old.selling_per_minute,
        recorded.new.selling_per_minute,
        recorded.effective_from.to_rfc3339(),
        recorded
            .effective_to
            .map(|t| format!(" to {}", t.to_rfc3339()))
            .unwrap_or_default()
    );
    catch_up(pool, "rate_corrections").await?;
    catch_up(pool, "call_margins").await?;
    let rerater = ReRater::standalone(pool.clone());
    let stop = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(ringledger_api::notify::run(
        pool.clone(),
        rerater.appended(),
        stop.clone(),
    ));
    let workers = ringledger_api::rerate::jobs::spawn_pool(rerater.clone(), JobQueue::new(pool.clone()))?;
    let number = recorded.number;
    let progress = bar(0);
    let status = loop {
        let row = sqlx::query(
            "SELECT status, candidates, examined, message FROM rerate_runs WHERE correction = $1",
        )
        .bind(i64::try_from(number)?)
        .fetch_optional(pool)
        .await?;
        if let Some(row) = row {
            progress.set_length(u64::try_from(row.try_get::<i64, _>("candidates")?).unwrap_or(0));
            progress.set_position(u64::try_from(row.try_get::<i64, _>("examined")?).unwrap_or(0));
            let status: String = row.try_get("status")?;
            if status != "running" {
                break (status, row.try_get::<Option<String>, _>("message")?);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    progress.finish_and_clear();
    workers.shutdown(Duration::from_secs(10)).await;
    stop.notify_one();
    catch_up(pool, "call_margins").await?;
    if status.0 == "failed" {
        eprintln!(
            "re-rating {} failed: {}; the job retries by itself, or run `ringledger-replay rates rerate {}`",
            recorded.id(),
            status.1.unwrap_or_default(),
            recorded.id()
        );
        return Ok(1);
    }
    let mut summary = rerater.summary(number).await?;
    summary.currency = currency.to_string();
    print_summary(&summary, format, out)?;
    Ok(0)
}

/// Runs (or resumes) a correction's re-rating in this process.
pub async fn rerate(
    pool: &PgPool,
    correction: &str,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let number = CorrectionId::parse(correction)?.0;
    catch_up(pool, "call_margins").await?;
    let rerater = ReRater::standalone(pool.clone());
    let stop = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(ringledger_api::notify::run(
        pool.clone(),
        rerater.appended(),
        stop.clone(),
    ));
    let progress = bar(0);
    let result = rerater
        .run(number, RunOptions::default(), |p| {
            progress.set_length(p.candidates);
            progress.set_position(p.examined);
        })
        .await;
    progress.finish_and_clear();
    stop.notify_one();
    let summary = result?;
    catch_up(pool, "call_margins").await?;
    print_summary(&summary, format, out)?;
    Ok(0)
}

fn print_summary(s: &Summary, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    let mut table = Table::new(vec!["field", "value"]).titled(format!("re-rating of {}", s.correction));
    for (k, v) in [
        ("calls examined", s.examined.to_string()),
        ("calls re-rated", s.calls_rerated.to_string()),
        ("accounts credited", s.accounts_credited.to_string()),
        ("refunds", s.refunds.to_string()),
        (
            "total refunded",
            format!("{} {}", micros(s.refunded_micros), s.currency),
        ),
        (
            "our cost change",
            format!("{} {}", micros(s.our_cost_delta_micros), s.currency),
        ),
    ] {
        table.push(vec![k.to_owned(), v]);
    }
    table.write(format, out)
}

/// Every correction with its range, who made it and how far its re-rating got.
pub async fn list(pool: &PgPool, format: Format, out: &mut impl Write) -> anyhow::Result<i32> {
    catch_up(pool, "rate_corrections").await?;
    let rows = sqlx::query(
        "SELECT c.number, c.prefix, c.old_cost_micros, c.new_cost_micros, c.old_selling_micros, c.new_selling_micros,
                c.effective_from, c.effective_to, c.reason, c.actor, r.status, r.examined, r.candidates
           FROM rate_corrections c LEFT JOIN rerate_runs r ON r.correction = c.number ORDER BY c.number",
    )
    .fetch_all(pool)
    .await?;
    let mut table = Table::new(vec![
        "correction",
        "prefix",
        "cost",
        "selling",
        "from",
        "to",
        "reason",
        "actor",
        "re-rating",
    ]);
    for r in rows {
        let arrow = |a: &str, b: &str| -> anyhow::Result<String> {
            Ok(format!("{} -> {}", micros(r.try_get(a)?), micros(r.try_get(b)?)))
        };
        let to: Option<DateTime<Utc>> = r.try_get("effective_to")?;
        let status: Option<String> = r.try_get("status")?;
        let run = match status {
            Some(s) => format!(
                "{s} ({}/{})",
                r.try_get::<Option<i64>, _>("examined")?.unwrap_or(0),
                r.try_get::<Option<i64>, _>("candidates")?.unwrap_or(0)
            ),
            None => "queued".into(),
        };
        table.push(vec![
            format!("rc-{}", r.try_get::<i64, _>("number")?),
            r.try_get("prefix")?,
            arrow("old_cost_micros", "new_cost_micros")?,
            arrow("old_selling_micros", "new_selling_micros")?,
            r.try_get::<DateTime<Utc>, _>("effective_from")?.to_rfc3339(),
            to.map(|t| t.to_rfc3339()).unwrap_or_else(|| "open".into()),
            r.try_get("reason")?,
            r.try_get::<uuid::Uuid, _>("actor")?.to_string(),
            run,
        ]);
    }
    table.write(format, out)?;
    Ok(0)
}

/// Prices the ended calls of `[from, to)` against a draft deck; prints CSV, writes nothing.
pub async fn what_if_cmd(
    pool: &PgPool,
    service: &RateService,
    file: &std::path::Path,
    from: &str,
    to: &str,
    currency: &str,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let currency = Currency::parse(currency).map_err(|e| anyhow::anyhow!("--currency: {e}"))?;
    let (from, to) = (super::parse_instant(from)?, super::parse_instant(to)?);
    anyhow::ensure!(from < to, "--from {from} must be before --to {to}");
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let draft = DraftDeck::read(&bytes, currency)?;
    // What-if reads the call_margins read model as it stands and writes nothing, not even a
    // catch-up: say so when it is behind the log.
    let margins = ringledger_projections::by_name("call_margins")?;
    let version = ringledger_projections::versions::ensure_live(pool, margins.as_ref()).await?;
    let at = ringledger_projections::runner::checkpoint(pool, "call_margins", version).await?;
    if ringledger_projections::event::any_after(pool, at, &["Call"]).await? {
        eprintln!(
            "warning: the call_margins read model is behind the log (is `ringledger serve` running?); \
             calls not yet in it are left out"
        );
    }
    service.book().refresh(pool).await?;
    let pricing = service.book().get().pricing.clone();
    let origin = service.config().origination_number.clone();
    let result = what_if(pool, &draft, &pricing, origin.as_deref(), from, to).await?;
    let mut table = Table::new(vec![
        "scope",
        "key",
        "currency",
        "calls",
        "changed_calls",
        "revenue_before",
        "revenue_after",
        "refund",
        "our_cost_before",
        "our_cost_after",
        "margin_before",
        "margin_after",
        "margin_change",
    ]);
    let push = |table: &mut Table, l: &WhatIfLine| {
        table.push(vec![
            l.scope.to_owned(),
            l.key.clone(),
            l.currency.clone(),
            l.calls.to_string(),
            l.changed_calls.to_string(),
            micros(l.revenue_before_micros),
            micros(l.revenue_after_micros),
            micros(l.refund_micros),
            micros(l.our_cost_before_micros),
            micros(l.our_cost_after_micros),
            micros(l.margin_before_micros),
            micros(l.margin_after_micros),
            micros(l.margin_after_micros - l.margin_before_micros),
        ]);
    };
    for line in result.accounts.iter().chain(&result.countries) {
        push(&mut table, line);
    }
    push(&mut table, &result.total);
    table.write(Format::Csv, out)?;
    eprintln!(
        "what-if: {} calls priced, {} would change; {} calls on prefixes the draft does not price; {} bad rows in the draft; nothing was written",
        result.total.calls, result.total.changed_calls, result.not_in_draft, draft.bad_rows
    );
    Ok(0)
}
