//! Failures, driven directly: each retry waits the backoff's growing delay (within the jitter
//! bounds) and is not claimed before; after the limit, or on a permanent error, the job is on
//! the dead-letter list with its last error, until an operator sends it back.

use serde_json::json;

use super::support::{db_now, kind, make_due, queue, worker, TestDb};
use crate::jobs::{Backoff, FailOutcome, JobError, JobQueue, JobStatus, NewJob};

#[tokio::test]
async fn jobs_retry_with_growing_backoff_then_dead_letter_with_the_last_error() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let backoff = Backoff {
        base_ms: 1_000,
        cap_ms: 60_000,
        jitter_percent: 20,
    };
    let jobs = JobQueue::new(db.pool.clone()).with_backoff(backoff)?;
    let q = queue("retry");
    let w = worker(&q);
    let id = jobs
        .enqueue(&NewJob::new(q.clone(), kind("k"), json!({})).with_max_attempts(4))
        .await?
        .id;
    for attempt in 1..=3 {
        let claimed = jobs.claim(&q, &w, 10, 5_000).await?;
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].attempts, attempt);
        let before = db_now(&db.pool).await?;
        let outcome = jobs
            .fail(&claimed[0], &JobError::Retry(format!("smtp down ({attempt})")))
            .await?;
        let after = db_now(&db.pool).await?;
        let FailOutcome::Retrying { run_at, delay_ms } = outcome else {
            anyhow::bail!("attempt {attempt} of 4 was dead-lettered");
        };
        let expected_ms = 1_000i64 << (attempt - 1);
        let max_ms = expected_ms + expected_ms / 5;
        assert!(
            (expected_ms..=max_ms).contains(&(delay_ms as i64)),
            "attempt {attempt}: delay {delay_ms} ms"
        );
        assert!(
            run_at >= before + chrono::Duration::milliseconds(expected_ms),
            "attempt {attempt}: too early"
        );
        assert!(
            run_at <= after + chrono::Duration::milliseconds(max_ms),
            "attempt {attempt}: too late"
        );
        assert!(
            jobs.claim(&q, &w, 10, 5_000).await?.is_empty(),
            "claimed during its backoff"
        );
        make_due(&db.pool, id.0).await?;
    }
    let last = jobs.claim(&q, &w, 10, 5_000).await?;
    assert_eq!(last[0].attempts, 4);
    assert_eq!(
        jobs.fail(&last[0], &JobError::Retry("smtp down (4)".into()))
            .await?,
        FailOutcome::Dead
    );
    make_due(&db.pool, id.0).await?;
    assert!(
        jobs.claim(&q, &w, 10, 5_000).await?.is_empty(),
        "a dead job is never claimed"
    );
    let dead = jobs.dead_letters(10).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (id, 4));
    assert_eq!(dead[0].last_error.as_deref(), Some("smtp down (4)"));
    assert!(dead[0].finished_at.is_some());

    assert!(jobs.retry_dead(id).await?);
    assert!(!jobs.retry_dead(id).await?, "only a dead job can be retried");
    let again = jobs.claim(&q, &w, 10, 5_000).await?;
    assert_eq!((again[0].id, again[0].attempts), (id, 1), "attempts start over");
    Ok(())
}

#[tokio::test]
async fn jobs_permanent_error_dead_letters_at_once_and_keeps_a_truncated_error() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let q = queue("perm");
    let id = jobs
        .enqueue(&NewJob::new(q.clone(), kind("k"), json!({})))
        .await?
        .id;
    let claimed = jobs.claim(&q, &worker(&q), 1, 5_000).await?;
    let outcome = jobs
        .fail(&claimed[0], &JobError::Permanent("bad ".repeat(5_000)))
        .await?;
    assert_eq!(outcome, FailOutcome::Dead);
    let snap = jobs
        .snapshot(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job gone"))?;
    assert_eq!((snap.status, snap.attempts), (JobStatus::Dead, 1));
    let error = snap.last_error.unwrap_or_default();
    assert!(error.len() <= 2_000 && error.starts_with("bad bad") && error.ends_with("[truncated]"));
    Ok(())
}
