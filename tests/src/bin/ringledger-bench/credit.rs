//! `ringledger-bench credit`: real-time credit control under load, bounded to 5 minutes. The
//! load generator (`ringledger_tests::loadgen`, plain calls) against an in-process api whose
//! pool holds at most 64 connections: 2,000 accounts, calls spread evenly, 6 s ticks. Holds
//! 10,000 concurrent calls for 60 s and reports the p50/p99 latency of interim decisions as
//! the nodes see them; then adds 2,000 calls every 30 s until p99 passes 50 ms (or time runs
//! out) and reports the highest decisions/s sustained within 50 ms and its call count.
//! Baseline, in the same run and database: bare single-row INSERTs at 64 connections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ringledger_tests::loadgen::{InProcess, Options, Run, Target};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::Executor;

/// The whole suite stays within this.
const BUDGET: Duration = Duration::from_secs(300);
const P99_TARGET_MS: f64 = 50.0;

pub struct Settings {
    pub accounts: usize,
    pub hold_calls: usize,
    pub hold_seconds: u64,
    pub step_calls: usize,
    pub step_seconds: u64,
    pub tick_seconds: u64,
    pub nodes: usize,
    pub pool_size: u32,
    pub start_rate: u64,
}

struct Phase {
    calls: i64,
    decisions: u64,
    decisions_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
}

pub async fn run(url: &str, s: Settings) -> anyhow::Result<()> {
    let began = Instant::now();
    let baseline = baseline(url, s.pool_size).await?;
    println!(
        "baseline: {baseline:.0} bare INSERTs/s at {} connections",
        s.pool_size
    );
    let options = Options {
        nodes: s.nodes,
        calls_per_node: s.hold_calls.div_ceil(s.nodes.max(1)),
        // Long calls: most outlive the run, a few end and are replaced.
        duration: 900,
        tick: s.tick_seconds,
        accounts: s.accounts,
        dry_share: 0.0,
        dead_nodes: 0,
        seed: 42,
        run_seconds: 0,
        start_rate: s.start_rate,
        calm: true,
        validity_seconds: 30,
        grant_seconds: 60,
        regrant_lead_seconds: 12,
        max_ring_seconds: 60,
        pool_size: s.pool_size,
        no_verify: true,
        replay_bin: None,
    };
    let mut calls = options.calls_config();
    calls.limits.max_concurrent_calls = 1_000;
    let how = InProcess {
        database_url: url.to_owned(),
        pool_size: s.pool_size,
        calls,
    };
    let target = Arc::new(Target::in_process(how).await?);
    eprintln!(
        "opening {} accounts and {} nodes (not measured)...",
        s.accounts, s.nodes
    );
    let mut run = Run::prepare(target.clone(), options).await?;
    let stats = run.stats.clone();

    eprintln!("starting {} calls at up to {}/s...", s.hold_calls, s.start_rate);
    run.set_active(s.hold_calls);
    let want = (s.hold_calls as f64 * 0.98) as i64;
    let ramp_deadline = Instant::now() + Duration::from_secs(120);
    while stats.live() < want && Instant::now() < ramp_deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // One tick for every call to be on its interim schedule.
    tokio::time::sleep(Duration::from_secs(s.tick_seconds)).await;
    let hold = measure(&stats, Duration::from_secs(s.hold_seconds)).await;
    print_phase("hold", &hold);

    let within = |p: &Phase| p.decisions > 0 && p.p99_ms <= P99_TARGET_MS;
    let mut best: Option<Phase> = within(&hold).then(|| Phase { ..hold });
    let mut active = s.hold_calls;
    loop {
        if began.elapsed() + Duration::from_secs(s.step_seconds) + Duration::from_secs(30) > BUDGET {
            eprintln!("stopping the ramp: the 5-minute budget is nearly spent");
            break;
        }
        active += s.step_calls;
        run.set_active(active);
        // The new calls start and settle for a third of the step; the rest is measured.
        let settle = Duration::from_secs(s.step_seconds / 3);
        tokio::time::sleep(settle).await;
        let _ = stats.take_window();
        let step = measure(&stats, Duration::from_secs(s.step_seconds) - settle).await;
        print_phase(&format!("ramp {active}"), &step);
        if !within(&step) {
            break;
        }
        if best
            .as_ref()
            .is_none_or(|b| step.decisions_per_s > b.decisions_per_s)
        {
            best = Some(step);
        }
    }
    // Event rows the Call ledger read back from the store (snapshots aside) during the run:
    // per decision, what loading calls outside their queues costs.
    let (loads, rows_loaded) = target.calls.as_ref().map_or((0, 0), |c| {
        let st = c.ledger().stats();
        (
            ringledger_api::ledger::LedgerStats::get(&st.loads),
            ringledger_api::ledger::LedgerStats::get(&st.rows_loaded),
        )
    });
    let (records, parts) = run.abandon().await?;
    let anomalies: usize = records.iter().map(|r| r.anomalies.len()).sum();
    if let Some(first) = records.iter().flat_map(|r| r.anomalies.iter()).next() {
        eprintln!("first of {anomalies} anomalies: {first}");
    }
    drop(parts);
    if let Ok(mut target) = Arc::try_unwrap(target) {
        target.shutdown().await?;
    }
    let (decisions, calls_at_best) = best.as_ref().map_or((0.0, 0), |b| (b.decisions_per_s, b.calls));
    let summary = json!({
        "suite": "credit",
        "p50_ms": round(hold.p50_ms),
        "p99_ms": round(hold.p99_ms),
        "hold_calls": hold.calls,
        "hold_decisions_per_s": hold.decisions_per_s.round(),
        "decisions_per_s": decisions.round(),
        "max_concurrent_calls": calls_at_best,
        "baseline_per_s": baseline.round(),
        "ratio": if baseline > 0.0 { round(decisions / baseline) } else { 0.0 },
        "call_loads": loads,
        "call_rows_loaded": rows_loaded,
        "interims": stats.interims.get(),
        "retries": stats.retries.get(),
        "busy": stats.busy.get(),
        "anomalies": anomalies,
        "seconds": began.elapsed().as_secs(),
    });
    println!("{summary}");
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn measure(stats: &ringledger_tests::loadgen::Stats, length: Duration) -> Phase {
    let _ = stats.take_window();
    let started = Instant::now();
    tokio::time::sleep(length).await;
    let window = stats.take_window();
    Phase {
        calls: stats.live(),
        decisions: window.decisions,
        decisions_per_s: window.decisions as f64 / started.elapsed().as_secs_f64(),
        p50_ms: window.p(0.5),
        p99_ms: window.p(0.99),
    }
}

fn print_phase(name: &str, p: &Phase) {
    println!(
        "{name:<12} {:>7} live calls {:>9.0} decisions/s  p50 {:>8.2} ms  p99 {:>8.2} ms",
        p.calls, p.decisions_per_s, p.p50_ms, p.p99_ms
    );
}

/// Bare single-row INSERTs at `connections` for 10 s (the ledger suite's baseline).
async fn baseline(url: &str, connections: u32) -> anyhow::Result<f64> {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .min_connections(connections)
        .connect(url)
        .await?;
    pool.execute(
        "CREATE TABLE IF NOT EXISTS bench_baseline (id bigserial PRIMARY KEY, payload json NOT NULL)",
    )
    .await?;
    let payload = super::ledger::sample_payload();
    let case =
        super::ledger::baseline(&pool, &payload, connections as usize, Duration::from_secs(10)).await?;
    pool.execute("DROP TABLE bench_baseline").await?;
    pool.close().await;
    Ok(case.events_per_s)
}
