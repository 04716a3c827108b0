//! Leases, driven directly: an expired lease is reclaimed and fences the old worker out, a
//! heartbeat keeps a long job, and concurrent claimers on two pools never share a job.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use super::support::{db_now, eventually, kind, queue, status_of, worker, TestDb};
use crate::jobs::{JobError, JobQueue, JobStatus, JobsError, NewJob, WorkerId};

#[tokio::test]
async fn jobs_expired_lease_is_reclaimed_and_the_old_worker_cannot_finish_it() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let q = queue("lease");
    let (old, new) = (worker(&q), worker(&q));
    let id = jobs
        .enqueue(&NewJob::new(q.clone(), kind("k"), json!({})))
        .await?
        .id;
    let held = jobs.claim(&q, &old, 1, 100).await?.remove(0);
    assert!(
        jobs.claim(&q, &new, 1, 5_000).await?.is_empty(),
        "taken while its lease runs"
    );
    let taken = eventually(
        "the lease expires and another worker reclaims the job",
        Duration::from_secs(10),
        || async {
            let got = jobs.claim(&q, &new, 1, 5_000).await?;
            Ok(got.into_iter().next())
        },
    )
    .await?;
    assert_eq!((taken.id, taken.attempts), (id, 2));
    assert_ne!(taken.lease.token, held.lease.token);
    assert!(matches!(
        jobs.complete(&held).await,
        Err(JobsError::LeaseLost { .. })
    ));
    assert!(matches!(
        jobs.fail(&held, &JobError::Retry("x".into())).await,
        Err(JobsError::LeaseLost { .. })
    ));
    assert!(matches!(
        jobs.extend_lease(&held, 5_000).await,
        Err(JobsError::LeaseLost { .. })
    ));
    assert!(!jobs.release(&held).await?);
    assert_eq!(
        status_of(&db.pool, id.0).await?,
        ("running".to_owned(), 2),
        "the old worker changed nothing"
    );
    jobs.complete(&taken).await?;
    let snap = jobs
        .snapshot(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job gone"))?;
    assert_eq!((snap.status, snap.attempts), (JobStatus::Done, 2));
    assert!(snap.last_error.unwrap_or_default().contains("lease expired"));
    Ok(())
}

#[tokio::test]
async fn jobs_expired_lease_on_the_last_attempt_dead_letters_the_job() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let q = queue("poison");
    let id = jobs
        .enqueue(&NewJob::new(q.clone(), kind("k"), json!({})).with_max_attempts(1))
        .await?
        .id;
    jobs.claim(&q, &worker(&q), 1, 100).await?;
    eventually(
        "the expired job is dead-lettered",
        Duration::from_secs(10),
        || async {
            jobs.claim(&q, &worker(&q), 1, 5_000).await?;
            Ok((status_of(&db.pool, id.0).await?.0 == "dead").then_some(()))
        },
    )
    .await?;
    assert_eq!(jobs.dead_letters(5).await?[0].id, id);
    Ok(())
}

#[tokio::test]
async fn jobs_heartbeat_keeps_a_long_job_from_being_reclaimed() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let jobs = JobQueue::new(db.pool.clone());
    let q = queue("long");
    jobs.enqueue(&NewJob::new(q.clone(), kind("k"), json!({})))
        .await?;
    let held = jobs.claim(&q, &worker(&q), 1, 100).await?.remove(0);
    let until = jobs.extend_lease(&held, 60_000).await?;
    assert!(until > held.lease.until);
    // Well past the first lease: still held.
    let first_expired = held.lease.until + chrono::Duration::milliseconds(200);
    eventually(
        "the first lease would have expired",
        Duration::from_secs(10),
        || async { Ok((db_now(&db.pool).await? > first_expired).then_some(())) },
    )
    .await?;
    assert!(jobs.claim(&q, &worker(&q), 1, 5_000).await?.is_empty());
    jobs.complete(&held).await?;
    Ok(())
}

#[tokio::test]
async fn jobs_concurrent_claimers_never_get_the_same_job() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let q = queue("race");
    let queues = [
        JobQueue::new(db.pool.clone()),
        JobQueue::new(db.second_pool().await?),
    ];
    for n in 0..300 {
        queues[0]
            .enqueue(&NewJob::new(q.clone(), kind("k"), json!({ "n": n })))
            .await?;
    }
    let mut claimers = Vec::new();
    for i in 0..8 {
        let (jobs, q) = (queues[i % 2].clone(), q.clone());
        claimers.push(tokio::spawn(async move {
            let me = WorkerId::generate(&q);
            let mut mine = Vec::new();
            loop {
                let got = jobs.claim(&q, &me, 7, 60_000).await?;
                if got.is_empty() {
                    return Ok::<_, JobsError>(mine);
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for claimer in claimers {
        for id in claimer.await?? {
            assert!(seen.insert(id), "job {id} claimed twice");
        }
    }
    assert_eq!(seen.len(), 300);
    let running: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'running' AND attempts = 1")
            .fetch_one(&db.pool)
            .await?;
    assert_eq!(running, 300);
    let depths = queues[0].depths().await?;
    assert_eq!(depths.len(), 1);
    assert_eq!((depths[0].status, depths[0].jobs), (JobStatus::Running, 300));
    Ok(())
}
