//! `ringledger-loadgen`'s engine (docs/loadgen.md): many simulated media nodes, each with
//! many concurrent calls, against a real api and Postgres over the metering protocol, with the
//! faults a real network and real people bring (duplicate and reordered reports, gaps, a node
//! dying mid-call, accounts running dry, BYEs after the grant), then checks of the ledger.
//! Used by the `ringledger-loadgen` binary, its integration test, the SIGKILL test and
//! `ringledger-bench credit`. It never touches a balance except through the api's own
//! services (opening and crediting accounts, as sign-up credit does).

pub mod call;
pub mod check;
mod control;
pub mod node;
pub mod stats;
pub mod target;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringledger_api::calls::CallsConfig;
use ringledger_domain::call::{GrantPolicy, Limits};
use ringledger_domain::AccountId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use call::{CallPlan, CallRecord, End};
pub use check::{CheckReport, Verify};
pub use node::Node;
pub use stats::Stats;
pub use target::{InProcess, Secrets, Target};

/// Credit of an account that is meant to last: $1,000.
pub const FULL_CREDIT_MICROS: i64 = 1_000_000_000;

/// The load's shape (the binary's and the benchmark's options).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Media nodes to simulate, each with its own control URL.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Concurrent calls per node.
    #[arg(long, default_value_t = 25)]
    pub calls_per_node: usize,
    /// Mean talk time of a call in seconds (each call draws 10 %-190 % of it).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Interim period in seconds (an in-process api is configured with it).
    #[arg(long, default_value_t = 6)]
    pub tick: u64,
    /// Accounts the calls are spread over, evenly.
    #[arg(long, default_value_t = 20)]
    pub accounts: usize,
    /// Share of accounts holding only a few seconds of credit, so they run dry mid-call.
    #[arg(long, default_value_t = 0.2)]
    pub dry_share: f64,
    /// Nodes that die mid-run: they stop reporting and their control URL goes away.
    #[arg(long, default_value_t = 1)]
    pub dead_nodes: usize,
    /// Seed of every random choice.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds during which calls are started; then live calls hang up and the checks run.
    #[arg(long, default_value_t = 60)]
    pub run_seconds: u64,
    /// Calls started per second at most, all nodes together.
    #[arg(long, default_value_t = 200)]
    pub start_rate: u64,
    /// Plain calls only: no repeats, reorders, gaps, late BYEs, dead nodes or dry accounts.
    #[arg(long)]
    pub calm: bool,
    /// In-process api: grant validity in seconds (the sweeper ends calls silent for twice
    /// this; with --api, give the running api's value so the wait for the sweeper fits).
    #[arg(long, default_value_t = 30)]
    pub validity_seconds: u32,
    /// In-process api: talk time each grant adds.
    #[arg(long, default_value_t = 60)]
    pub grant_seconds: u32,
    /// In-process api: re-grant when the money left would not pay this much more talk.
    #[arg(long, default_value_t = 12)]
    pub regrant_lead_seconds: u32,
    /// In-process api: longest ringing before the node cancels (the sweeper adds it for
    /// unanswered calls).
    #[arg(long, default_value_t = 60)]
    pub max_ring_seconds: u32,
    /// In-process api: its database pool (`database_max_connections`).
    #[arg(long, default_value_t = 64)]
    pub pool_size: u32,
    /// Skip `ringledger-replay verify` at the end.
    #[arg(long)]
    pub no_verify: bool,
    /// The `ringledger-replay` binary (default: beside this one if built, else its library
    /// entry point).
    #[arg(long)]
    pub replay_bin: Option<std::path::PathBuf>,
}

impl Options {
    pub fn tick(&self) -> Duration {
        Duration::from_secs(self.tick.max(1))
    }

    /// The calls configuration an in-process api gets: the options' policy, and limits wide
    /// enough for the calls spread over the accounts.
    pub fn calls_config(&self) -> CallsConfig {
        let per_account = (self.nodes * self.calls_per_node).div_ceil(self.accounts.max(1));
        CallsConfig {
            limits: Limits {
                max_concurrent_calls: u32::try_from(per_account + 2).unwrap_or(1_000).min(1_000),
                daily_spend_cap_micros: FULL_CREDIT_MICROS * 10,
                max_ring_seconds: self.max_ring_seconds,
                ..Limits::default()
            },
            policy: GrantPolicy {
                interim_seconds: u32::try_from(self.tick.max(1)).unwrap_or(6),
                grant_seconds: self.grant_seconds,
                validity_seconds: self.validity_seconds,
                regrant_lead_seconds: self.regrant_lead_seconds,
            },
            ..CallsConfig::default()
        }
    }

    pub fn verify(&self) -> Verify {
        match (&self.replay_bin, self.no_verify) {
            (_, true) => Verify::Skip,
            (Some(path), false) => Verify::Binary(path.clone()),
            (None, false) => Verify::find(),
        }
    }
}

/// A load in progress: nodes, accounts and the call slots playing on them.
pub struct Run {
    pub target: Arc<Target>,
    pub nodes: Vec<Arc<Node>>,
    pub accounts: Vec<AccountId>,
    pub funded: BTreeMap<AccountId, i64>,
    pub stats: Arc<Stats>,
    options: Options,
    next_start: Arc<Mutex<Instant>>,
    /// Slots with an index below this play calls; the others wait.
    active: watch::Sender<usize>,
    stop_starting: watch::Sender<bool>,
    drain: watch::Sender<bool>,
    slots: Vec<JoinHandle<Vec<CallRecord>>>,
}

impl Run {
    /// Opens and credits the accounts and starts the nodes.
    pub async fn prepare(target: Arc<Target>, options: Options) -> anyhow::Result<Run> {
        let stats = Arc::new(Stats::default());
        let mut rng = StdRng::seed_from_u64(options.seed);
        let dry = if options.calm {
            0
        } else {
            (options.accounts as f64 * options.dry_share.clamp(0.0, 1.0)).round() as usize
        };
        let credits: Vec<i64> = (0..options.accounts)
            .map(|i| {
                // A dry account holds between a few seconds and a minute or so of talk.
                if i < dry {
                    rng.gen_range(3_000..40_000)
                } else {
                    FULL_CREDIT_MICROS
                }
            })
            .collect();
        let accounts = open_accounts(&target, &credits).await?;
        let funded = accounts.iter().copied().zip(credits).collect();
        let mut nodes = Vec::with_capacity(options.nodes);
        for i in 0..options.nodes {
            let node = Node::start(
                &format!("lg-node-{i}"),
                &target.base,
                target.secrets.media.clone(),
                stats.clone(),
            )
            .await?;
            nodes.push(node);
        }
        Ok(Run {
            target,
            nodes,
            accounts,
            funded,
            stats,
            options,
            next_start: Arc::new(Mutex::new(Instant::now())),
            active: watch::channel(0).0,
            stop_starting: watch::channel(false).0,
            drain: watch::channel(false).0,
            slots: vec![],
        })
    }

    /// Lets the first `count` slots play calls (spawning the slots not yet running).
    pub fn set_active(&mut self, count: usize) {
        while self.slots.len() < count {
            let index = self.slots.len();
            let slot = self.slot(index);
            self.slots.push(tokio::spawn(slot));
        }
        let _ = self.active.send(count);
    }

    /// Kills `node` (it stops reporting, heartbeating and answering its control URL).
    pub fn kill_node(&self, index: usize) {
        if let Some(node) = self.nodes.get(index) {
            tracing::info!(node = %node.id.as_str(), "killing a node");
            node.kill();
        }
    }

    fn slot(&self, index: usize) -> impl std::future::Future<Output = Vec<CallRecord>> + Send + 'static {
        let node = self.nodes[index % self.nodes.len()].clone();
        let account = self.accounts[index % self.accounts.len()];
        let cx = call::CallContext {
            node,
            target: self.target.clone(),
            tick: self.options.tick(),
            drain: self.drain.subscribe(),
        };
        let mut stop = self.stop_starting.subscribe();
        let mut active = self.active.subscribe();
        let next_start = self.next_start.clone();
        let gap = Duration::from_secs_f64(1.0 / self.options.start_rate.max(1) as f64);
        let mean_talk = Duration::from_secs(self.options.duration.max(1));
        let chaos = !self.options.calm;
        let seed = self.options.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut records = Vec::new();
            loop {
                if *stop.borrow() || cx.node.is_dead() {
                    break;
                }
                if *active.borrow() <= index {
                    tokio::select! {
                        _ = active.changed() => continue,
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
                let at = {
                    let Ok(mut next) = next_start.lock() else { break };
                    let at = (*next).max(Instant::now());
                    *next = at + gap;
                    at
                };
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                let plan = call::random_plan(&mut rng, cx.tick, mean_talk, chaos);
                let record = call::play(&cx, account, plan).await;
                let refused = !record.started;
                records.push(record);
                if refused {
                    tokio::select! {
                        _ = tokio::time::sleep(cx.tick) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            }
            records
        }
    }

    /// Stops starting calls, hangs up the live ones and returns every call's record.
    pub async fn finish(self) -> anyhow::Result<(Vec<CallRecord>, RunParts)> {
        let _ = self.drain.send(true);
        self.end().await
    }

    /// Stops starting calls and kills every node, leaving the live calls to the sweeper (a
    /// benchmark's quick exit: nothing is checked afterwards).
    pub async fn abandon(self) -> anyhow::Result<(Vec<CallRecord>, RunParts)> {
        for node in &self.nodes {
            node.kill();
        }
        self.end().await
    }

    async fn end(mut self) -> anyhow::Result<(Vec<CallRecord>, RunParts)> {
        let _ = self.stop_starting.send(true);
        let mut records = Vec::new();
        for slot in self.slots.drain(..) {
            records.extend(slot.await?);
        }
        for node in &self.nodes {
            node.kill();
        }
        Ok((
            records,
            RunParts {
                target: self.target,
                funded: self.funded,
                stats: self.stats,
                options: self.options,
            },
        ))
    }
}

/// What is left of a run once its calls are over.
pub struct RunParts {
    pub target: Arc<Target>,
    pub funded: BTreeMap<AccountId, i64>,
    pub stats: Arc<Stats>,
    pub options: Options,
}

async fn open_accounts(target: &Target, credits: &[i64]) -> anyhow::Result<Vec<AccountId>> {
    let chunks: Vec<Vec<i64>> = credits
        .chunks(credits.len().div_ceil(16).max(1))
        .map(<[i64]>::to_vec)
        .collect();
    let opened = futures::future::join_all(chunks.into_iter().map(|chunk| async move {
        let mut ids = Vec::with_capacity(chunk.len());
        for micros in chunk {
            ids.push(target.open_account(micros).await?);
        }
        anyhow::Ok(ids)
    }))
    .await;
    let mut all = Vec::with_capacity(credits.len());
    for ids in opened {
        all.extend(ids?);
    }
    Ok(all)
}

/// Waits until every call that has a Call stream is over (the sweeper ends the calls of dead
/// nodes) and the accounts' open reservations are gone (the sweeper releases the ones no call
/// recorded), for at most `deadline`; returns how many calls are still live.
pub async fn wait_until_over(
    pool: &sqlx::PgPool,
    records: &[CallRecord],
    accounts: &[AccountId],
    deadline: Duration,
) -> anyhow::Result<i64> {
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.call_id.map(|c| c.to_string()))
        .collect();
    let accounts: Vec<uuid::Uuid> = accounts.iter().map(|a| a.0).collect();
    let started = Instant::now();
    loop {
        let (live, held): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(DISTINCT aggregate_id) - count(DISTINCT aggregate_id) FILTER (WHERE event_type IN ('CallEnded', 'CallFailed'))
                       FROM events WHERE aggregate_type = 'Call' AND aggregate_id = ANY($1)),
                    (SELECT count(*) FROM open_reservations WHERE account_id = ANY($2))",
        )
        .bind(&ids)
        .bind(&accounts)
        .fetch_one(pool)
        .await?;
        if (live == 0 && held == 0) || started.elapsed() > deadline {
            return Ok(live);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The whole load generator: prepare, play for `run_seconds` (killing the dead nodes part-way),
/// finish, wait for the sweeper, check. Returns the records, the stats and the checks.
pub async fn run(target: Arc<Target>, options: Options) -> anyhow::Result<Outcome> {
    let mut run = Run::prepare(target, options.clone()).await?;
    let started = Instant::now();
    run.set_active(options.nodes * options.calls_per_node);
    let dead = if options.calm {
        0
    } else {
        options.dead_nodes.min(options.nodes.saturating_sub(1))
    };
    let mut rng = StdRng::seed_from_u64(options.seed.wrapping_add(7));
    let run_for = Duration::from_secs(options.run_seconds);
    let mut deaths: Vec<(Duration, usize)> = (0..dead)
        .map(|i| (run_for.mul_f64(rng.gen_range(0.3..0.7)), i))
        .collect();
    deaths.sort();
    for (at, node) in deaths {
        tokio::time::sleep_until((started + at).into()).await;
        run.kill_node(node);
    }
    tokio::time::sleep_until((started + run_for).into()).await;
    let (records, parts) = run.finish().await?;
    let played = started.elapsed();
    // A dead node's calls: silent for 2 x validity (+ ring while unanswered), found by a sweep
    // that runs every validity.
    let sweep = u64::from(options.validity_seconds) * 3 + u64::from(options.max_ring_seconds) + 60;
    let accounts: Vec<AccountId> = parts.funded.keys().copied().collect();
    let live = wait_until_over(
        &parts.target.pool,
        &records,
        &accounts,
        Duration::from_secs(sweep),
    )
    .await?;
    let report = check::run(
        &parts.target.pool,
        &parts.target.database_url,
        &records,
        &parts.funded,
        &options.verify(),
    )
    .await?;
    Ok(Outcome {
        records,
        stats: parts.stats,
        report,
        played,
        still_live: live,
    })
}

pub struct Outcome {
    pub records: Vec<CallRecord>,
    pub stats: Arc<Stats>,
    pub report: CheckReport,
    pub played: Duration,
    pub still_live: i64,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.report.failures.is_empty() && self.still_live == 0
    }

    /// The human summary, then one JSON line.
    pub fn print(&self) {
        let s = &self.stats;
        let started = self.records.iter().filter(|r| r.started).count();
        let interim = s.interim_latency();
        let start = s.start_latency();
        let ms = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
        println!(
            "played {:.1} s: {} calls started, {} refused at start",
            self.played.as_secs_f64(),
            started,
            self.records.len() - started
        );
        println!("refusals: {:?}", s.denials());
        println!("ends:     {:?}", s.ends());
        println!(
            "interims {} (p50 {:.1} ms, p99 {:.1} ms); starts p50 {:.1} ms, p99 {:.1} ms",
            s.interims.get(),
            ms(&interim, 0.5),
            ms(&interim, 0.99),
            ms(&start, 0.5),
            ms(&start, 0.99)
        );
        println!(
            "re-grants seen {}, final units {}, late BYEs {}, repeats checked {}, older reports refused {}, gaps {}",
            s.regrants_seen.get(),
            s.final_units.get(),
            s.late_byes.get(),
            s.duplicates_checked.get(),
            s.reorders_checked.get(),
            s.gaps.get()
        );
        println!(
            "retries {}, 503s {}, transport errors {}, hangups received {} (refused {})",
            s.retries.get(),
            s.busy.get(),
            s.transport_errors.get(),
            s.hangups_received.get(),
            s.hangups_refused.get()
        );
        let r = &self.report;
        println!(
            "checked {} calls: {} ended ({} swept), {} failed; charged {} micros, overrun {} micros on {} calls; verify: {}",
            r.calls_checked, r.calls_ended, r.swept, r.calls_failed, r.charged_micros, r.overrun_micros, r.calls_with_overrun, r.verify
        );
        if self.still_live > 0 {
            println!(
                "FAIL: {} calls were still live when the wait for the sweeper ended",
                self.still_live
            );
        }
        for f in r.failures.iter().take(50) {
            println!("FAIL: {f}");
        }
        if r.failures.len() > 50 {
            println!("... and {} more failures", r.failures.len() - 50);
        }
        let summary = serde_json::json!({
            "passed": self.passed(),
            "calls_started": started,
            "calls_swept": r.swept,
            "interims": s.interims.get(),
            "interim_p50_ms": ms(&interim, 0.5),
            "interim_p99_ms": ms(&interim, 0.99),
            "charged_micros": r.charged_micros,
            "overrun_micros": r.overrun_micros,
            "failures": r.failures.len(),
        });
        println!("{summary}");
    }
}
