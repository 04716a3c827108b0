//! Recurring jobs: one job per period, however many processes tick at once, keyed by the
//! period's due instant; missed periods collapse into one run; re-declaring a schedule at
//! start-up does not move it.

use serde_json::json;
use sqlx::PgPool;

use super::support::{kind, queue, TestDb};
use crate::jobs::{run_key, JobQueue, RecurringJob, RecurringName};

/// Moves the schedule back so it is due now, as if its period had passed.
async fn make_due(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE recurring_jobs SET next_run_at = now() - interval '10 milliseconds' WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?;
    Ok(())
}

#[tokio::test]
async fn jobs_recurring_job_is_enqueued_once_per_period_even_with_two_tickers() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let tickers = [
        JobQueue::new(db.pool.clone()),
        JobQueue::new(db.second_pool().await?),
    ];
    let schedule = RecurringJob {
        name: RecurringName::parse("sweep-orphans")?,
        queue: queue("sweeper"),
        kind: kind("sweep.calls"),
        payload: json!({"grace_seconds": 30}),
        every_seconds: 3_600,
        max_attempts: 3,
    };
    tickers[0].schedule_recurring(&schedule, None).await?;
    tickers[1].schedule_recurring(&schedule, None).await?; // a second process declaring it too
    for period in 1..=4i64 {
        let mut created = 0;
        for _ in 0..10 {
            let (a, b) = tokio::join!(tickers[0].tick_recurring(), tickers[1].tick_recurring());
            created += a? + b?;
        }
        assert_eq!(created, 1, "period {period}: enqueued {created} times");
        let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&db.pool)
            .await?;
        assert_eq!(jobs, period);
        make_due(&db.pool, "sweep-orphans").await?;
    }
    let rows: Vec<(String, String, serde_json::Value, i32)> =
        sqlx::query_as("SELECT queue, kind, payload, max_attempts FROM jobs")
            .fetch_all(&db.pool)
            .await?;
    assert!(rows.iter().all(|r| *r
        == (
            "sweeper".into(),
            "sweep.calls".into(),
            json!({"grace_seconds": 30}),
            3
        )));
    let keys: Vec<String> = sqlx::query_scalar("SELECT idempotency_key FROM jobs")
        .fetch_all(&db.pool)
        .await?;
    assert!(keys.iter().all(|k| k.starts_with("sweep-orphans@")), "{keys:?}");
    Ok(())
}

#[tokio::test]
async fn jobs_recurring_missed_periods_collapse_and_redeclaring_keeps_the_schedule() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let name = RecurringName::parse("import-rates")?;
    let schedule = RecurringJob {
        name: name.clone(),
        queue: queue("imports"),
        kind: kind("rates.import"),
        payload: json!({}),
        every_seconds: 60,
        max_attempts: 5,
    };
    // Due 10.5 periods ago: nothing ticked for ten minutes.
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT date_trunc('milliseconds', now())")
        .fetch_one(&db.pool)
        .await?;
    let first = now - chrono::Duration::milliseconds(630_000);
    jobs.schedule_recurring(&schedule, Some(first)).await?;
    assert_eq!(jobs.tick_recurring().await?, 1, "missed periods run once");
    assert_eq!(jobs.tick_recurring().await?, 0);
    let key: String = sqlx::query_scalar("SELECT idempotency_key FROM jobs")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(key, run_key(&name, first));
    let next: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT next_run_at FROM recurring_jobs")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(
        next,
        first + chrono::Duration::seconds(11 * 60),
        "the next period boundary after now"
    );
    jobs.schedule_recurring(&schedule, Some(now)).await?; // a restart declares it again
    let again: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT next_run_at FROM recurring_jobs")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(again, next);
    assert!(jobs.unschedule_recurring(&name).await?);
    assert!(!jobs.unschedule_recurring(&name).await?);
    Ok(())
}
