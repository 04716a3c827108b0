//! `ringledger-replay rates …`: import, export, activate, list and quote, through the same
//! services the admin pages call. Imports run as the durable `rate_deck_import` job; this
//! command queues it, works the `rates` queue itself until the job is done (a running
//! `ringledger serve` may take it instead) and shows a progress bar meanwhile.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use ringledger_api::rates::{ImportRequest, QuoteOutcome, QuoteRequest, RateService, RatesConfig};
use ringledger_domain::rates::formats::{write_generic, write_twilio};
use ringledger_domain::rates::DeckFormat;
use ringledger_domain::{AccountId, ActorId, BillingPlan, Currency, DeckId, Money};
use ringledger_projections::jobs::JobQueue;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::output::{Format, Table};
use crate::RatesAction;

/// A service of our own, with the NOTIFY sender running so a live `serve` sees our appends.
struct Session {
    service: RateService,
    stop_notify: Arc<tokio::sync::Notify>,
}

impl Session {
    fn start(pool: &PgPool) -> Session {
        let service = RateService::standalone(pool.clone(), RatesConfig::default());
        let stop_notify = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(ringledger_api::notify::run(
            pool.clone(),
            service.appended(),
            stop_notify.clone(),
        ));
        Session { service, stop_notify }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_notify.notify_one();
    }
}

pub async fn run(
    pool: &PgPool,
    action: RatesAction,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    super::ensure_projections(pool).await?;
    let session = Session::start(pool);
    let service = &session.service;
    match action {
        RatesAction::Import {
            file,
            deck_format,
            currency,
            effective_from,
            actor,
            activate,
            skip_bad_rows,
        } => {
            let currency = Currency::parse(&currency).map_err(|e| anyhow::anyhow!("--currency: {e}"))?;
            let effective_from = match effective_from {
                Some(t) => super::parse_instant(&t)?,
                None => Utc::now(),
            };
            let request = ImportRequest {
                file_name: file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "deck.csv".into()),
                format: deck_format.map(Into::into),
                currency,
                effective_from,
                actor: actor_id(actor.as_deref())?,
            };
            let code = import(pool, service, &file, &request, format, out).await?;
            if code == 0 && activate {
                let deck = latest_deck_for(pool, &request.file_name).await?;
                activate_deck(pool, service, deck, request.actor, skip_bad_rows).await?;
            }
            Ok(code)
        }
        RatesAction::Activate {
            deck,
            actor,
            skip_bad_rows,
        } => {
            let deck = DeckId::parse(&deck)?;
            activate_deck(pool, service, deck, actor_id(actor.as_deref())?, skip_bad_rows).await?;
            Ok(0)
        }
        RatesAction::Export { deck, r#as, output } => {
            let deck = match deck {
                Some(d) => DeckId::parse(&d)?,
                None => active_deck(pool)
                    .await?
                    .context("no deck is active; name one (see `rates list`)")?,
            };
            let written = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    export(service, deck, r#as.into(), std::io::BufWriter::new(file)).await?
                }
                None => export(service, deck, r#as.into(), &mut *out).await?,
            };
            eprintln!("exported {written} rows of deck {deck}");
            Ok(0)
        }
        RatesAction::List { deck, country } => match deck {
            None => list_decks(pool, format, out).await,
            Some(d) => list_rows(pool, service, DeckId::parse(&d)?, country.as_deref(), format, out).await,
        },
        RatesAction::Quote {
            number,
            region,
            account,
        } => quote(pool, service, &number, region, account.as_deref(), format, out).await,
        RatesAction::Correct {
            prefix,
            cost,
            selling,
            from,
            to,
            reason,
            actor,
            key,
        } => {
            let args = super::corrections::Correct {
                prefix,
                cost,
                selling,
                from,
                to,
                reason,
                actor: actor_id(actor.as_deref())?,
                key,
            };
            super::corrections::correct(pool, service, args, format, out).await
        }
        RatesAction::Rerate { correction } => {
            super::corrections::rerate(pool, &correction, format, out).await
        }
        RatesAction::Corrections => super::corrections::list(pool, format, out).await,
        RatesAction::WhatIf {
            draft,
            from,
            to,
            currency,
        } => super::corrections::what_if_cmd(pool, service, &draft, &from, &to, &currency, out).await,
    }
}

fn actor_id(text: Option<&str>) -> anyhow::Result<ActorId> {
    match text {
        Some(t) => Ok(ActorId::parse(t)?),
        // The operator CLI acting without a named person.
        None => Ok(ActorId(Uuid::nil())),
    }
}

async fn import(
    pool: &PgPool,
    service: &RateService,
    file: &std::path::Path,
    request: &ImportRequest,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let limit = service.config().max_upload_bytes;
    anyhow::ensure!(
        size <= limit,
        "{} is {size} bytes; the upload limit is {limit} bytes",
        file.display()
    );
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let submitted = service.submit_import(bytes, request).await?;
    if submitted.status == "duplicate" {
        eprintln!(
            "{}",
            submitted
                .message
                .as_deref()
                .unwrap_or("this file was imported before")
        );
        return Ok(0);
    }
    let workers =
        ringledger_api::rates::jobs::spawn_pool(service.clone(), JobQueue::new(pool.clone())).await?;
    let bar = ProgressBar::new(submitted.bytes_total.max(0) as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {bytes}/{total_bytes} {msg} ({eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let status = loop {
        let status = service.import_status(submitted.id).await?;
        bar.set_position(status.bytes_done.max(0) as u64);
        bar.set_message(format!("{} rows, {} bad", status.rows_done, status.error_count));
        if status.is_finished() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    workers.shutdown(Duration::from_secs(10)).await;
    if status.status == "failed" {
        eprintln!(
            "import failed: {}",
            status.message.as_deref().unwrap_or("see the job's last error")
        );
        return Ok(1);
    }
    catch_up_rate_table(pool).await?;
    report(pool, status.deck_id, format, out).await?;
    Ok(0)
}

/// Applies the rate table projection up to now, in this process (safe beside a running serve).
async fn catch_up_rate_table(pool: &PgPool) -> anyhow::Result<()> {
    let projection = ringledger_projections::by_name("rate_table")?;
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

async fn report(pool: &PgPool, deck: DeckId, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT file_name, format, currency, row_count, error_count, problems FROM rate_decks WHERE deck_id = $1",
    )
    .bind(deck.0)
    .fetch_one(pool)
    .await?;
    let errors: i64 = row.try_get("error_count")?;
    eprintln!(
        "deck {deck}: {} ({}, {}), {} rows imported, {errors} refused",
        row.try_get::<String, _>("file_name")?,
        row.try_get::<String, _>("format")?,
        row.try_get::<String, _>("currency")?,
        row.try_get::<i64, _>("row_count")?,
    );
    if errors > 0 {
        let problems: Vec<ringledger_domain::rates::deck::RowProblem> =
            serde_json::from_value(row.try_get("problems")?)?;
        let mut table = Table::new(vec!["line", "column", "problem"])
            .titled(format!("refused rows (first {} of {errors})", problems.len()));
        for p in problems {
            table.push(vec![p.line.to_string(), p.column.unwrap_or_default(), p.message]);
        }
        table.write(format, out)?;
        eprintln!(
            "this deck cannot be activated as it is: fix the file and import it again, or activate it with \
             --skip-bad-rows to go without the rows above"
        );
    } else {
        eprintln!("activate it with: ringledger-replay rates activate {deck}");
    }
    Ok(())
}

async fn latest_deck_for(pool: &PgPool, file_name: &str) -> anyhow::Result<DeckId> {
    let id: Uuid = sqlx::query_scalar(
        "SELECT deck_id FROM rate_imports WHERE file_name = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(file_name)
    .fetch_one(pool)
    .await?;
    Ok(DeckId(id))
}

async fn activate_deck(
    pool: &PgPool,
    service: &RateService,
    deck: DeckId,
    actor: ActorId,
    skip_bad_rows: bool,
) -> anyhow::Result<()> {
    service.activate(deck, actor, skip_bad_rows).await?;
    catch_up_rate_table(pool).await?;
    eprintln!("deck {deck} is now active");
    Ok(())
}

async fn active_deck(pool: &PgPool) -> anyhow::Result<Option<DeckId>> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "SELECT deck_id FROM rate_decks WHERE activated_position IS NOT NULL ORDER BY activated_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    Ok(id.map(DeckId))
}

async fn export(
    service: &RateService,
    deck: DeckId,
    format: DeckFormat,
    out: impl Write,
) -> anyhow::Result<u64> {
    let rows = service.deck_rows(deck).await?;
    let currency = rows
        .first()
        .map(|r| r.cost_per_minute.currency())
        .context("the deck has no rows")?;
    Ok(match format {
        DeckFormat::Generic => write_generic(out, &rows, currency)?,
        DeckFormat::Twilio => {
            let plan = rows
                .first()
                .map(|r| r.plan)
                .unwrap_or_else(|| BillingPlan::per_second(Money::zero(currency)));
            write_twilio(out, &rows, &plan)?
        }
    })
}

async fn list_decks(pool: &PgPool, format: Format, out: &mut impl Write) -> anyhow::Result<i32> {
    let active = active_deck(pool).await?;
    let rows = sqlx::query(
        "SELECT deck_id, coalesce(file_name, '(importing)') AS file_name, coalesce(format, '') AS format,
                row_count, error_count, imported_at, activated_at
           FROM rate_decks ORDER BY imported_at DESC NULLS FIRST",
    )
    .fetch_all(pool)
    .await?;
    let mut table = Table::new(vec![
        "deck",
        "file",
        "format",
        "rows",
        "bad rows",
        "imported_at",
        "activated_at",
        "active",
    ]);
    for r in rows {
        let id: Uuid = r.try_get("deck_id")?;
        let at = |c: &str| -> anyhow::Result<String> {
            Ok(r.try_get::<Option<chrono::DateTime<Utc>>, _>(c)?
                .map(|t| t.to_rfc3339())
                .unwrap_or_default())
        };
        table.push(vec![
            id.to_string(),
            r.try_get("file_name")?,
            r.try_get("format")?,
            r.try_get::<i64, _>("row_count")?.to_string(),
            r.try_get::<i64, _>("error_count")?.to_string(),
            at("imported_at")?,
            at("activated_at")?,
            if active == Some(DeckId(id)) {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    table.write(format, out)?;
    Ok(0)
}

async fn list_rows(
    pool: &PgPool,
    service: &RateService,
    deck: DeckId,
    country: Option<&str>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    service.book().refresh(pool).await?;
    let pricing = service.book().get().pricing.clone();
    let rows = service.deck_rows(deck).await?;
    let mut table = Table::new(vec![
        "line",
        "country",
        "description",
        "prefixes",
        "origin",
        "cost/min",
        "selling/min",
        "margin/min",
        "plan",
    ]);
    for row in rows
        .iter()
        .filter(|r| country.is_none_or(|c| r.iso.eq_ignore_ascii_case(c)))
    {
        let first = row.destination_prefixes.first().map(String::as_str).unwrap_or("");
        let price = pricing.sell(&row.iso, first, row.cost_per_minute)?;
        let p = price.selling.plan;
        table.push(vec![
            row.line.to_string(),
            row.iso.clone(),
            row.description.clone(),
            row.destination_prefixes.join(" "),
            row.origination_prefixes.join(" "),
            row.cost_per_minute.amount_string(),
            price.selling.rate_per_minute.amount_string(),
            price.margin_per_minute.amount_string(),
            format!(
                "{}+{}/{}",
                p.connect_fee.amount_string(),
                p.first_increment_seconds,
                p.next_increment_seconds
            ),
        ]);
    }
    table.write(format, out)?;
    Ok(0)
}

async fn quote(
    pool: &PgPool,
    service: &RateService,
    number: &str,
    region: Option<String>,
    account: Option<&str>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    service.book().refresh(pool).await?;
    let account = match account {
        Some(a) => AccountId::parse(a)?,
        None => AccountId(Uuid::nil()),
    };
    let request = QuoteRequest {
        account_id: account,
        number: number.to_owned(),
        region,
    };
    let mut table = Table::new(vec!["field", "value"]);
    let mut push = |k: &'static str, v: String| table.push(vec![k.to_owned(), v]);
    let code = match service.quote(&request, Utc::now()).await? {
        QuoteOutcome::Quoted { number, quote } => {
            let t = quote.price.selling;
            push("number", number.masked());
            push(
                "country",
                format!("{} ({})", quote.destination.country, quote.destination.iso),
            );
            push(
                "matched prefix",
                format!("{} {}", quote.destination.prefix, quote.destination.description),
            );
            push("cost/min", quote.price.cost_per_minute.to_string());
            push("selling/min", t.rate_per_minute.to_string());
            push("margin/min", quote.price.margin_per_minute.to_string());
            push("connect fee", t.plan.connect_fee.to_string());
            push(
                "increments",
                format!(
                    "{}/{}",
                    t.plan.first_increment_seconds, t.plan.next_increment_seconds
                ),
            );
            push("available", quote.available.to_string());
            push("max duration (s)", quote.max_seconds.to_string());
            push("quote id", quote.id.to_string());
            push("expires at", quote.expires_at.to_rfc3339());
            0
        }
        QuoteOutcome::Blocked { reason, .. } => {
            push("blocked", reason);
            1
        }
        QuoteOutcome::NoRate { number } => {
            push("number", number.masked());
            push("blocked", "no rate in the active deck covers this number".into());
            1
        }
    };
    table.write(format, out)?;
    Ok(code)
}
