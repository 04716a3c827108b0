//! `ringledger-bench projections`: load N account events over M accounts (COPY; not measured),
//! then rebuild balances + statements through the real runner and `apply` code, against a
//! baseline in the same run: reading the same events in runner order without applying or
//! writing. Then live lag (append -> visible in balances) at a steady rate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use hdrhistogram::Histogram;
use rand::Rng;
use ringledger_api::ledger::{AccountService, Envelope, LedgerConfig};
use ringledger_api::store::PostgresStore;
use ringledger_domain::account::{Account, AccountCommand};
use ringledger_domain::{AccountId, CallId, Currency, GrantId, Money, PaymentId, ReservationId};
use ringledger_projections::{event, versions, Position, Runner, RunnerConfig};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::watch;

const COPY_CHUNK: usize = 50_000;

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

pub async fn run(
    url: &str,
    events: u64,
    accounts: usize,
    rate_per_s: u64,
    lag_for: Duration,
) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
    ringledger_api::startup::MIGRATOR.run(&pool).await?;
    eprintln!("generating {events} events over {accounts} accounts with COPY (not measured)...");
    let ids = generate(&pool, events, accounts).await?;
    sqlx::query("ANALYZE events").execute(&pool).await?;

    let (read_rate, read_n) = read_only(&pool).await?;
    let (rebuild_rate, rebuild_secs) = rebuild(&pool).await?;
    println!("{:<34} {:>12} {:>14}", "phase", "events", "events/s");
    println!(
        "{:<34} {:>12} {:>14.0}",
        "read in runner order (baseline)", read_n, read_rate
    );
    println!(
        "{:<34} {:>12} {:>14.0}   ({rebuild_secs:.1} s)",
        "rebuild balances + statements", events, rebuild_rate
    );

    // Settle what the bulk load left behind (dirty pages, statistics) before measuring the
    // steady state; a checkpoint flushing gigabytes mid-measurement would stall every commit.
    eprintln!("vacuum, analyze and checkpoint (not measured)...");
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    sqlx::query("CHECKPOINT").execute(&pool).await?;
    let lag = live_lag(&pool, &ids, rate_per_s, lag_for).await?;
    println!(
        "live lag at {rate_per_s} events/s for {} s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        lag_for.as_secs(),
        lag.value_at_quantile(0.5) as f64 / 1e3,
        lag.value_at_quantile(0.99) as f64 / 1e3,
        lag.max() as f64 / 1e3,
        lag.len()
    );
    let summary = json!({
        "suite": "projections",
        "rebuild_events_per_s": rebuild_rate.round(),
        "read_only_events_per_s": read_rate.round(),
        "ratio": (rebuild_rate / read_rate * 1000.0).round() / 1000.0,
        "lag_p50_ms": (lag.value_at_quantile(0.5) as f64 / 100.0).round() / 10.0,
        "lag_p99_ms": (lag.value_at_quantile(0.99) as f64 / 100.0).round() / 10.0,
    });
    println!("{summary}");
    pool.close().await;
    Ok(())
}

/// Valid events (decided by the real aggregate), interleaved across accounts as live traffic
/// would be, written with COPY in chunks.
async fn generate(pool: &PgPool, events: u64, accounts: usize) -> anyhow::Result<Vec<AccountId>> {
    let ids: Vec<AccountId> = (0..accounts).map(|_| AccountId::new_v7()).collect();
    let mut states: Vec<(Account, u64, Option<CallId>)> = vec![(Account::default(), 0, None); accounts];
    let stamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let metadata = json!({ "occurred_at": stamp }).to_string();
    let mut buffer = String::new();
    let (mut written, mut in_chunk) = (0u64, 0usize);
    let mut round = 0u64;
    while written < events {
        for (i, id) in ids.iter().enumerate() {
            if written >= events {
                break;
            }
            let (state, seq, open_call) = &mut states[i];
            let command = next_command(*id, round, open_call);
            for e in state.decide(&command)? {
                state.fold(&e);
                *seq += 1;
                written += 1;
                in_chunk += 1;
                let payload = serde_json::to_string(&e)?;
                buffer.push_str(&format!(
                    "Account\t{id}\t{seq}\t{}\t1\t{}\t{}\t{stamp}\n",
                    e.name(),
                    escape(&payload),
                    escape(&metadata)
                ));
            }
        }
        round += 1;
        if in_chunk >= COPY_CHUNK || written >= events {
            copy(pool, &buffer).await?;
            buffer.clear();
            in_chunk = 0;
        }
    }
    Ok(ids)
}

fn next_command(id: AccountId, round: u64, open_call: &mut Option<CallId>) -> AccountCommand {
    match (round, open_call.take()) {
        (0, _) => AccountCommand::OpenAccount {
            account_id: id,
            currency: Currency::USD,
        },
        (1, _) => AccountCommand::PurchaseCredit {
            checkout_session_id: None,
            payment_id: PaymentId::parse(&format!("pi_{}", id.0.simple()))
                .unwrap_or_else(|_| unreachable!("valid id")),
            paid: usd(1_000_000_000_000),
            bonus: usd(0),
        },
        (_, Some(call)) => AccountCommand::SettleCall {
            call_id: call,
            cost: usd(13_725),
        },
        (_, None) => {
            let call = CallId::new_v7();
            *open_call = Some(call);
            AccountCommand::ReserveCredit {
                reservation_id: ReservationId::new_v7(),
                call_id: call,
                amount: usd(500_000),
            }
        }
    }
}

/// COPY text format: backslash, tab and newline escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

async fn copy(pool: &PgPool, rows: &str) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, occurred_at) FROM STDIN")
        .await?;
    copy.send(rows.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Baseline: the runner's read path (fenced, commit order, same batch size), nothing applied.
async fn read_only(pool: &PgPool) -> anyhow::Result<(f64, u64)> {
    let started = Instant::now();
    let (mut after, mut n) = (Position::default(), 0u64);
    loop {
        let batch = event::read_batch(
            pool,
            after,
            None,
            &["Account"],
            RunnerConfig::default().batch_size,
        )
        .await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        n += batch.len() as u64;
    }
    Ok((n as f64 / started.elapsed().as_secs_f64(), n))
}

/// Rebuilds balances and statements from position 0 with their runners side by side.
async fn rebuild(pool: &PgPool) -> anyhow::Result<(f64, f64)> {
    let projections = [
        ringledger_projections::by_name("balances")?,
        ringledger_projections::by_name("statements")?,
    ];
    let mut versions_built = Vec::new();
    for p in &projections {
        versions::ensure_live(pool, p.as_ref()).await?;
        versions_built.push(versions::create_version(pool, p.as_ref()).await?);
    }
    let runners: Vec<Runner> = projections
        .iter()
        .zip(versions_built)
        .map(|(p, v)| Runner::new(pool.clone(), p.clone(), v, RunnerConfig::rebuild()))
        .collect();
    let started = Instant::now();
    let applied = Runner::catch_up_together(&runners, None).await?;
    let secs = started.elapsed().as_secs_f64();
    for p in &projections {
        let (_, building) = versions::registered(pool, p.name()).await?;
        if let Some(b) = building {
            versions::switch(pool, p.as_ref(), b).await?;
        }
    }
    Ok((applied as f64 / secs, secs))
}

/// Appends grants at a steady rate through the command service while the live balances runner
/// follows the log (woken by the appender's NOTIFY). Lag of each event: from its `recorded_at`
/// (the append) to the commit of the runner batch that made it visible in `balances`.
async fn live_lag(
    pool: &PgPool,
    ids: &[AccountId],
    rate_per_s: u64,
    duration: Duration,
) -> anyhow::Result<Histogram<u64>> {
    let svc = AccountService::new(
        Arc::new(PostgresStore::new(pool.clone())),
        LedgerConfig::default(),
    );
    warm(&svc, ids).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let balances = ringledger_projections::by_name("balances")?;
    let (live, _) = versions::registered(pool, "balances").await?;
    // The runner first catches up with the warm-up (not measured); measuring starts once it
    // has, so the lag is the steady state's and not the catch-up's.
    Runner::new(pool.clone(), balances.clone(), live, RunnerConfig::default())
        .catch_up(None, |_| {})
        .await?;
    let hist = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new(3)?));
    let measuring_from = Utc::now();
    let observer = {
        let hist = hist.clone();
        Arc::new(move |events: &[ringledger_projections::RecordedEvent]| {
            let now = Utc::now();
            if let Ok(mut h) = hist.lock() {
                for e in events.iter().filter(|e| e.recorded_at >= measuring_from) {
                    let _ = h.record((now - e.recorded_at).num_microseconds().unwrap_or(0).max(1) as u64);
                }
            }
        })
    };
    let runner = Runner::new(pool.clone(), balances, live, RunnerConfig::default()).with_observer(observer);
    let runner = ringledger_projections::supervisor::spawn_dedicated(runner.run(stop_rx));
    let notifier_stop = Arc::new(tokio::sync::Notify::new());
    let notifier = tokio::spawn(ringledger_api::notify::run(
        pool.clone(),
        svc.ledger().appended(),
        notifier_stop.clone(),
    ));

    let ids = Arc::new(ids.to_vec());
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate_per_s.max(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut inflight = Vec::new();
    while started.elapsed() < duration {
        ticker.tick().await;
        let (svc, ids) = (svc.clone(), ids.clone());
        inflight.push(tokio::spawn(async move {
            let account = ids[rand::thread_rng().gen_range(0..ids.len())];
            let grant = AccountCommand::GrantCredit {
                grant_id: GrantId::new_v7(),
                amount: usd(1),
                promotion: "bench".into(),
            };
            let t = Instant::now();
            svc.execute(account, Envelope::new(grant))
                .await
                .map(|_| t.elapsed().as_micros() as u64)
                .ok()
        }));
    }
    // The appends' own latency (commit included): a stalled commit holds the fence for all.
    let mut append = Histogram::<u64>::new(3)?;
    for t in inflight {
        if let Some(us) = t.await? {
            append.record(us.max(1))?;
        }
    }
    println!(
        "append latency meanwhile: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        append.value_at_quantile(0.5) as f64 / 1e3,
        append.value_at_quantile(0.99) as f64 / 1e3,
        append.max() as f64 / 1e3
    );
    // Let the runner apply the last appends, then stop it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    notifier_stop.notify_one();
    let _ = tokio::task::spawn_blocking(move || runner.join()).await;
    let _ = notifier.await;
    let hist = hist
        .lock()
        .map_err(|_| anyhow::anyhow!("lag histogram poisoned"))?
        .clone();
    Ok(hist)
}

/// Loads every account into the command service once (not measured), so the lag measured is
/// the steady state of hot accounts, not first loads of streams that have no snapshot yet.
async fn warm(svc: &AccountService<PostgresStore>, ids: &[AccountId]) -> anyhow::Result<()> {
    eprintln!(
        "warming {} accounts in the command service (not measured)...",
        ids.len()
    );
    super::for_each_account(svc, ids, 16, |_| {
        vec![AccountCommand::GrantCredit {
            grant_id: GrantId::new_v7(),
            amount: usd(1),
            promotion: "warm".into(),
        }]
    })
    .await
}
