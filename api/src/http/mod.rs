//! HTTP: one router per feature, merged here, and the one error type handlers return.

mod health;
pub mod metering;
pub mod rates;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

use crate::calls::CallService;
use crate::ledger::AccountService;
use crate::rates::RateService;
use crate::store::PostgresStore;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub accounts: AccountService<PostgresStore>,
    pub rates: RateService,
    pub metrics: PrometheusHandle,
    pub expected_migrations: Arc<Vec<i64>>,
    pub calls: CallService,
    pub metering: metering::MeteringSecrets,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(rates::router())
        .merge(metering::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
