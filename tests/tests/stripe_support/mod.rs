//! Helpers for the Stripe tests: the test double on port 0 with fast retries, a webhook
//! endpoint that verifies each delivery with `signature::verify` and answers with the statuses
//! it is told to, and paying on the double's hosted page the way a browser form does.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use ringledger_api::config::Secret;
use ringledger_api::stripe::signature;
use ringledger_api::stripe::sim::{RetryPolicy, SimConfig, StripeSim};

pub const SECRET_KEY: &str = "sk_test_ringledger_sim_0123456789";
pub const WEBHOOK_SECRET: &str = "whsec_ringledger_sim_0123456789";

pub async fn start_sim(webhook_url: Option<String>) -> StripeSim {
    let config = SimConfig {
        webhook_url,
        retry: RetryPolicy {
            max_attempts: 5,
            first_retry_ms: 20,
            max_retry_ms: 200,
            attempt_timeout_ms: 2_000,
            ..RetryPolicy::default()
        },
        async_settle_ms: 50,
        ..SimConfig::new(Secret::new(SECRET_KEY), Secret::new(WEBHOOK_SECRET))
    };
    StripeSim::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the double starts")
}

/// One delivery as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub verified: bool,
    pub event: serde_json::Value,
}

/// A webhook endpoint: answers the statuses in `script` in turn (then 200) and keeps every
/// delivery.
#[derive(Clone)]
pub struct Endpoint {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Vec<u16>>>,
}

impl Endpoint {
    pub async fn start(script: Vec<u16>) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhooks/stripe", listener.local_addr().unwrap());
        let endpoint = Endpoint {
            url,
            received: Arc::default(),
            script: Arc::new(Mutex::new(script.into_iter().rev().collect())),
        };
        let app = axum::Router::new()
            .route("/webhooks/stripe", axum::routing::post(receive))
            .with_state(endpoint.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        endpoint
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `n` deliveries have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        ringledger_tests::eventually(Duration::from_secs(10), || async {
            let got = self.received();
            (got.len() >= n).then_some(got)
        })
        .await
        .unwrap_or_else(|_| panic!("{n} deliveries expected, got {:?}", self.received()))
    }
}

async fn receive(State(e): State<Endpoint>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let verified = signature::verify(header, &body, &[WEBHOOK_SECRET], now, 300).is_ok();
    let event = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    e.received.lock().unwrap().push(Received { verified, event });
    let status = e.script.lock().unwrap().pop().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

/// Submits the hosted page's card form; returns the status and `Location`.
pub async fn pay_by_card(payment_page: &str, card: &str) -> (u16, Option<String>, String) {
    submit(payment_page, &[("method", "card"), ("card_number", card)]).await
}

pub async fn submit(payment_page: &str, fields: &[(&str, &str)]) -> (u16, Option<String>, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client.post(payment_page).form(fields).send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, location, res.text().await.unwrap_or_default())
}
