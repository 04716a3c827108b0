//! The inbox's upkeep: a dead-lettered webhook event is listed for admins and, once its cause
//! is fixed, retried to completion; raw payloads are purged after the retention period while
//! ids, outcomes and the ledger stay, and events not yet processed keep theirs.

use std::sync::Arc;
use std::time::Duration;

use ringledger_api::config::Secret;
use ringledger_api::ledger::LedgerConfig;
use ringledger_api::payments::{inbox, jobs, PaymentService, PaymentsConfig};
use ringledger_api::store::PostgresStore;
use ringledger_domain::AccountId;
use ringledger_projections::jobs::{JobQueue, QueueConfig, QueueName, WorkerPool};
use ringledger_tests::accounts::{fold_stream, open, service};
use ringledger_tests::payments::{event, processed, session, sign, SECRET};
use ringledger_tests::TestDb;

fn payments(db: &TestDb) -> PaymentService {
    PaymentService::new(
        db.pool.clone(),
        Arc::new(PostgresStore::new(db.pool.clone())),
        LedgerConfig::default(),
        service(db.pool.clone()),
        PaymentsConfig::default(),
        vec![Secret::new(SECRET)],
    )
}

fn workers(payments: &PaymentService, db: &TestDb) -> WorkerPool {
    let config = QueueConfig {
        concurrency: 2,
        poll_ms: 50,
        ..QueueConfig::default()
    };
    WorkerPool::spawn(
        JobQueue::new(db.pool.clone()),
        QueueName::parse(inbox::QUEUE).unwrap(),
        jobs::registry(payments.clone()).unwrap(),
        config,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_event_is_listed_and_a_retry_after_the_fix_credits_it_once() {
    let db = TestDb::create().await.unwrap();
    let payments = payments(&db);
    let account = AccountId::new_v7();
    // The account is not opened yet: the Account refuses the purchase, permanently.
    let body = event(
        "evt_dead",
        "checkout.session.completed",
        session("cs_d", "pi_d", account, 1_500, 0, "paid"),
    );
    let now = chrono::Utc::now().timestamp();
    payments
        .receive(Some(&sign(&body)), body.as_bytes(), now)
        .await
        .unwrap();
    let pool = workers(&payments, &db);
    let dead = ringledger_tests::eventually(Duration::from_secs(30), || {
        let db_pool = db.pool.clone();
        async move {
            let dead = inbox::dead_letters(&db_pool, 10).await.ok()?;
            (!dead.is_empty()).then_some(dead)
        }
    })
    .await
    .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event_id, "evt_dead");
    assert!(
        dead[0].last_error.contains("not been opened"),
        "{}",
        dead[0].last_error
    );
    assert!(dead[0].payload_kept);

    open(payments.accounts(), account).await.unwrap();
    assert!(inbox::retry_dead(&db.pool, dead[0].job_id).await.unwrap());
    assert!(
        !inbox::retry_dead(&db.pool, dead[0].job_id).await.unwrap(),
        "only a dead job is retried"
    );
    processed(&db.pool, &["evt_dead".to_owned()], Duration::from_secs(30))
        .await
        .unwrap();
    pool.shutdown(Duration::from_secs(5)).await;
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(state.balances().available, 15_000_000);
    assert!(inbox::dead_letters(&db.pool, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_payloads_are_purged_and_ids_outcomes_and_the_ledger_stay() {
    let db = TestDb::create().await.unwrap();
    let payments = payments(&db);
    let account = AccountId::new_v7();
    open(payments.accounts(), account).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let old = event(
        "evt_old",
        "checkout.session.completed",
        session("cs_o", "pi_o", account, 1_000, 0, "paid"),
    );
    let waiting = event(
        "evt_waiting",
        "checkout.session.completed",
        session("cs_w", "pi_w", account, 1_000, 0, "paid"),
    );
    let recent = event(
        "evt_recent",
        "customer.created",
        serde_json::json!({"id": "cus_1"}),
    );
    for body in [&old, &waiting, &recent] {
        payments
            .receive(Some(&sign(body)), body.as_bytes(), now)
            .await
            .unwrap();
    }
    payments.process_event("evt_old").await.unwrap();
    sqlx::query("UPDATE stripe_inbox SET received_at = now() - interval '31 days' WHERE event_id IN ('evt_old', 'evt_waiting')")
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(inbox::purge(&db.pool, 30, 1_000).await.unwrap(), 1);
    let rows: Vec<(String, String, bool, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT event_id, status, payload IS NULL, payment_intent, outcome FROM stripe_inbox ORDER BY event_id",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(rows[0].0, "evt_old");
    assert_eq!(
        (rows[0].1.as_str(), rows[0].2, rows[0].3.as_deref()),
        ("processed", true, Some("pi_o"))
    );
    assert!(rows[0].4.as_deref().is_some_and(|o| o.contains("pi_o")));
    assert_eq!(
        (rows[1].0.as_str(), rows[1].2),
        ("evt_recent", false),
        "recent rows keep their payload"
    );
    assert_eq!(
        (rows[2].0.as_str(), rows[2].2),
        ("evt_waiting", false),
        "unprocessed rows keep theirs"
    );
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(state.balances().available, 10_000_000);
}
