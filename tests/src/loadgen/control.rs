//! The media side of api → media `hangup` (docs/metering-protocol.md, `POST {control_url}/v1/
//! hangup`): a JWT signed by the api with the shared media secret (`iss "ringledger-api"`,
//! `sub "api"`, `aud` this node, at most 60 s long, 5 s skew, `jti` never seen before its
//! expiry) and a body naming a call this node holds. A held call is told to end (it then sends
//! `stop` with the cause the protocol names) and the api gets `202 {"call_id"}`; a call the
//! node does not hold is `404 unknown_call`. Errors use the protocol's `{code, message,
//! limit}` body. Never logs a token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use jsonwebtoken::{decode, Algorithm, DecodingKey, Validation};
use ringledger_domain::CallId;
use serde::Deserialize;
use serde_json::json;

use super::node::Node;

/// Reasons the protocol lets the api give.
pub const HANGUP_REASONS: &[&str] = &[
    "final_unit",
    "max_duration",
    "account_frozen",
    "account_banned",
    "admin",
];
const MAX_BODY_BYTES: usize = 16 * 1024;
const MAX_TOKEN_SECONDS: i64 = 60;
const LEEWAY_SECONDS: u64 = 5;

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/v1/hangup", post(hangup))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(node)
}

#[derive(Debug, Deserialize)]
struct ApiClaims {
    sub: String,
    iat: i64,
    exp: i64,
    jti: uuid::Uuid,
}

#[derive(Debug, Deserialize)]
struct HangupBody {
    call_id: CallId,
    reason: String,
    #[serde(default)]
    #[allow(dead_code)]
    message: Option<String>,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"code": code, "message": message, "limit": null})),
    )
        .into_response()
}

/// Checks the api's JWT for this node and records its `jti`.
fn authenticate(node: &Node, headers: &HeaderMap) -> Result<(), &'static str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("missing `Authorization: Bearer <JWT>`")?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[node.id.as_str()]);
    validation.set_issuer(&["ringledger-api"]);
    validation.leeway = LEEWAY_SECONDS;
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
    let claims = decode::<ApiClaims>(
        bearer.trim(),
        &DecodingKey::from_secret(node.secret_bytes()),
        &validation,
    )
    .map_err(|_| "the token is not a valid, unexpired HS256 JWT from the api for this node")?
    .claims;
    if claims.sub != "api" {
        return Err("the token's `sub` is not \"api\"");
    }
    if claims.exp - claims.iat > MAX_TOKEN_SECONDS {
        return Err("the token lives more than 60 s between iat and exp");
    }
    let now = Utc::now().timestamp();
    let mut seen = node.seen_jtis.lock().map_err(|_| "the node is shutting down")?;
    seen.retain(|_, exp| *exp + LEEWAY_SECONDS as i64 >= now);
    if seen.insert(claims.jti, claims.exp).is_some() {
        return Err("this token's `jti` was already used; sign a fresh token per request");
    }
    Ok(())
}

async fn hangup(State(node): State<Arc<Node>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(message) = authenticate(&node, &headers) {
        node.stats.hangups_refused.add();
        return refuse(StatusCode::UNAUTHORIZED, "unauthorised", message);
    }
    let body: HangupBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "malformed",
                "the body is not {\"call_id\", \"reason\", \"message\"}",
            )
        }
    };
    if !HANGUP_REASONS.contains(&body.reason.as_str()) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "malformed",
            "reason is not one of final_unit, max_duration, account_frozen, account_banned, admin",
        );
    }
    let held = node
        .calls
        .lock()
        .ok()
        .and_then(|calls| calls.get(&body.call_id).cloned());
    match held {
        Some(call) => {
            node.stats.hangups_received.add();
            tracing::info!(node = %node.id.as_str(), call_id = %body.call_id, reason = %body.reason, "hangup requested");
            let _ = call.send(Some(body.reason));
            (StatusCode::ACCEPTED, Json(json!({"call_id": body.call_id}))).into_response()
        }
        None => refuse(
            StatusCode::NOT_FOUND,
            "unknown_call",
            "this node holds no such call (it ended, or was never here)",
        ),
    }
}
