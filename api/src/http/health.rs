//! `/healthz` (the process answers), `/readyz` (database reachable, every migration applied)
//! and `/metrics` (Prometheus text format).

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::ledger::LedgerStats;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let applied: Result<Vec<i64>, sqlx::Error> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&state.pool)
            .await;
    match applied {
        Ok(versions) if state.expected_migrations.iter().all(|v| versions.contains(v)) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "database": "ok", "migrations": versions.len()})),
        ),
        Ok(versions) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not ready", "database": "ok", "migrations": versions.len(),
                        "expected_migrations": state.expected_migrations.len()}),
            ),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not ready", "database": "unreachable"})),
            )
        }
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let stats = state.accounts.ledger().stats();
    let counters: [(&str, &AtomicU64); 6] = [
        ("ringledger_ledger_batches_total", &stats.batches),
        ("ringledger_ledger_commands_total", &stats.commands),
        ("ringledger_ledger_events_appended_total", &stats.events_appended),
        ("ringledger_ledger_conflicts_total", &stats.conflicts),
        ("ringledger_ledger_loads_total", &stats.loads),
        ("ringledger_ledger_rows_loaded_total", &stats.rows_loaded),
    ];
    for (name, value) in counters {
        metrics::counter!(name, "aggregate" => "Account").absolute(LedgerStats::get(value));
    }
    let pool = &state.pool;
    metrics::gauge!("ringledger_db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("ringledger_db_pool_idle_connections").set(pool.num_idle() as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
