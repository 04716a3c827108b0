//! `POST /webhooks/stripe`: no session, no CSRF (Stripe signs the body instead), a bounded
//! body. Verifies, records and answers at once; the money is moved later by the webhook job
//! (`crate::payments`). Refusals answer 400 (Stripe retries those for days, so nothing is
//! lost); a database failure answers 500 so Stripe retries.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::payments::{ReceiveError, Received};

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/webhooks/stripe", post(stripe))
        .layer(DefaultBodyLimit::max(
            state.payments.config().webhook_max_body_bytes,
        ))
}

async fn stripe(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let answer = match state.payments.receive(header, &body, now).await {
        Ok(Received::Recorded { event_id }) => (
            StatusCode::OK,
            Json(json!({"received": true, "event_id": event_id})),
        )
            .into_response(),
        Ok(Received::Ignored { event_id }) => (
            StatusCode::OK,
            Json(json!({"received": true, "event_id": event_id, "ignored": true})),
        )
            .into_response(),
        Ok(Received::Duplicate { event_id }) => (
            StatusCode::OK,
            Json(json!({"received": true, "event_id": event_id, "duplicate": true})),
        )
            .into_response(),
        Err(ReceiveError::Refused(refusal)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": refusal.reason(), "message": refusal.to_string()})),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "stripe webhook could not be recorded; Stripe will retry");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "unavailable", "message": "could not record the event; retry later"})),
            )
                .into_response()
        }
    };
    metrics::histogram!("ringledger_stripe_webhook_seconds").record(started.elapsed().as_secs_f64());
    answer
}
