//! The webhook processor killed mid-event and restarted: the event is processed exactly once.
//! A refund arrives first (recorded, nothing to credit yet); then the purchase's job is claimed
//! by a worker that records the Payment fact and runs the first Account step (the purchase)
//! and dies before the second (the refund that was waiting). Its lease expires; a real worker
//! pool reclaims the job and finishes it. The Account has the purchase once and the refund
//! once, the dead worker cannot record a result, and the receipt is enqueued once.

use std::sync::Arc;
use std::time::Duration;

use ringledger_api::config::Secret;
use ringledger_api::ledger::LedgerConfig;
use ringledger_api::payments::{inbox, jobs, PaymentService, PaymentsConfig, Processed, Received, StepDone};
use ringledger_api::store::PostgresStore;
use ringledger_api::stripe::event::{fact, Envelope, Fact};
use ringledger_domain::account::AccountEvent;
use ringledger_domain::payment::account_steps;
use ringledger_domain::AccountId;
use ringledger_projections::jobs::{JobQueue, JobsError, QueueConfig, QueueName, WorkerId, WorkerPool};
use ringledger_tests::accounts::{fold_stream, open, service};
use ringledger_tests::payments::{charge, event, processed, session, sign, SECRET};
use ringledger_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_after_the_first_account_step_is_replaced_and_the_event_applies_once() {
    let db = TestDb::create().await.unwrap();
    let accounts = service(db.pool.clone());
    let payments = PaymentService::new(
        db.pool.clone(),
        Arc::new(PostgresStore::new(db.pool.clone())),
        LedgerConfig::default(),
        accounts.clone(),
        PaymentsConfig::default(),
        vec![Secret::new(SECRET)],
    );
    let account = AccountId::new_v7();
    open(&accounts, account).await.unwrap();
    sqlx::query("INSERT INTO users (id, email) VALUES ($1, 'crash@example.com')")
        .bind(account.0)
        .execute(&db.pool)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let refund = event(
        "evt_k_refund",
        "charge.refunded",
        charge("ch_k", "pi_k", 4_000, 1_000),
    );
    let paid = event(
        "evt_k_paid",
        "checkout.session.completed",
        session("cs_k", "pi_k", account, 4_000, 0, "paid"),
    );
    for body in [&refund, &paid] {
        let received = payments
            .receive(Some(&sign(body)), body.as_bytes(), now)
            .await
            .unwrap();
        assert!(matches!(received, Received::Recorded { .. }));
    }
    // The refund first: recorded on the Payment stream, nothing for the Account yet.
    assert!(matches!(
        payments.process_event("evt_k_refund").await.unwrap(),
        Processed::Applied { steps: 0, .. }
    ));
    let queue = JobQueue::new(db.pool.clone());
    let stripe = QueueName::parse(inbox::QUEUE).unwrap();
    sqlx::query(
        "UPDATE jobs SET status = 'done', finished_at = now() WHERE idempotency_key = 'evt_k_refund'",
    )
    .execute(&db.pool)
    .await
    .unwrap();

    // Worker A claims the purchase's job and gets half-way.
    let doomed = WorkerId::parse("doomed-worker").unwrap();
    let claimed = queue.claim(&stripe, &doomed, 1, 60_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let job = claimed[0].clone();
    let Fact::Payment { payment_id, command } = fact(&Envelope::parse(paid.as_bytes()).unwrap()).unwrap()
    else {
        panic!("a payment fact")
    };
    let payment = payments
        .record_fact("evt_k_paid", &payment_id, command)
        .await
        .unwrap();
    let steps = account_steps(&payment_id, &payment);
    assert_eq!(steps.len(), 2, "purchase, then the refund that waited for it");
    assert_eq!(
        payments.apply_step(&payment_id, &steps[0]).await.unwrap(),
        StepDone::Appended
    );
    // ...and dies: its lease runs out without a result.
    sqlx::query("UPDATE jobs SET lease_until = now() - interval '1 second' WHERE id = $1")
        .bind(job.id.0)
        .execute(&db.pool)
        .await
        .unwrap();

    // A fresh worker pool reclaims the job and finishes it.
    let registry = jobs::registry(payments.clone()).unwrap();
    let config = QueueConfig {
        concurrency: 2,
        poll_ms: 50,
        ..QueueConfig::default()
    };
    let pool = WorkerPool::spawn(queue.clone(), stripe.clone(), registry, config).unwrap();
    processed(&db.pool, &["evt_k_paid".to_owned()], Duration::from_secs(30))
        .await
        .unwrap();
    let done = ringledger_tests::eventually(Duration::from_secs(30), || {
        let queue = queue.clone();
        async move {
            let s = queue.snapshot(job.id).await.ok()??;
            (s.status.as_str() == "done").then_some(s)
        }
    })
    .await
    .unwrap();
    assert_eq!(done.attempts, 2, "the first claim died; the second finished");
    pool.shutdown(Duration::from_secs(5)).await;
    // The dead worker's late result is not recorded.
    assert!(matches!(
        queue.complete(&job).await,
        Err(JobsError::LeaseLost { .. })
    ));

    let (state, events) = fold_stream(&db.pool, account).await.unwrap();
    let purchased = events
        .iter()
        .filter(|e| matches!(e, AccountEvent::CreditPurchased { .. }))
        .count();
    let refunded = events
        .iter()
        .filter(|e| matches!(e, AccountEvent::PaymentRefunded { .. }))
        .count();
    assert_eq!((purchased, refunded), (1, 1));
    assert_eq!(state.balances().available, 30_000_000);
    let payment_events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Payment' AND aggregate_id = 'pi_k'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        payment_events, 2,
        "PaymentRefunded and PaymentSucceeded, once each"
    );
    let receipts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE queue = 'mail' AND idempotency_key = 'receipt:pi_k'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(receipts, 1);
    // Running the finished event again changes nothing.
    assert_eq!(
        payments.process_event("evt_k_paid").await.unwrap(),
        Processed::AlreadyProcessed
    );
}
