//! `ringledger-bench ledger`: reserve -> settle pairs through the Account aggregate, command
//! service and event store, with 1, 8 and 64 writers over 1 and over 10,000 accounts; baseline:
//! single-row autocommit INSERTs of a same-sized payload into a bare table with a bigserial key,
//! with the same connection count. Prints a table, then one JSON line.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use ringledger_api::ledger::{AccountService, Envelope, LedgerConfig};
use ringledger_api::store::PostgresStore;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::{AccountId, CallId, Currency, Money, PaymentId, ReservationId};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

pub(crate) struct Case {
    writers: usize,
    accounts: usize,
    pub events_per_s: f64,
    p50_us: u64,
    p99_us: u64,
}

/// Runs the ledger suite in the (empty) database at `url`.
pub async fn run(url: &str, duration: Duration, spread: usize, connections: u32) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect(url)
        .await?;
    ringledger_api::startup::MIGRATOR.run(&pool).await?;
    pool.execute("CREATE TABLE bench_baseline (id bigserial PRIMARY KEY, payload json NOT NULL)")
        .await?;
    let svc = AccountService::new(
        Arc::new(PostgresStore::new(pool.clone())),
        LedgerConfig::default(),
    );

    eprintln!("opening and funding {} accounts (not measured)...", spread + 1);
    let hot = vec![AccountId::new_v7()];
    let many: Vec<AccountId> = (0..spread).map(|_| AccountId::new_v7()).collect();
    fund(&svc, &hot).await?;
    fund(&svc, &many).await?;

    let payload = sample_payload();
    println!(
        "{:<10} {:>9} {:>14} {:>10} {:>10}",
        "case", "writers", "events/s", "p50 ms", "p99 ms"
    );
    let mut cases = Vec::new();
    let mut baselines = Vec::new();
    for writers in [1usize, 8, 64] {
        let base = baseline(&pool, &payload, writers, duration).await?;
        println!(
            "{:<10} {:>9} {:>14.0} {:>10.3} {:>10.3}",
            "baseline",
            writers,
            base.events_per_s,
            ms(base.p50_us),
            ms(base.p99_us)
        );
        baselines.push(base);
        for set in [&hot, &many] {
            let case = pairs(&svc, set, writers, duration).await?;
            let label = if set.len() == 1 {
                "1 account".to_owned()
            } else {
                format!("{} accts", set.len())
            };
            println!(
                "{:<10} {:>9} {:>14.0} {:>10.3} {:>10.3}",
                label,
                writers,
                case.events_per_s,
                ms(case.p50_us),
                ms(case.p99_us)
            );
            cases.push(case);
        }
    }
    let find = |w: usize, a: usize| {
        cases
            .iter()
            .find(|c| c.writers == w && c.accounts == a)
            .map(|c| c.events_per_s)
            .unwrap_or(0.0)
    };
    let base64 = baselines
        .iter()
        .find(|b| b.writers == 64)
        .map(|b| b.events_per_s)
        .unwrap_or(0.0);
    let spread_rate = find(64, spread);
    let summary = json!({
        "suite": "ledger",
        "events_per_s": spread_rate.round(),
        "baseline_per_s": base64.round(),
        "ratio": if base64 > 0.0 { (spread_rate / base64 * 1000.0).round() / 1000.0 } else { 0.0 },
        "one_account_events_per_s": find(64, 1).round(),
        "conflicts": ringledger_api::ledger::LedgerStats::get(&svc.ledger().stats().conflicts),
    });
    println!("{summary}");
    pool.close().await;
    Ok(())
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

pub(crate) async fn fund(svc: &AccountService<PostgresStore>, accounts: &[AccountId]) -> anyhow::Result<()> {
    super::for_each_account(svc, accounts, 32, |account| {
        let payment_id =
            PaymentId::parse(&format!("pi_{}", account.0.simple())).unwrap_or_else(|_| unreachable!());
        vec![
            AccountCommand::OpenAccount {
                account_id: account,
                currency: Currency::USD,
            },
            AccountCommand::PurchaseCredit {
                checkout_session_id: None,
                payment_id,
                paid: usd(1_000_000_000_000),
                bonus: usd(0),
            },
        ]
    })
    .await
}

pub(super) fn sample_payload() -> String {
    // The same size as a CreditReserved event row's payload and metadata.
    let event = json!({"type":"CreditReserved","reservation_id":ReservationId::new_v7(),"call_id":CallId::new_v7(),
        "amount":{"amount":"0.500000","currency":"USD"},
        "postings":[{"account":"available","amount":{"amount":"-0.500000","currency":"USD"}},
                    {"account":"reserved","amount":{"amount":"0.500000","currency":"USD"}}],
        "metadata":{"occurred_at":"2026-11-25T10:00:00.000000Z","command":"ReserveCredit"}});
    event.to_string()
}

/// Runs `writers` loops until `duration` passes. Each call of `step` performs one or more
/// commands and returns each one's latency in microseconds; each command is one event.
async fn drive<F, Fut>(writers: usize, duration: Duration, step: F) -> anyhow::Result<(f64, Histogram<u64>)>
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Vec<u64>>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (stop, done, step) = (stop.clone(), done.clone(), step.clone());
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3)?;
                while !stop.load(Ordering::Relaxed) {
                    for latency_us in step().await? {
                        hist.record(latency_us.max(1))?;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                anyhow::Ok(hist)
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new(3)?;
    for t in futures::future::join_all(tasks).await {
        hist.add(t??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok((done.load(Ordering::Relaxed) as f64 / elapsed, hist))
}

fn micros_since(t: Instant) -> u64 {
    u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Bare single-row INSERTs into `bench_baseline` by `writers` connections (the table must exist).
pub(super) async fn baseline(
    pool: &PgPool,
    payload: &str,
    writers: usize,
    duration: Duration,
) -> anyhow::Result<Case> {
    let (pool, payload) = (pool.clone(), Arc::new(payload.to_owned()));
    let (rate, hist) = drive(writers, duration, move || {
        let (pool, payload) = (pool.clone(), payload.clone());
        async move {
            let t = Instant::now();
            sqlx::query("INSERT INTO bench_baseline (payload) VALUES ($1::json)")
                .bind(payload.as_str())
                .execute(&pool)
                .await?;
            Ok(vec![micros_since(t)])
        }
    })
    .await?;
    Ok(Case {
        writers,
        accounts: 0,
        events_per_s: rate,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    })
}

/// One step = reserve then settle on a random account of the set: two commands, two events.
pub(crate) async fn pairs(
    svc: &AccountService<PostgresStore>,
    accounts: &[AccountId],
    writers: usize,
    duration: Duration,
) -> anyhow::Result<Case> {
    let count = accounts.len();
    let accounts = Arc::new(accounts.to_vec());
    let svc = svc.clone();
    let (rate, hist) = drive(writers, duration, move || {
        let (svc, accounts) = (svc.clone(), accounts.clone());
        async move {
            let account = accounts[rand::thread_rng().gen_range(0..accounts.len())];
            let call = CallId::new_v7();
            let reserve = AccountCommand::ReserveCredit {
                reservation_id: ReservationId::new_v7(),
                call_id: call,
                amount: usd(500_000),
            };
            let t = Instant::now();
            svc.execute(account, Envelope::new(reserve)).await?;
            let reserved_us = micros_since(t);
            let settle = AccountCommand::SettleCall {
                call_id: call,
                cost: usd(13_725),
            };
            let t = Instant::now();
            svc.execute(account, Envelope::new(settle)).await?;
            Ok(vec![reserved_us, micros_since(t)])
        }
    })
    .await?;
    Ok(Case {
        writers,
        accounts: count,
        events_per_s: rate,
        p50_us: hist.value_at_quantile(0.5),
        p99_us: hist.value_at_quantile(0.99),
    })
}
