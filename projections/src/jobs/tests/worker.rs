//! The worker pool end to end: two pools never run one job at once and every job runs once,
//! failures retry and dead-letter through the pool, scheduled jobs wait, unknown kinds, panics
//! and timeouts fail cleanly, and shutdown finishes or hands back in-flight work.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::watch;

use super::support::{eventually, fast_config, kind, queue, status_of, stop, TestDb};
use crate::jobs::{JobError, JobQueue, JobStatus, NewJob, Registry, WorkerPool};

/// Waits until job `id` has `status`.
async fn wait_status(db: &TestDb, id: i64, status: &str) -> anyhow::Result<()> {
    eventually(
        &format!("job {id} becomes {status}"),
        Duration::from_secs(20),
        || async { Ok((status_of(&db.pool, id).await?.0 == status).then_some(())) },
    )
    .await
}

#[derive(Default)]
struct Tracker {
    running: Mutex<HashSet<i64>>,
    runs: Mutex<HashMap<i64, u32>>,
    by_worker: Mutex<HashMap<String, usize>>,
    overlaps: AtomicUsize,
}

#[tokio::test]
async fn jobs_two_worker_pools_never_run_the_same_job_at_once_and_each_job_runs_once() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let q = queue("busy");
    let tracker = Arc::new(Tracker::default());
    let registry = {
        let tracker = tracker.clone();
        Registry::new().register_fn(kind("work"), move |job| {
            let t = tracker.clone();
            async move {
                if !t.running.lock().expect("lock").insert(job.id.0) {
                    t.overlaps.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(3)).await; // the job's "work"
                t.running.lock().expect("lock").remove(&job.id.0);
                *t.runs.lock().expect("lock").entry(job.id.0).or_default() += 1;
                *t.by_worker
                    .lock()
                    .expect("lock")
                    .entry(job.lease.worker.to_string())
                    .or_default() += 1;
                Ok(())
            }
        })
    };
    let a = WorkerPool::spawn(
        JobQueue::new(db.pool.clone()),
        q.clone(),
        registry.clone(),
        fast_config(8),
    )?;
    let b = WorkerPool::spawn(
        JobQueue::new(db.second_pool().await?),
        q.clone(),
        registry,
        fast_config(8),
    )?;
    let jobs = JobQueue::new(db.pool.clone());
    for n in 0..200 {
        jobs.enqueue(&NewJob::new(q.clone(), kind("work"), json!({ "n": n })))
            .await?;
    }
    eventually("all 200 jobs are done", Duration::from_secs(60), || async {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status = 'done'")
            .fetch_one(&db.pool)
            .await?;
        Ok((done == 200).then_some(()))
    })
    .await?;
    stop(a, Duration::from_secs(5)).await?;
    stop(b, Duration::from_secs(5)).await?;
    assert_eq!(
        tracker.overlaps.load(Ordering::SeqCst),
        0,
        "a job ran twice at once"
    );
    let runs = tracker.runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), 200);
    assert!(
        runs.values().all(|&n| n == 1),
        "a job ran more than once: {runs:?}"
    );
    let by_worker = tracker.by_worker.lock().expect("lock").clone();
    assert_eq!(by_worker.len(), 2, "both pools took work: {by_worker:?}");
    let retried: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE attempts <> 1")
        .fetch_one(&db.pool)
        .await?;
    assert_eq!(retried, 0);
    Ok(())
}

#[tokio::test]
async fn jobs_pool_retries_failures_and_dead_letters_after_the_limit() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let q = queue("flaky");
    let registry = Registry::new()
        .register_fn(kind("always.fails"), |job| async move {
            Err(JobError::Retry(format!("smtp down on attempt {}", job.attempts)))
        })
        .register_fn(kind("fails.once"), |job| async move {
            if job.attempts < 2 {
                return Err(JobError::Retry("first try fails".into()));
            }
            Ok(())
        });
    let pool = WorkerPool::spawn(
        JobQueue::new(db.pool.clone()),
        q.clone(),
        registry,
        fast_config(2),
    )?;
    let jobs = JobQueue::new(db.pool.clone());
    let doomed = jobs
        .enqueue(&NewJob::new(q.clone(), kind("always.fails"), json!({})).with_max_attempts(3))
        .await?
        .id;
    let healed = jobs
        .enqueue(&NewJob::new(q.clone(), kind("fails.once"), json!({})).with_max_attempts(3))
        .await?
        .id;
    wait_status(&db, doomed.0, "dead").await?;
    wait_status(&db, healed.0, "done").await?;
    stop(pool, Duration::from_secs(5)).await?;
    let dead = jobs.dead_letters(10).await?;
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].id, dead[0].attempts), (doomed, 3));
    assert_eq!(dead[0].last_error.as_deref(), Some("smtp down on attempt 3"));
    assert_eq!(status_of(&db.pool, healed.0).await?, ("done".to_owned(), 2));
    Ok(())
}

#[tokio::test]
async fn jobs_pool_does_not_run_a_scheduled_job_before_its_run_at() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let q = queue("later");
    sqlx::query("CREATE TABLE started (job_id bigint PRIMARY KEY, at timestamptz NOT NULL)")
        .execute(&db.pool)
        .await?;
    let registry = {
        let pool = db.pool.clone();
        Registry::new().register_fn(kind("remind"), move |job| {
            let pool = pool.clone();
            async move {
                sqlx::query("INSERT INTO started VALUES ($1, clock_timestamp()) ON CONFLICT DO NOTHING")
                    .bind(job.id.0)
                    .execute(&pool)
                    .await?;
                Ok(())
            }
        })
    };
    let workers = WorkerPool::spawn(
        JobQueue::new(db.pool.clone()),
        q.clone(),
        registry,
        fast_config(2),
    )?;
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&db.pool)
        .await?;
    let run_at = now + chrono::Duration::milliseconds(1_200);
    let jobs = JobQueue::new(db.pool.clone());
    let id = jobs
        .enqueue(&NewJob::new(q.clone(), kind("remind"), json!({})).with_run_at(run_at))
        .await?
        .id;
    let soon = jobs.enqueue(&NewJob::new(q, kind("remind"), json!({}))).await?.id;
    wait_status(&db, soon.0, "done").await?;
    // One statement: if its clock is still before run_at, its snapshot (taken earlier) is too.
    let (status, early): (String, bool) =
        sqlx::query_as("SELECT status, clock_timestamp() < $2 FROM jobs WHERE id = $1")
            .bind(id.0)
            .bind(run_at)
            .fetch_one(&db.pool)
            .await?;
    assert!(!early || status == "queued", "{status} before its run_at");
    wait_status(&db, id.0, "done").await?;
    stop(workers, Duration::from_secs(5)).await?;
    let started: DateTime<Utc> = sqlx::query_scalar("SELECT at FROM started WHERE job_id = $1")
        .bind(id.0)
        .fetch_one(&db.pool)
        .await?;
    assert!(started >= run_at, "started {started}, due {run_at}");
    Ok(())
}

fn explode() -> Result<(), JobError> {
    panic!("index out of range")
}

#[tokio::test]
async fn jobs_unknown_kinds_panics_and_timeouts_fail_with_a_clear_error() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let q = queue("odd");
    let registry = Registry::new()
        .register_fn(kind("panics"), |_job| async move { explode() })
        .register_fn(kind("hangs"), |_job| std::future::pending());
    let config = crate::jobs::QueueConfig {
        job_timeout_ms: 200,
        ..fast_config(4)
    };
    let workers = WorkerPool::spawn(JobQueue::new(db.pool.clone()), q.clone(), registry, config)?;
    let jobs = JobQueue::new(db.pool.clone());
    let mut expected = Vec::new();
    for (k, error) in [
        (
            "nobody.knows",
            "no handler for job kind `nobody.knows` on queue `odd`",
        ),
        ("panics", "handler panicked: index out of range"),
        ("hangs", "timed out after 200 ms"),
    ] {
        let id = jobs
            .enqueue(&NewJob::new(q.clone(), kind(k), json!({})).with_max_attempts(1))
            .await?
            .id;
        expected.push((id, error));
    }
    for (id, error) in expected {
        wait_status(&db, id.0, "dead").await?;
        let snap = jobs
            .snapshot(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("job gone"))?;
        let last = snap.last_error.unwrap_or_default();
        assert!(last.contains(error), "job {id}: `{last}` lacks `{error}`");
    }
    stop(workers, Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test]
async fn jobs_graceful_shutdown_finishes_or_hands_back_in_flight_jobs() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    let q = queue("deploy");
    let (open_gate, gate) = watch::channel(false);
    let registry = Registry::new()
        .register_fn(kind("gated"), move |_job| {
            let mut gate = gate.clone();
            async move {
                gate.wait_for(|open| *open)
                    .await
                    .map_err(|e| JobError::Retry(e.to_string()))?;
                Ok(())
            }
        })
        .register_fn(kind("stuck"), |_job| std::future::pending());
    let workers = WorkerPool::spawn(
        JobQueue::new(db.pool.clone()),
        q.clone(),
        registry,
        fast_config(2),
    )?;
    let jobs = JobQueue::new(db.pool.clone());
    let gated = jobs
        .enqueue(&NewJob::new(q.clone(), kind("gated"), json!({})))
        .await?
        .id;
    let stuck = jobs
        .enqueue(&NewJob::new(q.clone(), kind("stuck"), json!({})))
        .await?
        .id;
    wait_status(&db, gated.0, "running").await?;
    wait_status(&db, stuck.0, "running").await?;
    let waiting = jobs
        .enqueue(&NewJob::new(q.clone(), kind("gated"), json!({})))
        .await?
        .id;

    workers.begin_shutdown();
    open_gate.send_replace(true); // frees a slot; a pool still claiming would take `waiting`
    let report = stop(workers, Duration::from_millis(500)).await?;
    assert_eq!(
        (report.finished, report.returned, report.lost),
        (1, 1, 0),
        "{report:?}"
    );
    assert_eq!(status_of(&db.pool, gated.0).await?, ("done".to_owned(), 1));
    let back = jobs
        .snapshot(stuck)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job gone"))?;
    assert_eq!(
        (back.status, back.attempts, back.lease_until),
        (JobStatus::Queued, 0, None)
    );
    assert_eq!(
        status_of(&db.pool, waiting.0).await?,
        ("queued".to_owned(), 0),
        "claimed after shutdown began"
    );

    // Another worker picks the handed-back job up at once (no lease to wait out).
    let registry = Registry::new()
        .register_fn(kind("stuck"), |_job| async { Ok(()) })
        .register_fn(kind("gated"), |_job| async { Ok(()) });
    let next = WorkerPool::spawn(JobQueue::new(db.pool.clone()), q, registry, fast_config(2))?;
    wait_status(&db, stuck.0, "done").await?;
    wait_status(&db, waiting.0, "done").await?;
    stop(next, Duration::from_secs(5)).await?;
    assert_eq!(status_of(&db.pool, stuck.0).await?, ("done".to_owned(), 1));
    Ok(())
}
