//! Blue/green rebuilds and verification against real Postgres: a version rebuilt from
//! position 0 while commands keep arriving agrees row for row with the live one; `switch`
//! repoints the views, the old tables stay until dropped; `verify` passes on a healthy read
//! model and reports both sides of a row altered by hand.

mod projections_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use projections_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringledger_api::ledger::{AccountService, CommandError, Envelope};
use ringledger_api::store::PostgresStore;
use ringledger_domain::account::{AccountCommand, AccountError, FreezeReason, ReleaseReason};
use ringledger_domain::{AccountId, CallId, Currency, GrantId, Money, PaymentId, ReservationId};
use ringledger_projections::verify::{self, TableDiff};
use ringledger_projections::{supervisor, versions, Runner, RunnerConfig};
use ringledger_tests::accounts::{open, service, usd};
use ringledger_tests::TestDb;
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(30);

fn no_differences(diffs: &[TableDiff]) -> bool {
    diffs.iter().all(TableDiff::is_empty)
}

/// Runs a random mix of account commands until `stop`, or `limit` commands; returns how many ran.
async fn write_until(
    svc: AccountService<PostgresStore>,
    accounts: Vec<AccountId>,
    seed: u64,
    stop: Arc<AtomicBool>,
    limit: u64,
    done: Arc<AtomicU64>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut open_calls: Vec<Option<(CallId, ReservationId)>> = vec![None; accounts.len()];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && n < limit {
        let i = rng.gen_range(0..accounts.len());
        let cmd = match (open_calls[i].take(), rng.gen_range(0..10)) {
            (Some((call, _)), 0..=5) => AccountCommand::SettleCall {
                call_id: call,
                cost: Money::from_micros(rng.gen_range(100_000..=1_500_000), Currency::USD),
            },
            (Some((_, reservation)), _) => AccountCommand::ReleaseReservation {
                reservation_id: reservation,
                reason: ReleaseReason::CallEnded,
            },
            (None, 0) => AccountCommand::PurchaseCredit {
                checkout_session_id: None,
                payment_id: PaymentId::parse(&format!("pi_{seed}_{n}")).unwrap(),
                paid: usd(rng.gen_range(5..20)),
                bonus: usd(rng.gen_range(0..2)),
            },
            (None, 1) => AccountCommand::GrantCredit {
                grant_id: GrantId::new_v7(),
                amount: usd(1),
                promotion: "rebuild".into(),
            },
            (None, _) => {
                let call = (CallId::new_v7(), ReservationId::new_v7());
                open_calls[i] = Some(call);
                AccountCommand::ReserveCredit {
                    reservation_id: call.1,
                    call_id: call.0,
                    amount: usd(1),
                }
            }
        };
        match svc.execute(accounts[i], Envelope::new(cmd)).await {
            Ok(_) => {}
            Err(CommandError::Rejected(AccountError::InsufficientFunds { .. })) => open_calls[i] = None,
            Err(e) => panic!("writer: {e}"),
        }
        n += 1;
        done.fetch_add(1, Ordering::Relaxed);
    }
}

async fn view_reads(pool: &PgPool, view: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.view_table_usage WHERE view_name = $1 ORDER BY 1",
    )
    .bind(view)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn table_exists(pool: &PgPool, table: &str) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_concurrent_writes_equals_the_live_version_and_switches_atomically() {
    let db = TestDb::create_with(24).await.expect("test database");
    let pool = &db.pool;
    // One set of instances, as in one process; the supervisor runs the live versions.
    let projections = ensure_all_live(pool).await;
    let (stop_runners, runners_stop) = tokio::sync::watch::channel(false);
    let live = tokio::spawn(supervisor::run(
        pool.clone(),
        projections.clone(),
        RunnerConfig::default(),
        runners_stop,
    ));

    let svc = service(pool.clone());
    let stop_notify = Arc::new(tokio::sync::Notify::new());
    let notifier = tokio::spawn(ringledger_api::notify::run(
        pool.clone(),
        svc.ledger().appended(),
        stop_notify.clone(),
    ));
    let accounts: Vec<AccountId> = (0..24).map(|_| AccountId::new_v7()).collect();
    for (i, a) in accounts.iter().enumerate() {
        open(&svc, *a).await.unwrap();
        let buy = AccountCommand::PurchaseCredit {
            checkout_session_id: None,
            payment_id: PaymentId::parse(&format!("pi_seed_{i}")).unwrap(),
            paid: usd(20),
            bonus: usd(0),
        };
        svc.execute(*a, Envelope::new(buy)).await.unwrap();
        if i % 6 == 0 {
            // A freeze and its lifting, so `account_hangups` has triggers to rebuild.
            let note = "rebuild".to_owned();
            let freeze = AccountCommand::Freeze {
                reason: FreezeReason::Admin,
                actor: None,
                note: note.clone(),
            };
            let unfreeze = AccountCommand::Unfreeze {
                reason: FreezeReason::Admin,
                actor: None,
                note,
            };
            svc.execute(*a, Envelope::new(freeze)).await.unwrap();
            svc.execute(*a, Envelope::new(unfreeze)).await.unwrap();
        }
    }

    // Writers: four tasks, until the rebuilds are done or 4 x 3,000 commands have run.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mine: Vec<AccountId> = accounts.iter().skip(w).step_by(4).copied().collect();
            tokio::spawn(write_until(
                svc.clone(),
                mine,
                w as u64,
                stop_writing.clone(),
                3_000,
                written.clone(),
            ))
        })
        .collect();
    wait_until("writers get going", DEADLINE, || async {
        written.load(Ordering::Relaxed) >= 200
    })
    .await;

    let mut built = Vec::new();
    for p in &projections {
        let before = written.load(Ordering::Relaxed);
        let version = versions::create_version(pool, p.as_ref()).await.unwrap();
        assert_eq!(version, 2);
        assert_eq!(versions::registered(pool, p.name()).await.unwrap(), (1, Some(2)));
        let rebuild = Runner::new(pool.clone(), p.clone(), version, RunnerConfig::rebuild());
        rebuild.catch_up(None, |_| {}).await.unwrap();
        let diffs = verify::catch_up_and_compare(pool, p, version, 10, |_| {})
            .await
            .unwrap();
        assert!(
            no_differences(&diffs),
            "{}: rebuilt v2 differs from live v1: {diffs:#?}",
            p.name()
        );
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {}_v2", p.tables()[0]))
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(rows > 0, "{}: compared something", p.name());
        assert!(
            written.load(Ordering::Relaxed) > before,
            "{}: commands kept arriving during the rebuild",
            p.name()
        );

        versions::switch(pool, p.as_ref(), version).await.unwrap();
        assert_eq!(versions::registered(pool, p.name()).await.unwrap(), (2, None));
        for table in p.tables() {
            assert_eq!(
                view_reads(pool, table).await,
                vec![format!("{table}_v2")],
                "view {table}"
            );
            let same: bool = sqlx::query_scalar(&format!(
                "SELECT (SELECT count(*) FROM {table}) = (SELECT count(*) FROM {table}_v2)"
            ))
            .fetch_one(pool)
            .await
            .unwrap();
            assert!(same, "{table} reads version 2");
            assert!(
                table_exists(pool, &format!("{table}_v1")).await,
                "{table}_v1 stays until dropped"
            );
        }
        built.push(p.clone());
    }
    stop_writing.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    // The supervisor moves to version 2 and follows the log to its end.
    let total = account_event_count(pool).await;
    eprintln!(
        "{} commands ran while {} projections were rebuilt, compared and switched; {total} events",
        written.load(Ordering::Relaxed),
        built.len()
    );
    for p in &built {
        wait_until("the live v2 catches up", DEADLINE, || async {
            checkpoint_row(pool, p.name(), 2).await.1 == total
        })
        .await;
    }
    assert_balances_match_folds(pool, "balances").await;
    assert_statements_match_log(pool, "statement_lines").await;
    for p in &built {
        let diffs = verify::verify(pool, p, 10, |_| {}).await.unwrap();
        assert!(no_differences(&diffs), "{}: {diffs:#?}", p.name());
        let refused = versions::drop_version(pool, p.as_ref(), 2).await;
        assert!(refused.is_err(), "the live version cannot be dropped");
        versions::drop_version(pool, p.as_ref(), 1).await.unwrap();
        for table in p.tables() {
            assert!(
                !table_exists(pool, &format!("{table}_v1")).await,
                "{table}_v1 dropped"
            );
            assert!(table_exists(pool, &format!("{table}_v2")).await);
        }
    }
    let _ = stop_runners.send(true);
    live.await.unwrap();
    stop_notify.notify_one();
    notifier.await.unwrap();
}

async fn seed_accounts(pool: &PgPool, n: usize) -> Vec<AccountId> {
    let svc = service(pool.clone());
    let mut ids = Vec::new();
    for i in 0..n {
        let a = AccountId::new_v7();
        open(&svc, a).await.unwrap();
        let buy = AccountCommand::PurchaseCredit {
            checkout_session_id: None,
            payment_id: PaymentId::parse(&format!("pi_{i}")).unwrap(),
            paid: usd(10 + i as i64),
            bonus: usd(1),
        };
        svc.execute(a, Envelope::new(buy)).await.unwrap();
        let call = CallId::new_v7();
        let reserve = AccountCommand::ReserveCredit {
            reservation_id: ReservationId::new_v7(),
            call_id: call,
            amount: usd(3),
        };
        svc.execute(a, Envelope::new(reserve)).await.unwrap();
        let settle = AccountCommand::SettleCall {
            call_id: call,
            cost: usd(2),
        };
        svc.execute(a, Envelope::new(settle)).await.unwrap();
        ids.push(a);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_healthy_read_model_and_reports_both_sides_of_a_row_altered_by_hand() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    let projections = ensure_all_live(pool).await;
    let accounts = seed_accounts(pool, 5).await;
    let total = account_event_count(pool).await;
    for p in &projections {
        catch_up_to(pool, &runner(pool, p, 1), total, DEADLINE).await;
        let diffs = verify::verify(pool, p, 10, |_| {}).await.unwrap();
        assert_eq!(diffs.len(), p.tables().len());
        assert!(no_differences(&diffs), "{}: {diffs:#?}", p.name());
    }
    let balances = fresh("balances");

    let victim = accounts[2];
    let honest: i64 = sqlx::query_scalar("SELECT available_micros FROM balances_v1 WHERE account_id = $1")
        .bind(victim.0)
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE balances_v1 SET available_micros = available_micros + 1 WHERE account_id = $1")
        .bind(victim.0)
        .execute(pool)
        .await
        .unwrap();
    let diffs = verify::verify(pool, &balances, 10, |_| {}).await.unwrap();
    let diff = &diffs[0];
    assert_eq!(diff.table, "balances");
    assert_eq!((diff.only_in_live, diff.only_in_rebuilt), (1, 1), "{diff:#?}");
    let id = victim.to_string();
    assert_eq!(diff.live_rows[0]["account_id"], id.as_str());
    assert_eq!(diff.live_rows[0]["available_micros"], honest + 1);
    assert_eq!(diff.rebuilt_rows[0]["account_id"], id.as_str());
    assert_eq!(diff.rebuilt_rows[0]["available_micros"], honest);

    // A statement line lost by hand shows on the rebuilt side only.
    let statements = fresh("statements");
    let lost: i64 = sqlx::query_scalar(
        "DELETE FROM statement_lines_v1 WHERE global_position = (SELECT max(global_position) FROM statement_lines_v1)
           AND ledger_account = 'available' RETURNING global_position",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let diffs = verify::verify(pool, &statements, 10, |_| {}).await.unwrap();
    assert_eq!(
        (diffs[0].only_in_live, diffs[0].only_in_rebuilt),
        (0, 1),
        "{diffs:#?}"
    );
    assert_eq!(diffs[0].rebuilt_rows[0]["global_position"], lost);

    // Verification leaves no scratch version behind.
    let versions: Vec<(String, i32)> =
        sqlx::query_as("SELECT projection, version FROM projection_checkpoints ORDER BY 1, 2")
            .fetch_all(pool)
            .await
            .unwrap();
    assert!(versions.iter().all(|(_, v)| *v == 1), "{versions:?}");
    assert!(!table_exists(pool, "balances_v2").await);
}

/// `ringledger-replay verify` (or `rebuild`) runs beside `ringledger serve`, each process with
/// its own projection instances. When the rebuilt version is ahead of the live one,
/// `catch_up_and_compare` brings the live version forward itself; the live runner in `serve`
/// must then carry on from the tables, not from the rows it had cached before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_from_another_process_leaves_the_live_runner_correct() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let svc = service(pool.clone());
    let account = AccountId::new_v7();
    open(&svc, account).await.unwrap();
    let buy = AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: PaymentId::parse("pi_serve").unwrap(),
        paid: usd(10),
        bonus: usd(0),
    };
    svc.execute(account, Envelope::new(buy)).await.unwrap();
    let grant = || AccountCommand::GrantCredit {
        grant_id: GrantId::new_v7(),
        amount: usd(1),
        promotion: "verify".into(),
    };

    // `serve`: the live runners, each with its own instance, have applied what there is.
    let serve: Vec<Runner> = ["balances", "statements"]
        .iter()
        .map(|n| runner(pool, &fresh(n), 1))
        .collect();
    for r in &serve {
        catch_up_to(pool, r, 2, DEADLINE).await;
    }
    // An event arrives; before `serve` applies it, the replay tool verifies each projection.
    svc.execute(account, Envelope::new(grant())).await.unwrap();
    for r in &serve {
        let replay = fresh(r.projection().name());
        let scratch = versions::create_unregistered(pool, replay.as_ref())
            .await
            .unwrap();
        catch_up_to(pool, &runner(pool, &replay, scratch), 3, DEADLINE).await;
        let diffs = verify::catch_up_and_compare(pool, &replay, scratch, 10, |_| {})
            .await
            .unwrap();
        assert!(no_differences(&diffs), "{}: {diffs:#?}", replay.name());
        versions::drop_version(pool, replay.as_ref(), scratch)
            .await
            .unwrap();
    }
    // `serve` carries on.
    svc.execute(account, Envelope::new(grant())).await.unwrap();
    for r in &serve {
        catch_up_to(pool, r, 4, DEADLINE).await;
    }
    assert_balances_match_folds(pool, "balances").await;
    assert_statements_match_log(pool, "statement_lines").await;
}
