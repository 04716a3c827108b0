//! Test scaffolding: a database of its own per test (created from the admin URL in
//! `RINGLEDGER_TEST_DATABASE_URL`, migrated from `migrations/` at run time, dropped with
//! FORCE when the guard is dropped, even after a failed assertion), and polling for a
//! condition with a deadline instead of sleeping. Test code only; never used by the service.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

use chrono::{DateTime, Utc};

use crate::jobs::{Backoff, JobKind, QueueConfig, QueueName, ShutdownReport, WorkerId, WorkerPool};

pub fn admin_url() -> String {
    std::env::var("RINGLEDGER_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |p| p + 3);
    let prefix = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// A fresh, migrated database, dropped when this guard is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: String,
}

impl TestDb {
    pub async fn create() -> anyhow::Result<TestDb> {
        let admin = admin_url();
        let name = format!("rl_jobs_{}", uuid::Uuid::new_v4().simple());
        let admin_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
            .context("connecting to the test Postgres (set RINGLEDGER_TEST_DATABASE_URL)")?;
        admin_pool
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        admin_pool.close().await;
        let url = with_database(&admin, &name);
        // The guard exists from here on, so a failed migration still drops the database.
        let mut db = TestDb {
            name,
            url: url.clone(),
            pool: PgPoolOptions::new().max_connections(1).connect_lazy(&url)?,
            admin,
        };
        db.pool = TestDb::connect(&url, 16).await?;
        let migrations = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations"));
        let migrator = sqlx::migrate::Migrator::new(migrations).await?;
        migrator.run(&db.pool).await.context("running migrations")?;
        Ok(db)
    }

    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await?)
    }

    /// Another pool on the same database: a second process, as far as Postgres can tell.
    pub async fn second_pool(&self) -> anyhow::Result<PgPool> {
        TestDb::connect(&self.url, 16).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Async cleanup from a synchronous drop: a short-lived runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(&admin).await {
                    let _ = pool
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

/// Polls `check` until it returns `Some`, or fails after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if start.elapsed() > deadline {
            anyhow::bail!("{what}: not within {deadline:?}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Shuts `pool` down, failing the test if the shutdown itself hangs.
pub async fn stop(pool: WorkerPool, timeout: Duration) -> anyhow::Result<ShutdownReport> {
    tokio::time::timeout(timeout + Duration::from_secs(20), pool.shutdown(timeout))
        .await
        .map_err(|_| anyhow::anyhow!("worker pool shutdown hung"))
}

pub fn queue(name: &str) -> QueueName {
    QueueName::parse(name).expect("test queue name")
}

pub fn kind(name: &str) -> JobKind {
    JobKind::parse(name).expect("test job kind")
}

/// A pool config for tests: quick polls and short leases.
pub fn fast_config(concurrency: usize) -> QueueConfig {
    QueueConfig {
        concurrency,
        lease_ms: 5_000,
        heartbeat_ms: 1_000,
        poll_ms: 20,
        job_timeout_ms: 30_000,
        listen: true,
        backoff: Backoff {
            base_ms: 10,
            cap_ms: 100,
            jitter_percent: 0,
        },
        depth_every_ms: 1_000,
    }
}

pub async fn db_now(pool: &PgPool) -> anyhow::Result<DateTime<Utc>> {
    Ok(sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await?)
}

/// Makes a queued job due now, as if its backoff had passed.
pub async fn make_due(pool: &PgPool, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE jobs SET run_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub fn worker(q: &QueueName) -> WorkerId {
    WorkerId::generate(q)
}

/// The status and attempts of job `id`, straight from the table.
pub async fn status_of(pool: &PgPool, id: i64) -> anyhow::Result<(String, i32)> {
    Ok(sqlx::query_as("SELECT status, attempts FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?)
}

#[test]
fn replaces_the_database_name() {
    assert_eq!(
        with_database("postgres://u@h:5432/postgres", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
        "postgres://u@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://u@h:5432", "x"), "postgres://u@h:5432/x");
}
