//! `ringledger-bench`: benchmarks that report ratios against a baseline measured in the same
//! run, on the same database, because these machines are shared and noisy. Each suite works in
//! a scratch database it creates next to `DATABASE_URL` and drops afterwards, prints a table,
//! and ends with one JSON line.

mod auth;
mod credit;
mod ledger;
mod payments;
mod projections;
mod rates;
mod rates_lookup;
mod rerate;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

#[derive(Parser)]
#[command(
    name = "ringledger-bench",
    about = "RingLedger benchmarks (run with --release)"
)]
struct Cli {
    /// Postgres to benchmark on; a scratch database is created there and dropped afterwards.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    database_url: String,
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// Event append throughput and command latency of the Account ledger vs bare INSERTs.
    Ledger {
        /// Seconds measured per case.
        #[arg(long, default_value_t = 6)]
        seconds: u64,
        /// Accounts in the spread-out cases.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// Database connections (the same for the ledger and the baseline).
        #[arg(long, default_value_t = 64)]
        connections: u32,
    },
    /// Number lookup vs binary search, and deck import vs csv parse + COPY.
    Rates {
        /// Rows in the generated Twilio file.
        #[arg(long, default_value_t = 500_000)]
        rows: usize,
        /// Prefixes in the lookup deck.
        #[arg(long, default_value_t = 100_000)]
        prefixes: usize,
        /// Numbers looked up.
        #[arg(long, default_value_t = 2_000_000)]
        lookups: usize,
    },
    /// Sign-ins per second over HTTP (form, CSRF, argon2id, session write) vs bare argon2id
    /// verifications per second on as many threads.
    Auth {
        /// Seconds measured for each of the two figures.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Concurrent clients (and baseline threads).
        #[arg(long, default_value_t = 32)]
        clients: usize,
    },
    /// Re-rating after a rate correction: calls examined per second by the process manager
    /// vs reading the same calls' events without re-rating.
    Rerate {
        /// Ended calls generated (COPY; not measured).
        #[arg(long, default_value_t = 100_000)]
        calls: usize,
        /// Accounts the calls are spread over.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// Percent of the calls on the corrected prefix.
        #[arg(long, default_value_t = 10)]
        share_percent: usize,
    },
    /// Signed Stripe webhooks per second with end-to-end p99 (request to credit visible in the
    /// balances read model) within 100 ms, vs the ledger's append rate; bounded to 3 minutes.
    Payments {
        /// Seconds per rate step (100, 200, 400 … webhooks/s).
        #[arg(long, default_value_t = 20)]
        step_seconds: u64,
        /// Accounts the webhooks are spread over.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// The whole suite stops starting steps past this many seconds.
        #[arg(long, default_value_t = 180)]
        budget_seconds: u64,
    },
    /// Real-time credit control: interim decision latency holding 10,000 concurrent calls, then
    /// a ramp by 2,000 calls every 30 s until p99 passes 50 ms; vs bare INSERTs. At most 5 min.
    Credit {
        /// Accounts the calls are spread over evenly.
        #[arg(long, default_value_t = 2_000)]
        accounts: usize,
        /// Concurrent calls held for the latency figures.
        #[arg(long, default_value_t = 10_000)]
        calls: usize,
        /// Seconds the calls are held and measured.
        #[arg(long, default_value_t = 60)]
        hold_seconds: u64,
        /// Calls added per ramp step.
        #[arg(long, default_value_t = 2_000)]
        step_calls: usize,
        /// Seconds per ramp step.
        #[arg(long, default_value_t = 30)]
        step_seconds: u64,
        /// Interim period.
        #[arg(long, default_value_t = 6)]
        tick_seconds: u64,
        /// Simulated media nodes.
        #[arg(long, default_value_t = 20)]
        nodes: usize,
        /// The api's database pool (and the baseline's connections).
        #[arg(long, default_value_t = 64)]
        connections: u32,
        /// Calls started per second at most while ramping up.
        #[arg(long, default_value_t = 500)]
        start_rate: u64,
    },
    /// Projection rebuild throughput vs reading the log, then live lag at a steady rate.
    Projections {
        /// Events generated (not measured) before the rebuild.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Accounts the events are spread over.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// Steady append rate during the lag measurement.
        #[arg(long, default_value_t = 1_000)]
        rate_per_s: u64,
        /// Seconds of the lag measurement.
        #[arg(long, default_value_t = 30)]
        lag_seconds: u64,
        /// Keep the scratch database afterwards (its URL is printed), to try the CLI on it.
        #[arg(long)]
        keep: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.suite {
        Suite::Auth { seconds, clients } => {
            scratch(&cli.database_url, false, |url| async move {
                auth::run(&url, Duration::from_secs(seconds), clients).await
            })
            .await
        }
        Suite::Credit {
            accounts,
            calls,
            hold_seconds,
            step_calls,
            step_seconds,
            tick_seconds,
            nodes,
            connections,
            start_rate,
        } => {
            let settings = credit::Settings {
                accounts,
                hold_calls: calls,
                hold_seconds,
                step_calls,
                step_seconds,
                tick_seconds,
                nodes,
                pool_size: connections,
                start_rate,
            };
            scratch(&cli.database_url, false, |url| async move {
                credit::run(&url, settings).await
            })
            .await
        }
        Suite::Ledger {
            seconds,
            accounts,
            connections,
        } => {
            scratch(&cli.database_url, false, |url| async move {
                ledger::run(&url, Duration::from_secs(seconds), accounts, connections).await
            })
            .await
        }
        Suite::Payments {
            step_seconds,
            accounts,
            budget_seconds,
        } => {
            scratch(&cli.database_url, false, |url| async move {
                payments::run(&url, step_seconds, accounts, Duration::from_secs(budget_seconds)).await
            })
            .await
        }
        Suite::Rates {
            rows,
            prefixes,
            lookups,
        } => {
            scratch(&cli.database_url, false, |url| async move {
                rates::run(&url, rows, prefixes, lookups).await
            })
            .await
        }
        Suite::Rerate {
            calls,
            accounts,
            share_percent,
        } => {
            scratch(&cli.database_url, false, |url| async move {
                rerate::run(&url, calls, accounts, share_percent).await
            })
            .await
        }
        Suite::Projections {
            events,
            accounts,
            rate_per_s,
            lag_seconds,
            keep,
        } => {
            scratch(&cli.database_url, keep, |url| async move {
                projections::run(
                    &url,
                    events,
                    accounts,
                    rate_per_s,
                    Duration::from_secs(lag_seconds),
                )
                .await
            })
            .await
        }
    }
}

/// Runs `suite` against a fresh database next to `admin_url`, dropped afterwards unless `keep`.
async fn scratch<F, Fut>(admin_url: &str, keep: bool, suite: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let name = format!("ringledger_bench_{}", std::process::id());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .context("connecting to DATABASE_URL")?;
    admin
        .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
        .await?;
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    let url = ringledger_tests::with_database(admin_url, &name);
    let result = suite(url.clone()).await;
    if keep {
        eprintln!("kept the scratch database: {url}");
    } else {
        admin
            .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
            .await?;
    }
    result
}

/// Runs, for every account, the commands `commands` makes for it, with `tasks` accounts in
/// flight at once (setup work, not measured).
async fn for_each_account(
    svc: &ringledger_api::ledger::AccountService<ringledger_api::store::PostgresStore>,
    accounts: &[ringledger_domain::AccountId],
    tasks: usize,
    commands: fn(ringledger_domain::AccountId) -> Vec<ringledger_domain::account::AccountCommand>,
) -> anyhow::Result<()> {
    let chunk = accounts.len().div_ceil(tasks.max(1)).max(1);
    let running = accounts.chunks(chunk).map(|c| c.to_vec()).map(|chunk| {
        let svc = svc.clone();
        tokio::spawn(async move {
            for account in chunk {
                for command in commands(account) {
                    svc.execute(account, ringledger_api::ledger::Envelope::new(command))
                        .await?;
                }
            }
            anyhow::Ok(())
        })
    });
    for t in futures::future::join_all(running).await {
        t??;
    }
    Ok(())
}
