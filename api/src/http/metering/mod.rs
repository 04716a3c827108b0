//! The metering endpoint for media nodes (docs/metering-protocol.md): `POST /metering/v1/`
//! `register`, `start`, `progress`, `interim`, `stop`. Handlers parse and authenticate, then
//! hand typed requests to `CallService`; no business logic here. Bodies are at most 16 KiB;
//! a destination number is never logged.

mod auth;
mod error;
mod wire;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use ringledger_domain::call::Progress;
use ringledger_domain::{QuoteId, E164};
use serde_json::{json, Value};

use super::AppState;
use crate::calls::{Report, StartCall};
use auth::authenticate;
pub use auth::MeteringSecrets;
pub use error::MeteringError;
use wire::{parse, InterimBody, ProgressBody, RegisterBody, StartBody, StopBody};

/// Largest body a media node may send.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metering/v1/register", post(register))
        .route("/metering/v1/start", post(start))
        .route("/metering/v1/progress", post(progress))
        .route("/metering/v1/interim", post(interim))
        .route("/metering/v1/stop", post(stop))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn register(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, MeteringError> {
    let node = authenticate(&state, &headers).await?;
    let b: RegisterBody = parse(&body)?;
    if b.node_id.as_str() != node {
        return Err(MeteringError::unauthorised(
            "the token's `sub` is not the body's `node_id`",
        ));
    }
    wire::upsert_node(&state.pool, &b).await?;
    let calls = state.calls.config();
    Ok(Json(json!({
        "node_id": b.node_id.as_str(),
        "heartbeat_seconds": calls.heartbeat_seconds,
        "interim_seconds": calls.policy.interim_seconds,
    })))
}

async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, MeteringError> {
    let node = authenticate(&state, &headers).await?;
    let b: StartBody = parse(&body)?;
    let grant = state.metering.check_call_token(&b.call_token)?;
    if grant.node_id.as_str() != node {
        return Err(MeteringError::new(
            "node_mismatch",
            "the call token names another media node; start the call on the node it names",
        ));
    }
    let quote_id =
        QuoteId::parse(&b.quote_id).map_err(|_| MeteringError::malformed("quote_id is not a UUID"))?;
    let number = E164::parse(&b.destination, None)
        .map_err(|_| MeteringError::malformed("destination is not an E.164 number such as +442079460958"))?;
    let request = StartCall {
        call_id: grant.call_id,
        account_id: grant.account_id,
        node_id: grant.node_id,
        quote_id,
        number,
    };
    // A denial (including a first grant the account refused) comes back as an error.
    let (call, reply) = state.calls.start(&request, Utc::now()).await?;
    tracing::info!(call_id = %request.call_id, leg_id = %b.leg_id, "call started");
    let mut answer = wire::reply_json(request.call_id, &reply);
    if let (Some(terms), Value::Object(map)) = (call.terms(), &mut answer) {
        map.insert("max_ring_seconds".into(), json!(terms.max_ring_seconds));
        map.insert("max_call_seconds".into(), json!(terms.max_call_seconds));
        map.insert("interim_seconds".into(), json!(terms.policy.interim_seconds));
        map.insert("rate".into(), json!(terms.tariff.rate_per_minute));
    }
    Ok(Json(answer))
}

async fn progress(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, MeteringError> {
    let node = authenticate(&state, &headers).await?;
    let b: ProgressBody = parse(&body)?;
    let report = Report::Progress(b.progress);
    if let Progress::Failed {
        sip_status: Some(s), ..
    } = b.progress
    {
        if !(300..=699).contains(&s) {
            return Err(MeteringError::new(
                "invalid_report",
                format!("sip_status {s} is not 300-699"),
            ));
        }
    }
    let (_, reply) = state
        .calls
        .report(&node, b.call_id, b.seq, report, Utc::now())
        .await?;
    Ok(Json(wire::reply_json(b.call_id, &reply)))
}

async fn interim(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, MeteringError> {
    let node = authenticate(&state, &headers).await?;
    let b: InterimBody = parse(&body)?;
    let report = Report::Interim { talk_ms: b.talk_ms };
    let (_, reply) = state
        .calls
        .report(&node, b.call_id, b.seq, report, Utc::now())
        .await?;
    Ok(Json(wire::reply_json(b.call_id, &reply)))
}

async fn stop(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, MeteringError> {
    let node = authenticate(&state, &headers).await?;
    let b: StopBody = parse(&body)?;
    if b.cause.is_api_only() {
        return Err(MeteringError::new(
            "invalid_report",
            "causes `orphaned`, `account_frozen`, `account_banned` and `admin` are the api's own; \
             report how the call ended (`hangup_requested` after a hangup request)",
        ));
    }
    let report = Report::Stop {
        talk_ms: b.talk_ms,
        cause: b.cause,
        quality: b.quality,
    };
    let (_, reply) = state
        .calls
        .report(&node, b.call_id, b.seq, report, Utc::now())
        .await?;
    Ok(Json(wire::reply_json(b.call_id, &reply)))
}
