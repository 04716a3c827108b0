//! Shared by the gateway's integration tests: a fake metering api that checks our JWTs,
//! records every report and answers grants; it can go down (503) to simulate an outage.

#![allow(dead_code)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

pub const SECRET: &str = "0123456789abcdef0123456789abcdef-media";

#[derive(Clone, Default)]
pub struct Api {
    pub reports: Arc<Mutex<Vec<(String, Value)>>>,
    pub opts: ApiOpts,
    /// While set, every request gets a 503 (the api is down).
    pub dead: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Clone, Copy, Default)]
pub struct ApiOpts {
    pub granted_seconds: u64,
    pub final_unit: bool,
    pub validity_seconds: u64,
    /// Go down right after answering `answered`.
    pub die_after_answer: bool,
}

pub fn opts(granted_seconds: u64, final_unit: bool) -> ApiOpts {
    ApiOpts {
        granted_seconds,
        final_unit,
        validity_seconds: 30,
        die_after_answer: false,
    }
}

fn check_jwt(headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_audience(&["ringledger-metering"]);
    v.set_issuer(&["ringledger-media"]);
    jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &v,
    )
    .is_ok_and(|d| d.claims["sub"] == "media-test" && d.claims["jti"].is_string())
}

async fn metering(
    State(api): State<Api>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    if !check_jwt(&headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": "unauthorised", "message": "bad jwt"})),
        );
    }
    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"code": "malformed", "message": "json"})),
        );
    };
    if api.dead.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"code": "busy", "message": "down", "retry_after_ms": 100})),
        );
    }
    if api.opts.die_after_answer && b["state"] == "answered" {
        api.dead.store(true, Ordering::SeqCst);
    }
    api.reports.lock().expect("lock").push((kind.clone(), b.clone()));
    let o = api.opts;
    let call_id = "6f2b0e4c-1d7a-4c39-9b0e-2f0c3b7d9a11";
    let seq = b["seq"].as_u64().unwrap_or(0);
    let grant = json!({
        "call_id": call_id, "seq": seq, "granted_seconds": o.granted_seconds,
        "seconds_left": o.granted_seconds, "final_unit": o.final_unit,
        "valid_until": "2026-11-25T12:00:30Z", "validity_seconds": o.validity_seconds, "hangup": null,
        "max_ring_seconds": 60, "max_call_seconds": 14400, "interim_seconds": 1,
    });
    let answer = match kind.as_str() {
        "start" | "interim" => grant,
        "progress" if b["state"] == "failed" => json!({"call_id": call_id, "seq": seq, "state": "failed"}),
        "progress" => grant,
        "stop" => {
            json!({"call_id": call_id, "seq": seq, "billed_seconds": b["talk_ms"].as_u64().unwrap_or(0).div_ceil(1000),
                         "cost_micros": 0, "charged_micros": 0, "currency": "USD"})
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"code": "unknown", "message": "no"})),
            )
        }
    };
    (StatusCode::OK, Json(answer))
}

pub async fn fake_api(opts: ApiOpts) -> (String, Api) {
    let api = Api {
        opts,
        ..Default::default()
    };
    let app = Router::new()
        .route("/metering/v1/{kind}", post(metering))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind api");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, api)
}
