//! HTTP: one router per feature, merged here, and the one error type handlers return.

mod account;
mod admin;
mod admin_calls;
mod admin_topup;
mod assets;
mod auth;
mod calls;
mod checkout;
mod dev_mailbox;
mod error;
mod fraud;
mod health;
pub mod metering;
pub mod rates;
pub mod web;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

pub use error::Error;

use crate::auth::AuthService;
use crate::calls::CallService;
use crate::checkout::CheckoutService;
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
    /// Development mode: mount `/dev/mailbox` (never in production: it shows tokens).
    pub dev_mailbox: bool,
    /// Accounts and sign-in (sessions, CSRF, rate limits, flows).
    pub auth: AuthService,
    pub calls: CallService,
    pub fraud: crate::fraud::FraudService,
    pub metering: metering::MeteringSecrets,
    /// Top-up offers and Stripe Checkout.
    pub checkout: CheckoutService,
    /// Stripe webhooks: the inbox and the payment process manager.
    pub payments: crate::payments::PaymentService,
}

pub fn router(state: AppState) -> Router {
    let dev = if state.dev_mailbox {
        dev_mailbox::router()
    } else {
        Router::new()
    };
    // Pages with sessions: the context middleware loads the session and user and refuses any
    // unsafe request without the session's CSRF token.
    let pages = Router::new()
        .merge(auth::router())
        .merge(account::router())
        .merge(calls::router())
        .merge(admin::router())
        .merge(admin_topup::router())
        .merge(checkout::router())
        .merge(fraud::router())
        .merge(rates::signed_in_router())
        .layer(axum::middleware::from_fn_with_state(state.clone(), web::context));
    Router::new()
        .merge(health::router())
        .merge(rates::router())
        .merge(metering::router())
        .merge(webhooks::router(&state))
        .merge(assets::router())
        .merge(dev)
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::security_headers,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The request span names the path only: query strings carry tokens (`/confirm?token=…`).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
}
