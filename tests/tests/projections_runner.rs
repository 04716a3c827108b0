//! The catch-up runner against real Postgres: the xmin fence (a writing transaction with a
//! lower xid, held open, is never passed; once it commits every event is applied exactly
//! once), fence re-polling and NOTIFY wake-ups of `Runner::run`, and runners of one version in
//! two processes taking turns.
//!
//! The xmin fence is cluster-wide, so the tests here that hold a transaction open run one at a
//! time (`FENCE`) and hold it for well under two seconds: they stall every runner in every
//! database of the cluster while they do.

mod projections_support;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use projections_support::*;
use ringledger_api::ledger::Envelope;
use ringledger_domain::account::{Account, AccountCommand};
use ringledger_domain::{AccountId, Currency, GrantId, PaymentId};
use ringledger_projections::balance::Balances;
use ringledger_projections::statement::Statements;
use ringledger_projections::{event, Projection, Runner, RunnerConfig};
use ringledger_tests::accounts::{open, service, usd};
use ringledger_tests::TestDb;
use sqlx::PgPool;
use tokio::sync::Mutex;

/// Held by every test that keeps a writing transaction open.
static FENCE: Mutex<()> = Mutex::const_new(());

const DEADLINE: Duration = Duration::from_secs(20);

fn grant(units: i64) -> AccountCommand {
    AccountCommand::GrantCredit {
        grant_id: GrantId::new_v7(),
        amount: usd(units),
        promotion: "test".into(),
    }
}

fn purchase(id: &str, units: i64) -> AccountCommand {
    AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: PaymentId::parse(id).unwrap(),
        paid: usd(units),
        bonus: usd(1),
    }
}

fn opening(account: AccountId) -> AccountCommand {
    AccountCommand::OpenAccount {
        account_id: account,
        currency: Currency::USD,
    }
}

async fn xid(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
        .fetch_one(conn)
        .await
        .expect("xid")
}

fn small(batch_size: i64) -> RunnerConfig {
    RunnerConfig {
        batch_size,
        ..RunnerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_transaction_with_a_lower_xid_is_never_passed_and_then_every_event_applies_once() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let svc = service(pool.clone());
    let (first, second, third) = (AccountId::new_v7(), AccountId::new_v7(), AccountId::new_v7());
    open(&svc, first).await.unwrap();
    svc.execute(first, Envelope::new(purchase("pi_first", 10)))
        .await
        .unwrap();

    let balances: Arc<dyn Projection> = Arc::new(Balances::default());
    let statements: Arc<dyn Projection> = Arc::new(Statements::default());
    let runners = [
        Runner::new(pool.clone(), balances, 1, small(3)),
        Runner::new(pool.clone(), statements, 1, small(3)),
    ];
    for r in &runners {
        catch_up_to(pool, r, 2, DEADLINE).await;
    }
    let before = account_head(pool).await;

    // Events of the second and third accounts, decided by the real aggregate.
    let mut second_state = Account::default();
    let second_opened = decide(&mut second_state, &opening(second)).remove(0);
    let second_granted = decide(&mut second_state, &grant(3)).remove(0);
    let mut third_state = Account::default();
    let third_opened = decide(&mut third_state, &opening(third)).remove(0);
    let third_bought = decide(&mut third_state, &purchase("pi_third", 7)).remove(0);

    let guard = FENCE.lock().await;
    // A takes its xid first, B second: A's is the lower one.
    let mut a = pool.begin().await.unwrap();
    let mut b = pool.begin().await.unwrap();
    let (xid_a, xid_b) = (xid(&mut a).await, xid(&mut b).await);
    assert!(xid_a < xid_b, "A has the lower xid");
    // A writes a row before B (lower position) and one after B and C (higher position).
    let a_first = insert_event(&mut a, second, 1, &second_opened, Utc::now()).await;
    insert_event(&mut b, third, 1, &third_opened, Utc::now()).await;
    insert_event(&mut b, third, 2, &third_bought, Utc::now()).await;
    b.commit().await.unwrap();
    svc.execute(first, Envelope::new(grant(1))).await.unwrap(); // C: autocommit, higher xid
    let a_second = insert_event(&mut a, second, 2, &second_granted, Utc::now()).await;
    assert!(a_second > a_first);

    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        committed, 5,
        "B's and C's events are committed and visible; A's are not"
    );
    for r in &runners {
        let step = r.step(None).await.unwrap();
        assert_eq!(
            step.applied,
            0,
            "{}: a step passed the open transaction",
            r.projection().name()
        );
        let applied = r.catch_up(None, |_| {}).await.unwrap();
        assert_eq!(
            applied,
            0,
            "{}: catch_up passed the open transaction",
            r.projection().name()
        );
        let at = r.checkpoint().await.unwrap();
        assert_eq!(at, before, "the checkpoint stays before A's rows");
        assert!(at.tx_id < xid_a);
        assert!(
            event::any_after(pool, at, &["Account"]).await.unwrap(),
            "rows wait behind the fence"
        );
    }
    let third_rows: i64 = sqlx::query_scalar("SELECT count(*) FROM balances WHERE account_id = $1")
        .bind(third.0)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        third_rows, 0,
        "B's committed event (higher xid) is not applied yet"
    );
    let first_seq: i64 = sqlx::query_scalar("SELECT last_sequence FROM balances WHERE account_id = $1")
        .bind(first.0)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(first_seq, 2, "C's committed event is not applied yet");
    a.commit().await.unwrap();
    drop(guard);

    let total = account_event_count(pool).await;
    assert_eq!(total, 7);
    for r in &runners {
        catch_up_to(pool, r, total, DEADLINE).await;
        assert_eq!(r.checkpoint().await.unwrap(), account_head(pool).await);
    }
    assert_balances_match_folds(pool, "balances").await;
    assert_statements_match_log(pool, "statement_lines").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_runner_re_polls_behind_the_fence_and_applies_rows_when_they_commit() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let svc = service(pool.clone());
    let first = AccountId::new_v7();
    open(&svc, first).await.unwrap();

    // Idle polling so slow that only a NOTIFY or the fence re-poll can make progress in time.
    let config = RunnerConfig {
        batch_size: 100,
        fence_poll_ms: 2,
        idle_poll_ms: 600_000,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Runner::new(pool.clone(), fresh("balances"), 1, config).run(stopped));
    wait_until("the runner applies the first event", DEADLINE, || async {
        checkpoint_row(pool, "balances", 1).await.1 == 1
    })
    .await;
    let idle_at = position(pool, "balances", 1).await;

    let (second, third) = (AccountId::new_v7(), AccountId::new_v7());
    let mut second_state = Account::default();
    let second_opened = decide(&mut second_state, &opening(second)).remove(0);
    let mut third_state = Account::default();
    let third_opened = decide(&mut third_state, &opening(third)).remove(0);

    let guard = FENCE.lock().await;
    let mut a = pool.begin().await.unwrap();
    let mut b = pool.begin().await.unwrap();
    assert!(xid(&mut a).await < xid(&mut b).await);
    insert_event(&mut b, third, 1, &third_opened, Utc::now()).await;
    b.commit().await.unwrap();
    insert_event(&mut a, second, 1, &second_opened, Utc::now()).await;
    // Wake the runner as the appender would after B's commit: it finds B's row fenced.
    sqlx::query("SELECT pg_notify('ringledger_events', '')")
        .execute(pool)
        .await
        .unwrap();
    // While A stays open (a fixed 300 ms: an observation window, not a wait for a condition)
    // the runner re-polls every few milliseconds, and never passes it.
    for _ in 0..30 {
        assert_eq!(
            position(pool, "balances", 1).await,
            idle_at,
            "the running runner passed A"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A commits with no NOTIFY: only the fence re-poll can pick both rows up.
    a.commit().await.unwrap();
    drop(guard);
    wait_until(
        "both rows are applied after A commits",
        Duration::from_secs(5),
        || async { checkpoint_row(pool, "balances", 1).await.1 == 3 },
    )
    .await;
    let _ = stop.send(true);
    running.await.unwrap();
    assert_balances_match_folds(pool, "balances").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_event_wakes_the_runner_through_notify() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let svc = service(pool.clone());
    let stop_notify = Arc::new(tokio::sync::Notify::new());
    let notifier = tokio::spawn(ringledger_api::notify::run(
        pool.clone(),
        svc.ledger().appended(),
        stop_notify.clone(),
    ));
    // Idle polling is ten minutes: a wake-up within seconds can only come from the NOTIFY.
    let config = RunnerConfig {
        idle_poll_ms: 600_000,
        ..RunnerConfig::default()
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(Runner::new(pool.clone(), fresh("balances"), 1, config).run(stopped));

    let account = AccountId::new_v7();
    open(&svc, account).await.unwrap();
    wait_until("the opening is applied", DEADLINE, || async {
        checkpoint_row(pool, "balances", 1).await.1 == 1
    })
    .await;
    // The runner has found nothing more and gone idle; the next append must wake it.
    for round in 1..=3 {
        svc.execute(account, Envelope::new(grant(1))).await.unwrap();
        wait_until(
            "the grant shows in `balances`",
            Duration::from_secs(5),
            || async { available(pool, account).await == Some(usd(round).micros()) },
        )
        .await;
    }
    let _ = stop.send(true);
    running.await.unwrap();
    stop_notify.notify_one();
    notifier.await.unwrap();
}

async fn available(pool: &PgPool, account: AccountId) -> Option<i64> {
    sqlx::query_scalar("SELECT available_micros FROM balances WHERE account_id = $1")
        .bind(account.0)
        .fetch_optional(pool)
        .await
        .unwrap()
}

/// Two `ringledger serve` replicas (or `serve` and `ringledger-replay verify`) each run a
/// runner of the live version with a projection instance of their own. They never apply the
/// same batch twice (the checkpoint row lock), but they do take turns: each batch must start
/// from the tables as the other left them, not from rows cached in memory before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_of_one_version_in_two_processes_taking_turns_keep_the_read_model_right() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let svc = service(pool.clone());
    let account = AccountId::new_v7();
    let here = [fresh("balances"), fresh("statements")];
    let there = [fresh("balances"), fresh("statements")];

    open(&svc, account).await.unwrap();
    svc.execute(account, Envelope::new(purchase("pi_turns", 10)))
        .await
        .unwrap();
    for p in &here {
        catch_up_to(pool, &runner(pool, p, 1), 2, DEADLINE).await;
    }
    svc.execute(account, Envelope::new(grant(1))).await.unwrap();
    for p in &there {
        catch_up_to(pool, &runner(pool, p, 1), 3, DEADLINE).await;
    }
    svc.execute(account, Envelope::new(grant(1))).await.unwrap();
    for p in &here {
        catch_up_to(pool, &runner(pool, p, 1), 4, DEADLINE).await;
    }
    assert_balances_match_folds(pool, "balances").await;
    assert_statements_match_log(pool, "statement_lines").await;
}
