//! The node's control server: `POST /v1/hangup` from the api (HS256 JWT with the shared
//! secret, `iss` ringledger-api, `aud` this node, ≤ 60 s, `jti` never reused), `GET /metrics`
//! (Prometheus) and `GET /healthz`. Bodies ≤ 16 KiB. Never logs a token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::oneshot;

use crate::call::wire::HangupBody;
use crate::driver::{NodeEvent, NodeHandle};

#[derive(Clone)]
pub struct ControlState {
    pub node: NodeHandle,
    pub node_id: String,
    pub secret: Option<Vec<u8>>,
    pub metrics: Option<PrometheusHandle>,
    seen_jtis: Arc<Mutex<HashMap<String, i64>>>,
}

impl ControlState {
    pub fn new(
        node: NodeHandle,
        node_id: String,
        secret: Option<Vec<u8>>,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        ControlState {
            node,
            node_id,
            secret,
            metrics,
            seen_jtis: Arc::default(),
        }
    }
}

pub fn router(state: ControlState) -> Router {
    Router::new()
        .route("/v1/hangup", post(hangup))
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

#[derive(Deserialize)]
struct ApiClaims {
    sub: String,
    iat: i64,
    exp: i64,
    jti: String,
}

fn error(status: StatusCode, code: &str, message: &str) -> axum::response::Response {
    (
        status,
        Json(json!({"code": code, "message": message, "limit": null})),
    )
        .into_response()
}

fn authenticate(state: &ControlState, headers: &HeaderMap) -> Result<(), String> {
    let secret = state
        .secret
        .as_ref()
        .ok_or("RINGLEDGER_MEDIA_SECRET is not set on this node")?;
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("missing `Authorization: Bearer <JWT>`")?;
    let mut v = Validation::new(Algorithm::HS256);
    v.set_issuer(&["ringledger-api"]);
    v.set_audience(&[state.node_id.as_str()]);
    v.leeway = 5;
    v.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    let claims = decode::<ApiClaims>(token.trim(), &DecodingKey::from_secret(secret), &v)
        .map_err(|e| format!("the token is not valid for this node: {e}"))?
        .claims;
    if claims.exp - claims.iat > 60 || claims.sub != "api" {
        return Err("the token lives over 60 s or is not the api's".into());
    }
    let now = chrono::Utc::now().timestamp();
    let mut seen = state.seen_jtis.lock().map_err(|_| "internal error")?;
    seen.retain(|_, exp| *exp + 5 >= now);
    if seen.len() >= 100_000 || seen.insert(claims.jti, claims.exp).is_some() {
        return Err("this token's `jti` was already used; sign a fresh token per request".into());
    }
    Ok(())
}

async fn hangup(
    State(state): State<ControlState>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    if let Err(m) = authenticate(&state, &headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorised", &m);
    }
    let b: HangupBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed",
                &format!("the body is not a hangup request: {e}"),
            )
        }
    };
    let (tx, rx) = oneshot::channel();
    if state
        .node
        .tx
        .send(NodeEvent::ApiHangup(b.call_id, b.reason, tx))
        .await
        .is_err()
    {
        return error(StatusCode::SERVICE_UNAVAILABLE, "busy", "the node is stopping");
    }
    metrics::counter!("media_api_hangups_total").increment(1);
    match rx.await {
        Ok(true) => (StatusCode::ACCEPTED, Json(json!({"call_id": b.call_id}))).into_response(),
        _ => error(StatusCode::NOT_FOUND, "unknown_call", "no such call on this node"),
    }
}

async fn metrics_text(State(state): State<ControlState>) -> String {
    state.metrics.as_ref().map(|m| m.render()).unwrap_or_default()
}
