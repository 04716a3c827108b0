//! The double's admin endpoints (JSON, the secret key as Bearer): trigger what a real account
//! would see happen later — refunds, disputes and their outcome, expiry, settlement of a
//! "pay later" payment — and re-send an event to test duplicate handling.
//!
//! | method and path | effect |
//! | --- | --- |
//! | `GET /sim/events` | every event with its delivery attempts |
//! | `POST /sim/events/{evt}/redeliver?times=N` | N more deliveries of the same event |
//! | `POST /sim/payment_intents/{pi}/refund?amount=M` | `charge.refunded` (cumulative) |
//! | `POST /sim/payment_intents/{pi}/dispute?amount=M&reason=R` | `charge.dispute.created` |
//! | `POST /sim/disputes/{dp}/close?outcome=won\|lost` | `charge.dispute.closed` |
//! | `POST /sim/checkout/sessions/{cs}/expire` | `checkout.session.expired` |
//! | `POST /sim/checkout/sessions/{cs}/settle?outcome=succeeded\|failed` | `async_payment_*` |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

use super::api::{answer, authorize};
use super::state::{invalid, Refusal, SimState};
use super::webhooks;

const MAX_REDELIVERIES: u32 = 100;

pub(super) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/sim/events", get(events))
        .route("/sim/events/{id}/redeliver", post(redeliver))
        .route("/sim/payment_intents/{id}/refund", post(refund))
        .route("/sim/payment_intents/{id}/dispute", post(dispute))
        .route("/sim/disputes/{id}/close", post(close_dispute))
        .route("/sim/checkout/sessions/{id}/expire", post(expire))
        .route("/sim/checkout/sessions/{id}/settle", post(settle))
}

#[derive(Deserialize, Default)]
struct Params {
    amount: Option<i64>,
    reason: Option<String>,
    outcome: Option<String>,
    times: Option<u32>,
}

/// Authorises, runs `f`, sends the event it returns, answers with its object.
fn trigger(
    state: &Arc<SimState>,
    headers: &HeaderMap,
    f: impl FnOnce() -> Result<(Value, String), Refusal>,
) -> Response {
    if let Err(res) = authorize(state, headers) {
        return *res;
    }
    match f() {
        Ok((object, event)) => {
            webhooks::deliver(state, event.clone());
            answer((200, json!({ "event": event, "object": object })))
        }
        Err(refusal) => answer(refusal),
    }
}

async fn events(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    if let Err(res) = authorize(&state, &headers) {
        return *res;
    }
    let list: Vec<Value> = state
        .events()
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id, "type": e.kind, "created": e.created, "object_id": e.object_id,
                "delivered": e.delivered(), "attempts": e.attempts,
                "event": serde_json::from_str::<Value>(&e.body).unwrap_or(Value::Null),
            })
        })
        .collect();
    answer((200, json!({ "object": "list", "data": list })))
}

async fn redeliver(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    if let Err(res) = authorize(&state, &headers) {
        return *res;
    }
    if state.event_body(&id).is_none() {
        return answer(super::state::missing("event", &id, "id"));
    }
    let times = p.times.unwrap_or(1).clamp(1, MAX_REDELIVERIES);
    for _ in 0..times {
        webhooks::deliver(&state, id.clone());
    }
    answer((200, json!({ "event": id, "deliveries": times })))
}

async fn refund(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    trigger(&state, &headers, || state.refund(&id, p.amount, BTreeMap::new()))
}

async fn dispute(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    let reason = p.reason.clone().unwrap_or_else(|| "fraudulent".to_owned());
    trigger(&state, &headers, || state.open_dispute(&id, p.amount, &reason))
}

async fn close_dispute(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    trigger(&state, &headers, || match p.outcome.as_deref() {
        Some("won") => state.close_dispute(&id, true),
        Some("lost") => state.close_dispute(&id, false),
        _ => Err(invalid(None, Some("outcome"), "outcome must be won or lost")),
    })
}

async fn expire(State(state): State<Arc<SimState>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    trigger(&state, &headers, || {
        let event = state.expire(&id)?;
        Ok((state.session_json(&id).unwrap_or(Value::Null), event))
    })
}

async fn settle(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(p): Query<Params>,
) -> Response {
    trigger(&state, &headers, || {
        let succeeded = match p.outcome.as_deref() {
            Some("succeeded") | None => true,
            Some("failed") => false,
            Some(_) => {
                return Err(invalid(
                    None,
                    Some("outcome"),
                    "outcome must be succeeded or failed",
                ))
            }
        };
        let event = state.settle(&id, succeeded)?;
        Ok((state.session_json(&id).unwrap_or(Value::Null), event))
    })
}
