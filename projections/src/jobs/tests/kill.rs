//! A job worker killed mid-job: the job runs again and its effect happens once. For real: the
//! test re-runs its own test binary as a child process whose worker applies the job's effect
//! (idempotently, keyed by the job id) and then hangs; the parent SIGKILLs it, and a worker in
//! the parent reclaims the job once the dead worker's lease expires and completes it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use super::support::{eventually, fast_config, kind, queue, status_of, stop, TestDb};
use crate::jobs::{JobId, JobQueue, NewJob, QueueConfig, Registry, WorkerPool};

const CHILD_TEST: &str = "jobs::tests::kill::jobs_killed_worker_child_process";
const CHILD_DB_ENV: &str = "RINGLEDGER_JOBS_CHILD_DATABASE_URL";

/// A handler that charges once per job (the effect, idempotent by job id), logs every run, and
/// then either returns or hangs (`hang`: the child, waiting to be killed).
fn charging_registry(pool: PgPool, hang: bool) -> Registry {
    Registry::new().register_fn(kind("charge"), move |job| {
        let pool = pool.clone();
        async move {
            sqlx::query("INSERT INTO effects (job_id) VALUES ($1) ON CONFLICT (job_id) DO NOTHING")
                .bind(job.id.0)
                .execute(&pool)
                .await?;
            sqlx::query("INSERT INTO runs (job_id, pid) VALUES ($1, $2)")
                .bind(job.id.0)
                .bind(std::process::id() as i64)
                .execute(&pool)
                .await?;
            if hang {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    })
}

/// The child process running the hanging worker; killed on drop if the test fails first.
struct ChildWorker {
    child: Child,
    pid: i64,
    log: PathBuf,
}

impl ChildWorker {
    /// Re-runs this test binary as the child test, pointed at `db`; its stderr goes to a file
    /// shown if it exits early.
    fn start(db: &TestDb) -> anyhow::Result<ChildWorker> {
        let log = std::env::temp_dir().join(format!("{}_child.log", db.name));
        let child = Command::new(std::env::current_exe()?)
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB_ENV, &db.url)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let pid = i64::from(child.id());
        Ok(ChildWorker { child, pid, log })
    }

    /// Waits until the child has applied the job's effect and is still holding the job.
    async fn wait_mid_job(&mut self, db: &TestDb, id: JobId) -> anyhow::Result<()> {
        eventually(
            "the child worker is in the middle of the job",
            Duration::from_secs(60),
            || {
                let exited = self.child.try_wait();
                let (log, pid) = (&self.log, self.pid);
                async move {
                    if let Some(status) = exited? {
                        let output = std::fs::read_to_string(log).unwrap_or_default();
                        anyhow::bail!("child worker exited early ({status}):\n{output}");
                    }
                    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE pid = $1")
                        .bind(pid)
                        .fetch_one(&db.pool)
                        .await?;
                    Ok((runs == 1 && status_of(&db.pool, id.0).await?.0 == "running").then_some(()))
                }
            },
        )
        .await
    }

    /// SIGKILL: no shutdown, no hand-back, no last word.
    fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ChildWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[tokio::test]
async fn jobs_worker_killed_mid_job_runs_it_again_and_its_effect_happens_once() -> anyhow::Result<()> {
    let db = TestDb::create().await?;
    sqlx::raw_sql(
        "CREATE TABLE effects (job_id bigint PRIMARY KEY);
         CREATE TABLE runs (id bigserial PRIMARY KEY, job_id bigint NOT NULL, pid bigint NOT NULL);",
    )
    .execute(&db.pool)
    .await?;
    let jobs = JobQueue::new(db.pool.clone());
    let job = NewJob::new(queue("payments"), kind("charge"), json!({"cents": 500}));
    let id = jobs.enqueue(&job).await?.id;

    let mut child = ChildWorker::start(&db)?;
    child.wait_mid_job(&db, id).await?;
    let child_pid = child.pid;
    child.kill()?;

    let registry = charging_registry(db.pool.clone(), false);
    let workers = WorkerPool::spawn(jobs.clone(), queue("payments"), registry, fast_config(2))?;
    eventually(
        "the job is reclaimed and done",
        Duration::from_secs(30),
        || async { Ok((status_of(&db.pool, id.0).await?.0 == "done").then_some(())) },
    )
    .await?;
    stop(workers, Duration::from_secs(5)).await?;

    let effects: i64 = sqlx::query_scalar("SELECT count(*) FROM effects")
        .fetch_one(&db.pool)
        .await?;
    let runs: Vec<i64> = sqlx::query_scalar("SELECT pid FROM runs ORDER BY id")
        .fetch_all(&db.pool)
        .await?;
    assert_eq!(effects, 1, "the effect happened once");
    assert_eq!(
        runs,
        vec![child_pid, i64::from(std::process::id())],
        "the job ran again, here"
    );
    assert_eq!(status_of(&db.pool, id.0).await?, ("done".to_owned(), 2));
    let snap = jobs
        .snapshot(id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("job gone"))?;
    assert!(snap.last_error.unwrap_or_default().contains("lease expired"));
    Ok(())
}

/// The child's side; does nothing unless started by the test above.
#[tokio::test]
#[ignore = "run as a child process by jobs_worker_killed_mid_job_runs_it_again_and_its_effect_happens_once"]
async fn jobs_killed_worker_child_process() -> anyhow::Result<()> {
    let Ok(url) = std::env::var(CHILD_DB_ENV) else {
        return Ok(());
    };
    let pool = TestDb::connect(&url, 4).await?;
    let config = QueueConfig {
        lease_ms: 1_000,
        heartbeat_ms: 300,
        ..fast_config(1)
    };
    let _workers = WorkerPool::spawn(
        JobQueue::new(pool.clone()),
        queue("payments"),
        charging_registry(pool, true),
        config,
    )?;
    // Waits to be killed; the bound only keeps an orphan from living forever.
    tokio::time::sleep(Duration::from_secs(120)).await;
    anyhow::bail!("the parent test never killed this child worker")
}
