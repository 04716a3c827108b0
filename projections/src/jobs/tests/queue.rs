//! Enqueueing, driven directly: idempotency keys, enqueue inside a caller's transaction, input
//! refused at the edge, and scheduled jobs not claimed before their run_at.

use std::time::Duration;

use serde_json::json;

use super::support::{db_now, eventually, kind, queue, worker, TestDb};
use crate::jobs::{JobQueue, JobsError, NewJob, QueueName};

#[tokio::test]
async fn jobs_enqueue_with_a_used_idempotency_key_returns_the_first_job_and_changes_nothing(
) -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let (q, k) = (queue("email"), kind("email.receipt"));
    let first = jobs
        .enqueue(&NewJob::new(q.clone(), k.clone(), json!({"n": 1})).with_idempotency_key("pay-1"))
        .await?;
    let later = db_now(&db.pool).await? + chrono::Duration::hours(1);
    let again = jobs
        .enqueue(
            &NewJob::new(q.clone(), k.clone(), json!({"n": 2}))
                .with_idempotency_key("pay-1")
                .with_run_at(later),
        )
        .await?;
    assert!(first.created && !again.created);
    assert_eq!(first.id, again.id);
    let (count, payload): (i64, serde_json::Value) =
        sqlx::query_as("SELECT count(*) OVER (), payload FROM jobs")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(
        (count, payload),
        (1, json!({"n": 1})),
        "the second enqueue changed nothing"
    );
    let other_kind = jobs
        .enqueue(&NewJob::new(q.clone(), kind("email.welcome"), json!({})).with_idempotency_key("pay-1"))
        .await?;
    assert!(other_kind.created, "keys are per queue and kind");
    let a = jobs
        .enqueue(&NewJob::new(q.clone(), k.clone(), json!({})))
        .await?;
    let b = jobs.enqueue(&NewJob::new(q, k, json!({}))).await?;
    assert!(
        a.created && b.created && a.id != b.id,
        "jobs without a key are all distinct"
    );
    Ok(())
}

#[tokio::test]
async fn jobs_enqueued_in_a_transaction_exist_only_if_it_commits() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let job = NewJob::new(queue("pm"), kind("fraud.check"), json!({"account": "a"}));
    let mut tx = db.pool.begin().await?;
    JobQueue::enqueue_in_tx(&mut tx, &job).await?;
    tx.rollback().await?;
    let mut tx = db.pool.begin().await?;
    let kept = JobQueue::enqueue_in_tx(&mut tx, &job).await?;
    tx.commit().await?;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM jobs")
        .fetch_all(&db.pool)
        .await?;
    assert_eq!(ids, vec![kept.id.0]);
    Ok(())
}

#[tokio::test]
async fn jobs_bad_input_is_refused_with_a_message_saying_what_to_change() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    assert!(QueueName::parse("has space").is_err());
    assert!(QueueName::parse(&"q".repeat(65)).is_err());
    let huge = json!({ "blob": "x".repeat(70_000) });
    let err = jobs
        .enqueue(&NewJob::new(queue("q"), kind("k"), huge))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JobsError::Invalid(ref m) if m.contains("pass its id")),
        "{err}"
    );
    let err = jobs
        .enqueue(&NewJob::new(queue("q"), kind("k"), json!({})).with_max_attempts(0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("max_attempts"), "{err}");
    let err = jobs
        .claim(&queue("q"), &worker(&queue("q")), 1, 10)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("lease_ms"), "{err}");
    Ok(())
}

#[tokio::test]
async fn jobs_scheduled_job_is_not_claimed_before_its_run_at() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let q = queue("scheduled");
    let w = worker(&q);
    let now = db_now(&db.pool).await?;
    let run_at = now + chrono::Duration::milliseconds(700);
    let soon = jobs
        .enqueue(&NewJob::new(q.clone(), kind("k"), json!({})).with_run_at(run_at))
        .await?
        .id;
    let far = now + chrono::Duration::hours(1);
    jobs.enqueue(&NewJob::new(q.clone(), kind("k"), json!({})).with_run_at(far))
        .await?;
    let claimed = eventually(
        "the scheduled job becomes claimable",
        Duration::from_secs(10),
        || async {
            let got = jobs.claim(&q, &w, 10, 5_000).await?;
            Ok((!got.is_empty()).then_some(got))
        },
    )
    .await?;
    assert_eq!(claimed.len(), 1, "the job due in an hour was claimed");
    assert_eq!(claimed[0].id, soon);
    // The claim's own clock: its lease runs 5 s from the instant it claimed.
    let claimed_at = claimed[0].lease.until - chrono::Duration::milliseconds(5_000);
    assert!(claimed_at >= run_at, "claimed at {claimed_at}, due at {run_at}");
    Ok(())
}
