//! The commands, each a function from parsed arguments to output and an exit code.

mod account;
mod corrections;
pub mod fraud;
mod jobs;
mod projections;
mod rates;

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let url = cli.database_url.as_deref().filter(|u| !u.is_empty()).context(
        "DATABASE_URL is not set: pass --database-url or set DATABASE_URL (scripts/dev prints it)",
    )?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .context("connecting to the database")?;
    let format = cli.format;
    let out = &mut std::io::stdout().lock();
    match cli.command {
        Command::Audit { account, as_of } => {
            account::audit(&pool, &account, as_of.as_deref(), format, out).await
        }
        Command::Events { account } => account::events(&pool, &account, format, out).await,
        Command::Statement { account, from, to } => {
            account::statement(&pool, &account, from.as_deref(), to.as_deref(), format, out).await
        }
        Command::Verify { projections, limit } => {
            projections::verify(&pool, &projections, limit, format, out).await
        }
        Command::Rebuild {
            projection,
            no_switch,
        } => projections::rebuild(&pool, &projection, !no_switch, format, out).await,
        Command::Drop { projection, version } => projections::drop(&pool, &projection, version).await,
        Command::Status => projections::status(&pool, format, out).await,
        Command::Jobs { action } => jobs::run(&pool, action, format, out).await,
        Command::Rates { action } => rates::run(&pool, action, format, out).await,
        Command::Fraud {
            action:
                crate::FraudAction::WhatIf {
                    from,
                    to,
                    threshold,
                    set,
                    only,
                    ranges,
                },
        } => {
            let args = fraud::WhatIfArgs {
                from,
                to,
                threshold,
                set,
                only,
                ranges,
            };
            fraud::what_if_command(&pool, args, format, out).await
        }
    }
}

pub(crate) fn parse_instant(text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .with_context(|| format!("`{text}` is not an RFC 3339 instant; write e.g. 2026-11-25T10:00:00Z"))
}

pub(crate) fn parse_account(text: &str) -> anyhow::Result<uuid::Uuid> {
    uuid::Uuid::parse_str(text).with_context(|| format!("`{text}` is not an account id (a UUID)"))
}

pub(crate) async fn ensure_projections(pool: &PgPool) -> anyhow::Result<()> {
    for p in ringledger_projections::all() {
        ringledger_projections::versions::ensure_live(pool, p.as_ref()).await?;
    }
    Ok(())
}
