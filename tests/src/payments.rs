//! Stripe-shaped webhook payloads (the real envelope and object shapes), signed with
//! `signature::header`, and an application started with a webhook secret: shared by the
//! payments tests and `ringledger-bench payments`.

use std::time::Duration;

use ringledger_api::config::{Config, Secret};
use ringledger_api::startup::Application;
use ringledger_api::stripe::signature;
use ringledger_domain::AccountId;
use serde_json::{json, Value};

pub const SECRET: &str = "whsec_test_payments_0123456789abcdef";
pub const PREVIOUS_SECRET: &str = "whsec_test_payments_previous_fedcba98";

/// The envelope around `object`.
pub fn event(event_id: &str, event_type: &str, object: Value) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": chrono::Utc::now().timestamp(),
        "livemode": false,
        "api_version": "2024-06-20",
        "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": object}
    })
    .to_string()
}

/// A checkout.session with the metadata contract of issue 8 in both places Stripe carries it.
pub fn session(
    session_id: &str,
    pi: &str,
    account: AccountId,
    cents: i64,
    bonus_bps: u32,
    status: &str,
) -> Value {
    let metadata = json!({
        "account_id": account.to_string(),
        "tier": "t10",
        "terms_version": "1",
        "bonus_bps": bonus_bps.to_string(),
    });
    json!({
        "id": session_id,
        "object": "checkout.session",
        "mode": "payment",
        "payment_intent": pi,
        "payment_status": status,
        "status": "complete",
        "amount_total": cents,
        "currency": "usd",
        "client_reference_id": account.to_string(),
        "customer_details": {"email": "payer@example.com", "name": "A Payer"},
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    })
}

pub fn charge(charge_id: &str, pi: &str, cents: i64, refunded_cents: i64) -> Value {
    json!({
        "id": charge_id,
        "object": "charge",
        "payment_intent": pi,
        "amount": cents,
        "amount_refunded": refunded_cents,
        "refunded": refunded_cents >= cents,
        "currency": "usd",
    })
}

pub fn dispute(dispute_id: &str, charge_id: &str, pi: &str, cents: i64, status: &str) -> Value {
    json!({
        "id": dispute_id,
        "object": "dispute",
        "charge": charge_id,
        "payment_intent": pi,
        "amount": cents,
        "currency": "usd",
        "status": status,
        "reason": "fraudulent",
    })
}

/// A `Stripe-Signature` header for `body`, signed now.
pub fn sign(body: &str) -> String {
    signature::header(&[SECRET], chrono::Utc::now().timestamp(), body.as_bytes())
}

/// The application on port 0 against `database_url`, with the test webhook secrets.
pub struct PaymentsApp {
    pub base: String,
    pub client: reqwest::Client,
    pub app_state: ringledger_api::http::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl PaymentsApp {
    pub async fn start(database_url: &str, max_connections: u32) -> anyhow::Result<PaymentsApp> {
        let payments = ringledger_api::payments::PaymentsConfig {
            worker_concurrency: 16,
            ..Default::default()
        };
        let config = Config {
            http_addr: "127.0.0.1:0".parse()?,
            database_url: Some(Secret::new(database_url.to_owned())),
            database_max_connections: max_connections,
            stripe_webhook_secret: Some(Secret::new(SECRET)),
            stripe_webhook_secret_previous: Some(Secret::new(PREVIOUS_SECRET)),
            payments,
            ..Config::default()
        };
        let app = Application::build(config).await?;
        let base = format!("http://{}", app.local_addr());
        let app_state = app.state().clone();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stop_rx.await;
        }));
        Ok(PaymentsApp {
            base,
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .timeout(Duration::from_secs(30))
                .build()?,
            app_state,
            stop: Some(stop),
            server: Some(server),
        })
    }

    /// Posts `body` with `signature` (None: no header). Returns the status and the JSON answer.
    pub async fn post(&self, body: &str, signature: Option<&str>) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .client
            .post(format!("{}/webhooks/stripe", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(sig) = signature {
            req = req.header("Stripe-Signature", sig);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let json = res.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, json))
    }

    /// Posts `body` signed now with the current secret.
    pub async fn deliver(&self, body: &str) -> anyhow::Result<(u16, Value)> {
        self.post(body, Some(&sign(body))).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }
}

/// Waits until every listed inbox event is processed (or ignored); fails after `deadline`.
pub async fn processed(pool: &sqlx::PgPool, event_ids: &[String], deadline: Duration) -> anyhow::Result<()> {
    let ids = event_ids.to_vec();
    crate::eventually(deadline, || {
        let (pool, ids) = (pool.clone(), ids.clone());
        async move {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM unnest($1::text[]) AS e(id)
                  LEFT JOIN stripe_inbox i ON i.event_id = e.id
                  WHERE i.status IS DISTINCT FROM 'processed' AND i.status IS DISTINCT FROM 'ignored'",
            )
            .bind(&ids)
            .fetch_one(&pool)
            .await
            .ok()?;
            (waiting == 0).then_some(())
        }
    })
    .await
}
