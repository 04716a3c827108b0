//! Crash safety of the catch-up runner, for real: a process running the balances and
//! statements runners in small batches over ~20,000 events is killed with SIGKILL part-way;
//! a fresh runner then catches up, and nothing is applied twice or skipped.
//!
//! The runner process is this test binary run again, for the one `crash_probe` test, with the
//! database in its environment.

mod projections_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Duration as ChronoDuration, Utc};
use projections_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringledger_api::store::{Append, EventStore, NewEvent, PostgresStore};
use ringledger_domain::account::{Account, AccountCommand, ReleaseReason};
use ringledger_domain::{AccountId, ActorId, CallId, Currency, GrantId, Money, PaymentId, ReservationId};
use ringledger_projections::{Runner, RunnerConfig};
use ringledger_tests::TestDb;
use serde_json::json;

const ACCOUNTS: usize = 8;
const EVENTS_PER_ACCOUNT: usize = 2_500;
const EVENTS_PER_APPEND: usize = 50;
const PROBE_BATCH: i64 = 50;
/// Times the runner process is killed part-way.
const KILLS: i64 = 8;
const PROBE_DB: &str = "RINGLEDGER_CRASH_PROBE_DATABASE_URL";
const PROJECTIONS: [&str; 2] = ["balances", "statements"];

fn micros(m: i64) -> Money {
    Money::from_micros(m, Currency::USD)
}

/// The next command for an account: calls (reserve, then settle or release), with purchases,
/// grants and adjustments in between; always valid on `state`.
fn next_command(
    rng: &mut StdRng,
    state: &Account,
    n: usize,
    open_call: &mut Option<(CallId, ReservationId)>,
) -> AccountCommand {
    if let Some((call, reservation)) = open_call.take() {
        return if rng.gen_bool(0.7) {
            AccountCommand::SettleCall {
                call_id: call,
                cost: micros(rng.gen_range(0..=2_000_000)),
            }
        } else {
            AccountCommand::ReleaseReservation {
                reservation_id: reservation,
                reason: ReleaseReason::CallEnded,
            }
        };
    }
    let available = state.balances().available;
    match rng.gen_range(0..10) {
        _ if available < 2_000_000 => AccountCommand::PurchaseCredit {
            checkout_session_id: None,
            payment_id: PaymentId::parse(&format!("pi_{n}")).unwrap(),
            paid: micros(rng.gen_range(5..50) * 1_000_000),
            bonus: micros(rng.gen_range(0..3) * 500_000),
        },
        0 => AccountCommand::GrantCredit {
            grant_id: GrantId::new_v7(),
            amount: micros(rng.gen_range(1..5_000_000)),
            promotion: "crash".into(),
        },
        1 => AccountCommand::AdjustCredit {
            amount: micros(-rng.gen_range(1..available.min(1_000_000))),
            reason: "test correction".into(),
            actor: ActorId::new_v7(),
            call_id: None,
            correction: None,
        },
        _ => {
            let call = (CallId::new_v7(), ReservationId::new_v7());
            *open_call = Some(call);
            AccountCommand::ReserveCredit {
                reservation_id: call.1,
                call_id: call.0,
                amount: micros(rng.gen_range(1_000_000..=available.min(1_500_000))),
            }
        }
    }
}

/// Appends about `ACCOUNTS * EVENTS_PER_ACCOUNT` valid events through the real store, in
/// appends of `EVENTS_PER_APPEND`, the accounts taking turns (so transactions interleave).
async fn seed(store: &PostgresStore) -> i64 {
    let mut rng = StdRng::seed_from_u64(20_000);
    let start = Utc::now() - ChronoDuration::hours(1);
    let ids: Vec<AccountId> = (0..ACCOUNTS).map(|_| AccountId::new_v7()).collect();
    let mut states = vec![Account::default(); ACCOUNTS];
    let mut calls = vec![None; ACCOUNTS];
    let mut sequences = vec![0u64; ACCOUNTS];
    let mut total = 0i64;
    let mut round = 0usize;
    while sequences.iter().any(|s| (*s as usize) < EVENTS_PER_ACCOUNT) {
        for i in 0..ACCOUNTS {
            let mut pending = Vec::with_capacity(EVENTS_PER_APPEND + 2);
            while pending.len() < EVENTS_PER_APPEND && (sequences[i] as usize) < EVENTS_PER_ACCOUNT {
                let cmd = if sequences[i] == 0 {
                    AccountCommand::OpenAccount {
                        account_id: ids[i],
                        currency: Currency::USD,
                    }
                } else {
                    next_command(
                        &mut rng,
                        &states[i],
                        round * ACCOUNTS * 1_000 + i * 1_000 + pending.len(),
                        &mut calls[i],
                    )
                };
                for event in decide(&mut states[i], &cmd) {
                    sequences[i] += 1;
                    pending.push(NewEvent {
                        sequence: sequences[i],
                        event_type: event.name().into(),
                        event_version: "1".into(),
                        payload: serde_json::to_value(&event).unwrap(),
                        metadata: json!({ "occurred_at": start.to_rfc3339() }),
                    });
                }
            }
            if pending.is_empty() {
                continue;
            }
            let id = ids[i].to_string();
            let at = start + ChronoDuration::milliseconds(round as i64);
            store
                .append(Append {
                    aggregate_type: "Account",
                    aggregate_id: &id,
                    occurred_at: at,
                    events: &pending,
                    keys: &[],
                })
                .await
                .expect("seed append");
            total += pending.len() as i64;
        }
        round += 1;
    }
    total
}

/// The runner process, killed if the test fails before it does.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a kill is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// While the process runs freely, as soon as one of its batch transactions is seen to
    /// have written something.
    WhileWriting,
    /// While both runners are stopped between writing a batch's read-model rows and moving
    /// its checkpoint: the checkpoint table is held in SHARE mode, so their `UPDATE
    /// projection_checkpoints` waits. The most dangerous instant for a crash.
    BeforeCheckpoint,
}

/// The runner process's backends waiting to update their checkpoint.
async fn blocked_on_checkpoint(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
            AND wait_event_type = 'Lock' AND query LIKE '%UPDATE projection_checkpoints%'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Starts the runner process, waits until balances has applied at least `threshold` events,
/// SIGKILLs it as `how` says; returns the events balances had applied, and whether a batch
/// was seen in flight.
async fn run_and_kill(db: &TestDb, threshold: i64, total: i64, how: Kill) -> (i64, bool) {
    let pool = &db.pool;
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().expect("test binary path"))
            .args([
                "crash_probe",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(PROBE_DB, &db.url)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the runner process starts"),
    );
    let started = Instant::now();
    let mut hold = None;
    let outcome = loop {
        let (_, applied) = checkpoint_row(pool, "balances", 1).await;
        if applied >= threshold && how == Kill::WhileWriting {
            let writing: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
                                   AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL)",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            if writing || applied >= threshold + total / 20 {
                child.0.kill().expect("SIGKILL the runner process");
                break (applied, writing);
            }
        }
        if applied >= threshold && how == Kill::BeforeCheckpoint {
            if hold.is_none() {
                // No xid is taken by a table lock: this holds no xmin fence itself.
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("LOCK TABLE projection_checkpoints IN SHARE MODE")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                hold = Some(tx);
            }
            if blocked_on_checkpoint(pool).await == PROJECTIONS.len() as i64 {
                child.0.kill().expect("SIGKILL the runner process");
                break (applied, true);
            }
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("the runner process exited on its own ({status}) after {applied} events");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the runner process made no progress"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    child.0.wait().expect("reap the runner process");
    if let Some(tx) = hold {
        // A backend waiting on a lock does not notice its client is gone; released, it finds
        // the client dead before any COMMIT arrives, and rolls the batch back.
        tx.rollback().await.unwrap();
    }
    wait_until(
        "the killed process's backends exit",
        Duration::from_secs(30),
        || async {
            let others: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            others == 0
        },
    )
    .await;
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_killed_mid_batch_neither_repeats_nor_skips_after_restart() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let total = seed(&PostgresStore::new(pool.clone())).await;
    assert_eq!(total, account_event_count(pool).await);
    assert!(total >= 20_000, "seeded {total} events");

    // Kill the runner process again and again as it works through the log, restarting it in
    // between: each time while a batch is in flight, half of the times at the instant its
    // read-model rows are written and its checkpoint is not.
    let mut kills = Vec::new();
    for k in 1..=KILLS {
        let threshold = total * k / (KILLS + 2);
        let how = if k % 2 == 0 {
            Kill::WhileWriting
        } else {
            Kill::BeforeCheckpoint
        };
        let (applied, mid_batch) = run_and_kill(&db, threshold, total, how).await;
        kills.push((applied, mid_batch));
    }
    for name in PROJECTIONS {
        let (_, applied) = checkpoint_row(pool, name, 1).await;
        assert!(
            applied < total,
            "{name} had applied all {total} events before the last kill: the test proved \
             nothing; seed more events or use smaller batches"
        );
    }
    let mid_batch = kills.iter().filter(|(_, m)| *m).count();
    eprintln!("killed the runner process {KILLS} times, {mid_batch} of them mid-batch, at balances events {kills:?} of {total}");
    assert!(mid_batch > 0, "no kill landed while a batch was being written");

    // A restart: fresh projection instances, default batches.
    for name in PROJECTIONS {
        let restarted = Runner::new(pool.clone(), fresh(name), 1, RunnerConfig::default());
        catch_up_to(pool, &restarted, total, Duration::from_secs(60)).await;
        assert_eq!(restarted.checkpoint().await.unwrap(), account_head(pool).await);
    }
    assert_balances_match_folds(pool, "balances").await;
    assert_statements_match_log(pool, "statement_lines").await;
}

/// Run only by the test above, in a process of its own, which kills it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_runner_killed_mid_batch_neither_repeats_nor_skips_after_restart in a process of its own"]
async fn crash_probe() {
    let Ok(url) = std::env::var(PROBE_DB) else {
        panic!("{PROBE_DB} must be set: this probe is started by another test");
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(6)
        .connect(&url)
        .await
        .expect("probe connects");
    let config = RunnerConfig {
        batch_size: PROBE_BATCH,
        ..RunnerConfig::default()
    };
    let tasks: Vec<_> = PROJECTIONS
        .iter()
        .map(|name| {
            let runner = Runner::new(pool.clone(), fresh(name), 1, config.clone());
            tokio::spawn(async move {
                loop {
                    if let Err(e) = runner.step(None).await {
                        // Let the parent see it at once rather than wait for progress.
                        eprintln!("{} runner failed: {e}", runner.projection().name());
                        std::process::exit(3);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("probe runner");
    }
}
