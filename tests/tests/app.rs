//! The `ringledger` application built on port 0 against its own database: health, readiness
//! (database reachable, migrations applied) and Prometheus metrics, then a graceful stop.

use std::time::Duration;

use ringledger_api::config::{Config, Secret};
use ringledger_api::startup::Application;
use ringledger_domain::AccountId;
use ringledger_tests::accounts::open;
use ringledger_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_readiness_and_metrics_then_stops_gracefully() {
    let db = TestDb::create().await.expect("test database");
    let config = Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(Secret::new(db.url.clone())),
        database_max_connections: 4,
        ..Config::default()
    };
    let app = Application::build(config).await.expect("application builds");
    let base = format!("http://{}", app.local_addr());
    let accounts = app.state().accounts.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));

    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz answers");
    assert_eq!(health.status(), 200);
    let ready = client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "ok");

    let account = AccountId::new_v7();
    open(&accounts, account).await.expect("open");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ringledger_ledger_events_appended_total{aggregate=\"Account\"} 1"),
        "{metrics}"
    );

    // Background work runs on the durable job queue: the hourly prune of finished jobs is
    // scheduled at start-up and its first run is done by serve's own worker pool.
    let prune_ran = ringledger_tests::eventually(Duration::from_secs(20), || async {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE queue = 'maintenance' AND kind = 'prune_done_jobs' AND status = 'done'",
        )
        .fetch_one(&db.pool)
        .await
        .ok()?;
        (done >= 1).then_some(done)
    })
    .await;
    assert!(prune_ran.is_ok(), "the recurring maintenance job ran in serve");

    // Readiness follows the migrations: a missing one makes the service not ready.
    sqlx::query("DELETE FROM _sqlx_migrations")
        .execute(&db.pool)
        .await
        .unwrap();
    let not_ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(not_ready.status(), 503);

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops within 10 s")
        .unwrap()
        .unwrap();
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "nothing listens after the stop"
    );
}
