//! Shared helpers for RingLedger's cross-process tests and benchmarks: a fresh database per
//! test (created from an admin URL, migrated, dropped afterwards) and polling with deadlines.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

/// Where tests create their databases: `RINGLEDGER_TEST_DATABASE_URL`, else the machine's
/// Postgres on 127.0.0.1:5432.
pub fn admin_url() -> String {
    std::env::var("RINGLEDGER_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Replaces the database name in a Postgres URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if base[..i].contains("://") && i > base.find("://").map_or(0, |p| p + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// A database of its own for one test, migrated; dropped when this value is dropped.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub pool: PgPool,
    admin: String,
}

impl TestDb {
    pub async fn create() -> anyhow::Result<TestDb> {
        Self::create_with(8).await
    }

    pub async fn create_with(max_connections: u32) -> anyhow::Result<TestDb> {
        let admin = admin_url();
        let name = format!("rl_test_{}", uuid::Uuid::new_v4().simple());
        let admin_pool = PgPoolOptions::new()
            .max_connections(1)
            .connect(&admin)
            .await
            .context("connecting to the test Postgres")?;
        admin_pool
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await?;
        admin_pool.close().await;
        let url = with_database(&admin, &name);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&url)
            .await?;
        ringledger_api::startup::MIGRATOR.run(&pool).await?;
        Ok(TestDb {
            name,
            url,
            pool,
            admin,
        })
    }

    /// Another pool on the same database (a second application instance).
    pub async fn second_pool(&self, max_connections: u32) -> anyhow::Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(max_connections)
            .connect(&self.url)
            .await?)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
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
pub async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if start.elapsed() > deadline {
            anyhow::bail!("condition not met within {deadline:?}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

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
}

/// Helpers for metering tests: the app with its secrets, a media node client.
pub mod metering;
pub mod payments;

/// `ringledger-loadgen`'s engine: simulated media nodes, calls, and the end checks.
pub mod loadgen;

/// Helpers for tests that drive the Account ledger.
pub mod accounts {
    use std::sync::Arc;

    use ringledger_api::ledger::{AccountService, Envelope, LedgerConfig};
    use ringledger_api::store::PostgresStore;
    use ringledger_domain::account::{Account, AccountCommand, AccountEvent};
    use ringledger_domain::{AccountId, Currency, Money};
    use sqlx::PgPool;

    pub fn usd(units: i64) -> Money {
        Money::from_micros(units.saturating_mul(1_000_000), Currency::USD)
    }

    /// A command service of its own (its own cache): one application instance.
    pub fn service(pool: PgPool) -> AccountService<PostgresStore> {
        AccountService::new(Arc::new(PostgresStore::new(pool)), LedgerConfig::default())
    }

    /// Opens a USD account.
    pub async fn open(svc: &AccountService<PostgresStore>, account: AccountId) -> anyhow::Result<()> {
        let open = AccountCommand::OpenAccount {
            account_id: account,
            currency: Currency::USD,
        };
        svc.execute(account, Envelope::new(open)).await?;
        Ok(())
    }

    /// Folds the whole stream as stored, independently of any service's cache, checking that
    /// sequences have no gaps.
    pub async fn fold_stream(
        pool: &PgPool,
        account: AccountId,
    ) -> anyhow::Result<(Account, Vec<AccountEvent>)> {
        let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
            "SELECT sequence, payload::jsonb FROM events
              WHERE aggregate_type = 'Account' AND aggregate_id = $1 ORDER BY sequence",
        )
        .bind(account.to_string())
        .fetch_all(pool)
        .await?;
        let mut state = Account::default();
        let mut events = Vec::with_capacity(rows.len());
        for (i, (sequence, payload)) in rows.into_iter().enumerate() {
            anyhow::ensure!(
                sequence == i as i64 + 1,
                "gap in the stream before sequence {sequence}"
            );
            let event: AccountEvent = serde_json::from_value(payload)?;
            state.fold(&event);
            events.push(event);
        }
        Ok((state, events))
    }
}

/// Rate engine helpers: a service of its own and the rate table brought up to date.
pub mod rates {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};
    use ringledger_api::rates::{ImportRequest, ImportStatus, RateService, RatesConfig};
    use ringledger_domain::rates::DeckFormat;
    use ringledger_domain::{ActorId, Currency};
    use ringledger_projections::{versions, Runner, RunnerConfig};
    use sqlx::PgPool;
    use uuid::Uuid;

    pub fn service(pool: PgPool) -> RateService {
        service_with(pool, RatesConfig::default())
    }

    pub fn service_with(pool: PgPool, config: RatesConfig) -> RateService {
        RateService::standalone(pool, config)
    }

    pub fn admin() -> ActorId {
        ActorId(Uuid::from_u128(0xAD_0001))
    }

    pub fn request(file_name: &str, format: Option<DeckFormat>) -> ImportRequest {
        ImportRequest {
            file_name: file_name.to_owned(),
            format,
            currency: Currency::USD,
            effective_from: Utc
                .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
                .single()
                .unwrap_or_else(Utc::now),
            actor: admin(),
        }
    }

    /// Applies the rate table projection up to the end of the log, waiting while the xmin fence
    /// (a transaction open anywhere in the cluster) holds the last events back.
    pub async fn catch_up(pool: &PgPool) -> anyhow::Result<()> {
        let projection = ringledger_projections::by_name("rate_table")?;
        let version = versions::ensure_live(pool, projection.as_ref()).await?;
        let runner = Runner::new(pool.clone(), projection, version, RunnerConfig::default());
        let last: Option<i64> = sqlx::query_scalar(
            "SELECT max(global_position) FROM events WHERE aggregate_type IN ('RateDeck', 'RatePolicy')",
        )
        .fetch_one(pool)
        .await?;
        let Some(last) = last else { return Ok(()) };
        let mut last_error = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match runner.catch_up(None, |_| {}).await {
                Ok(_) if runner.checkpoint().await?.global_position >= last => return Ok(()),
                Ok(_) => {}
                Err(e) => last_error = Some(e.to_string()),
            }
            if std::time::Instant::now() > deadline {
                anyhow::bail!("rate table not caught up within 30 s (last error: {last_error:?})");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Submits `bytes`, runs the import job's body here, and brings the rate table up to date.
    pub async fn import(
        svc: &RateService,
        bytes: &[u8],
        request: &ImportRequest,
    ) -> anyhow::Result<ImportStatus> {
        let submitted = svc.submit_import(bytes.to_vec(), request).await?;
        let status = if submitted.status == "queued" {
            match svc.run_import(submitted.id).await {
                Ok(s) => s,
                Err(_) => svc.import_status(submitted.id).await?,
            }
        } else {
            submitted
        };
        catch_up(svc.pool()).await?;
        Ok(status)
    }

    /// Submits `bytes` and waits for a running app's own `rates` workers to import them (never
    /// run the job's body beside a live app: two runs of one import would race).
    pub async fn import_by_app(
        svc: &RateService,
        bytes: &[u8],
        request: &ImportRequest,
    ) -> anyhow::Result<ImportStatus> {
        let submitted = svc.submit_import(bytes.to_vec(), request).await?;
        crate::eventually(Duration::from_secs(60), || async {
            let s = svc.import_status(submitted.id).await.ok()?;
            s.is_finished().then_some(s)
        })
        .await
    }

    /// Activates and rebuilds the service's rate book from the projection.
    pub async fn activate(
        svc: &RateService,
        status: &ImportStatus,
        skip_bad_rows: bool,
    ) -> anyhow::Result<()> {
        svc.activate(status.deck_id, admin(), skip_bad_rows).await?;
        catch_up(svc.pool()).await?;
        let _ = tokio::time::timeout(Duration::from_secs(10), svc.book().refresh(svc.pool())).await??;
        Ok(())
    }
}
