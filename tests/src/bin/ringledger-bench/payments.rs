//! `ringledger-bench payments`: signed `checkout.session.completed` webhooks for distinct
//! sessions over 10,000 accounts, posted to the running app at 100, 200, 400, 800 … per second
//! for 20 s each; end-to-end latency is from just before the request is sent to the credit
//! being visible in the balances read model (a poller reads rows whose position moved). The
//! highest rate whose every credit became visible with p99 ≤ 100 ms is reported. Baseline in
//! the same run: the ledger suite's append rate (reserve/settle pairs, 64 writers over the same
//! 10,000 accounts). Bounded to 3 minutes. Prints a table, then one JSON line.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringledger_api::ledger::{AccountService, LedgerConfig};
use ringledger_api::store::PostgresStore;
use ringledger_domain::AccountId;
use ringledger_tests::payments::{event, session, sign, PaymentsApp};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

const P99_TARGET_MS: f64 = 100.0;
const CENTS: i64 = 1_000;
const MICROS_PER_WEBHOOK: i64 = CENTS * 10_000;
const MAX_IN_FLIGHT: usize = 4_096;

/// Per account: (lifetime purchased the credit must reach, when its webhook was sent).
type Pending = Arc<Mutex<HashMap<Uuid, VecDeque<(i64, Instant)>>>>;

struct Step {
    target_per_s: u64,
    sent_per_s: f64,
    refused: u64,
    unseen: usize,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(url: &str, step_seconds: u64, accounts: usize, budget: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let pool = PgPoolOptions::new()
        .max_connections(40)
        .min_connections(8)
        .connect(url)
        .await?;
    ringledger_api::startup::MIGRATOR.run(&pool).await?;
    let svc = AccountService::new(
        Arc::new(PostgresStore::new(pool.clone())),
        LedgerConfig::default(),
    );
    eprintln!("opening and funding {accounts} accounts (not measured)...");
    let many: Vec<AccountId> = (0..accounts).map(|_| AccountId::new_v7()).collect();
    super::ledger::fund(&svc, &many).await?;
    let baseline = super::ledger::pairs(&svc, &many, 64, Duration::from_secs(10)).await?;
    println!(
        "baseline: ledger appends, 64 writers over {accounts} accounts: {:.0} events/s",
        baseline.events_per_s
    );

    // Postgres allows 100 connections, shared with other users: the baseline (64 writers on 40
    // connections) closes its pool before the app takes its own.
    pool.close().await;
    let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
    let app = Arc::new(PaymentsApp::start(url, 40).await?);
    let purchased = wait_caught_up(&pool, accounts).await?;
    let next_target: Arc<Mutex<HashMap<Uuid, i64>>> = Arc::new(Mutex::new(purchased));
    println!(
        "{:>10} {:>10} {:>8} {:>8} {:>9} {:>9}",
        "target/s", "sent/s", "refused", "unseen", "p50 ms", "p99 ms"
    );
    let mut steps = Vec::new();
    let mut rate = 100u64;
    let mut serial = 0u64;
    let drain = Duration::from_secs(10);
    while started.elapsed() + Duration::from_secs(step_seconds) + drain <= budget {
        let step = one_step(
            &app,
            &pool,
            &many,
            &next_target,
            rate,
            step_seconds,
            &mut serial,
            drain,
        )
        .await?;
        println!(
            "{:>10} {:>10.0} {:>8} {:>8} {:>9.1} {:>9.1}",
            step.target_per_s, step.sent_per_s, step.refused, step.unseen, step.p50_ms, step.p99_ms
        );
        let ok = passed(&step);
        steps.push(step);
        if !ok {
            break;
        }
        rate *= 2;
    }
    let best = steps.iter().filter(|s| passed(s)).max_by_key(|s| s.target_per_s);
    let (webhooks, p99) = match best {
        Some(s) => (s.target_per_s as f64, s.p99_ms),
        None => (0.0, steps.first().map_or(0.0, |s| s.p99_ms)),
    };
    let base = baseline.events_per_s;
    if let Ok(app) = Arc::try_unwrap(app) {
        app.stop().await;
    }
    let summary = json!({
        "suite": "payments",
        "webhooks_per_s": webhooks,
        "p99_ms": (p99 * 10.0).round() / 10.0,
        "baseline_per_s": base.round(),
        "ratio": if base > 0.0 { (webhooks / base * 1000.0).round() / 1000.0 } else { 0.0 },
    });
    println!("{summary}");
    pool.close().await;
    Ok(())
}

fn passed(s: &Step) -> bool {
    s.unseen == 0
        && s.refused == 0
        && s.p99_ms <= P99_TARGET_MS
        && s.sent_per_s >= 0.95 * s.target_per_s as f64
}

/// Waits for the balances read model to hold every funded account; returns their lifetime
/// purchased amounts.
async fn wait_caught_up(pool: &PgPool, accounts: usize) -> anyhow::Result<HashMap<Uuid, i64>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows: Vec<(Uuid, i64)> =
            sqlx::query_as("SELECT account_id, lifetime_purchased_micros FROM balances")
                .fetch_all(pool)
                .await
                .unwrap_or_default();
        // Caught up to the end of the log too (the baseline's events), not just every row present.
        let lag: i64 = sqlx::query_scalar(
            "SELECT (SELECT COALESCE(max(global_position), 0) FROM events WHERE aggregate_type = 'Account')
                  - (SELECT COALESCE(max(last_global_position), 0) FROM balances)",
        )
        .fetch_one(pool)
        .await
        .unwrap_or(i64::MAX);
        if lag <= 0 && rows.len() >= accounts && rows.iter().all(|(_, p)| *p > 0) {
            return Ok(rows.into_iter().collect());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the balances projection did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn one_step(
    app: &Arc<PaymentsApp>,
    pool: &PgPool,
    accounts: &[AccountId],
    next_target: &Arc<Mutex<HashMap<Uuid, i64>>>,
    rate: u64,
    seconds: u64,
    serial: &mut u64,
    drain: Duration,
) -> anyhow::Result<Step> {
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(poll(pool.clone(), pending.clone(), hist.clone(), stop_rx));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = rate * seconds;
    let tick = Duration::from_millis(10);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut senders = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    while sent < total {
        let due = (started.elapsed().as_secs_f64() * rate as f64).min(total as f64) as u64;
        while sent < due {
            *serial += 1;
            let account = accounts[usize::try_from(*serial).unwrap_or(0) % accounts.len()];
            let n = *serial;
            let target = {
                let mut t = next_target.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
                let v = t.entry(account.0).or_insert(0);
                *v += MICROS_PER_WEBHOOK;
                *v
            };
            let body = event(
                &format!("evt_bench_{n}"),
                "checkout.session.completed",
                session(
                    &format!("cs_bench_{n}"),
                    &format!("pi_bench_{n}"),
                    account,
                    CENTS,
                    0,
                    "paid",
                ),
            );
            let permit = in_flight.clone().acquire_owned().await?;
            let (app, pending, refused) = (app.clone(), pending.clone(), refused.clone());
            senders.push(tokio::spawn(async move {
                let signature = sign(&body);
                let t0 = Instant::now();
                if let Ok(mut p) = pending.lock() {
                    p.entry(account.0).or_default().push_back((target, t0));
                }
                let ok = matches!(app.post(&body, Some(&signature)).await, Ok((200, _)));
                if !ok {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                drop(permit);
            }));
            sent += 1;
        }
        tokio::time::sleep(tick).await;
    }
    let send_secs = started.elapsed().as_secs_f64();
    futures::future::join_all(senders).await;
    let deadline = Instant::now() + drain;
    while Instant::now() < deadline {
        let left: usize = pending
            .lock()
            .map(|p| p.values().map(VecDeque::len).sum())
            .unwrap_or(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let _ = poller.await;
    let unseen: usize = pending
        .lock()
        .map(|p| p.values().map(VecDeque::len).sum())
        .unwrap_or(0);
    // Where the time goes: the job path alone (received -> processed in the inbox).
    let (job_p50, job_p99, waiting): (Option<f64>, Option<f64>, i64) = sqlx::query_as(
        "SELECT (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)))::float8 * 1000,
                (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM processed_at - received_at)))::float8 * 1000,
                count(*) FILTER (WHERE status = 'received')
           FROM stripe_inbox WHERE received_at > now() - make_interval(secs => $1)",
    )
    .bind(started.elapsed().as_secs_f64())
    .fetch_one(pool)
    .await
    .unwrap_or((None, None, 0));
    println!(
        "  job path (inbox received -> processed): p50 {:.1} ms, p99 {:.1} ms, {waiting} not yet processed",
        job_p50.unwrap_or(0.0),
        job_p99.unwrap_or(0.0)
    );
    let h = hist.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    Ok(Step {
        target_per_s: rate,
        sent_per_s: total as f64 / send_secs,
        refused: refused.load(std::sync::atomic::Ordering::Relaxed),
        unseen,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

/// Reads balance rows whose log position moved since the last poll and resolves the webhooks
/// whose credit they now show.
async fn poll(
    pool: PgPool,
    pending: Pending,
    hist: Arc<Mutex<Histogram<u64>>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut since: i64 = sqlx::query_scalar("SELECT COALESCE(max(last_global_position), 0) FROM balances")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    while !*stop.borrow() {
        let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
            "SELECT account_id, lifetime_purchased_micros, last_global_position FROM balances
              WHERE last_global_position > $1",
        )
        .bind(since)
        .fetch_all(&pool)
        .await
        .unwrap_or_default();
        let now = Instant::now();
        if let (Ok(mut p), Ok(mut h)) = (pending.lock(), hist.lock()) {
            for (account, purchased, position) in rows {
                since = since.max(position);
                if let Some(queue) = p.get_mut(&account) {
                    while queue.front().is_some_and(|(target, _)| *target <= purchased) {
                        if let Some((_, t0)) = queue.pop_front() {
                            let us = u64::try_from(now.duration_since(t0).as_micros()).unwrap_or(u64::MAX);
                            let _ = h.record(us.max(1));
                        }
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = stop.changed() => {}
        }
    }
}
