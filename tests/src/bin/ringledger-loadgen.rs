//! `ringledger-loadgen`: plays many media nodes with many concurrent calls each against a real
//! api and Postgres over the metering protocol, then checks the ledger (docs/loadgen.md).
//! Exits 0 when every check passes, 1 when one fails, 2 on an error. Thin: the engine is
//! `ringledger_tests::loadgen`.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ringledger_tests::loadgen::{self, InProcess, Options, Secrets, Target};
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

#[derive(Parser)]
#[command(
    name = "ringledger-loadgen",
    about = "Load generator for real-time credit control: simulated media nodes against a real api and Postgres, then ledger checks",
    after_help = "With --api, the media and call-token secrets come from RINGLEDGER_MEDIA_SECRET and RINGLEDGER_CALL_TOKEN_SECRET (the api's own)."
)]
struct Cli {
    #[command(flatten)]
    options: Options,
    /// A running api's base URL, e.g. http://127.0.0.1:3000 (default: start one in-process on a
    /// fresh database).
    #[arg(long, requires = "database_url")]
    api: Option<String>,
    /// With --api: the running api's database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Without --api: the Postgres where a fresh database is created (and dropped afterwards).
    #[arg(
        long,
        env = "RINGLEDGER_TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    admin_database_url: String,
    /// Without --api: keep the fresh database afterwards (its URL is printed).
    #[arg(long)]
    keep: bool,
}

fn main() {
    let code = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => match rt.block_on(run(Cli::parse())) {
            Ok(true) => 0,
            Ok(false) => 1,
            Err(e) => {
                eprintln!("ringledger-loadgen: {e:#}");
                2
            }
        },
        Err(e) => {
            eprintln!("ringledger-loadgen: {e}");
            2
        }
    };
    std::process::exit(code);
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let options = cli.options.clone();
    match &cli.api {
        Some(api) => {
            let url = cli.database_url.clone().context("--api needs --database-url")?;
            let secret = |name: &str| {
                std::env::var(name)
                    .ok()
                    .filter(|s| s.len() >= 32)
                    .with_context(|| format!("--api needs {name} (the api's, at least 32 bytes)"))
            };
            let secrets = Secrets {
                media: secret("RINGLEDGER_MEDIA_SECRET")?.into(),
                call_token: secret("RINGLEDGER_CALL_TOKEN_SECRET")?.into(),
            };
            let target = Arc::new(Target::remote(api, &url, secrets).await?);
            let outcome = loadgen::run(target, options).await?;
            outcome.print();
            Ok(outcome.passed())
        }
        None => {
            let name = format!("ringledger_loadgen_{}", std::process::id());
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(&cli.admin_database_url)
                .await
                .context("connecting to --admin-database-url")?;
            admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
            let url = ringledger_tests::with_database(&cli.admin_database_url, &name);
            let result = in_process(&url, options).await;
            if cli.keep {
                eprintln!("kept the database: {url}");
            } else {
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
            }
            result
        }
    }
}

async fn in_process(url: &str, options: Options) -> anyhow::Result<bool> {
    let how = InProcess {
        database_url: url.to_owned(),
        pool_size: options.pool_size,
        calls: options.calls_config(),
    };
    how.calls.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let target = Arc::new(Target::in_process(how).await?);
    let outcome = loadgen::run(target.clone(), options).await;
    if let Ok(mut target) = Arc::try_unwrap(target) {
        target.shutdown().await?;
    }
    let outcome = outcome?;
    outcome.print();
    Ok(outcome.passed())
}
