//! `ringledger stripe-sim`: a development double of the part of Stripe we use. It speaks
//! Stripe's HTTP API for Checkout Sessions (create, retrieve) and Refunds, serves a hosted
//! checkout page with test cards, and delivers signed webhooks (`Stripe-Signature` from
//! [`super::signature::header`]) with Stripe's event envelope and object shapes, retrying
//! with exponential backoff and no ordering guarantee. Admin endpoints under `/sim/` trigger
//! refunds, disputes, expiry and duplicate deliveries. State is in memory: it is a double for
//! development and tests, never for production (the binary refuses to start it there). It never
//! logs a key, a secret, a signature or a card number. docs/stripe.md maps it to real Stripe.

mod admin;
mod api;
mod hosted;
mod objects;
mod state;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use state::{DeliveryAttempt, EventSummary};
pub use webhooks::RetryPolicy;

use crate::config::Secret;

/// What the double needs: the keys it shares with the api, where webhooks go, how to retry.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The API key clients must present (`Authorization: Bearer …`).
    pub secret_key: Secret,
    /// The endpoint secret webhooks are signed with (`whsec_…`).
    pub webhook_secret: Secret,
    /// Where events are POSTed; none: events are recorded but not sent.
    pub webhook_url: Option<String>,
    /// The double's own address as browsers reach it (hosted page links); default the bound
    /// address on loopback.
    pub public_url: Option<String>,
    pub retry: RetryPolicy,
    /// How long a "pay later" (bank transfer) payment takes to settle.
    pub async_settle_ms: u64,
}

impl SimConfig {
    pub fn new(secret_key: Secret, webhook_secret: Secret) -> SimConfig {
        SimConfig {
            secret_key,
            webhook_secret,
            webhook_url: None,
            public_url: None,
            retry: RetryPolicy::default(),
            async_settle_ms: 5_000,
        }
    }
}

/// A running double.
pub struct StripeSim {
    addr: SocketAddr,
    state: Arc<state::SimState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

impl StripeSim {
    /// Binds `listen` (port 0 picks one) and serves until [`StripeSim::stop`].
    pub async fn start(listen: SocketAddr, config: SimConfig) -> anyhow::Result<StripeSim> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("stripe-sim: binding {listen}"))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", addr.port()));
        let state = Arc::new(state::SimState::new(config, public_url)?);
        let app = router(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "stripe-sim stopped");
            }
        });
        Ok(StripeSim {
            addr,
            state,
            stop: Some(stop),
            server,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients use (`stripe_api_base`), which also serves the hosted pages.
    pub fn base_url(&self) -> &str {
        self.state.public_url()
    }

    /// Points webhooks at `url` (a test starts the double before the app it calls).
    pub fn set_webhook_url(&self, url: &str) {
        self.state.set_webhook_url(url);
    }

    /// Every event so far with its delivery attempts.
    pub fn events(&self) -> Vec<EventSummary> {
        self.state.events()
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.server).await;
    }
}

fn router(state: Arc<state::SimState>) -> Router {
    Router::new()
        .merge(api::router())
        .merge(hosted::router())
        .merge(admin::router())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(state)
}
