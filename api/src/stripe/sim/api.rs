//! The Stripe API subset: `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`,
//! `POST /v1/refunds`, and `GET /v1/payment_intents/{id}` (its metadata names the account, for
//! a refund or dispute that arrives before its purchase). Form-encoded bodies with Stripe's
//! bracket keys, the secret key as a Bearer token, and `Idempotency-Key` honoured (same key and
//! parameters: the first answer; other parameters: an `idempotency_error`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::state::{invalid, NewSession, Refusal, SimState};
use super::{objects, webhooks};

pub(super) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v1/checkout/sessions", post(create_session))
        .route("/v1/checkout/sessions/{id}", get(retrieve_session))
        .route("/v1/refunds", post(create_refund))
        .route("/v1/payment_intents/{id}", get(retrieve_payment_intent))
}

pub(super) fn answer((status, body): Refusal) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}

/// Refuses a request without our secret key, as Stripe does (the key is never echoed whole).
pub(super) fn authorize(state: &SimState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = state.config.secret_key.expose().as_bytes();
    if !given.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected)) {
        return Ok(());
    }
    let tail: String = given
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let message = if given.is_empty() {
        "You did not provide an API key.".to_owned()
    } else {
        format!("Invalid API Key provided: sk_****{tail}")
    };
    let body = objects::error("invalid_request_error", None, None, &message);
    Err(Box::new(answer((401, body))))
}

/// A parsed form: Stripe's bracket keys kept as they are.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Result<Form, Refusal> {
        serde_urlencoded::from_bytes(body)
            .map(Form)
            .map_err(|_| invalid(None, None, "The request body is not form-encoded."))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> Result<&str, Refusal> {
        self.get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            invalid(
                Some("parameter_missing"),
                Some(key),
                &format!("Missing required param: {key}."),
            )
        })
    }

    /// `prefix[k]` pairs as a map (`metadata[account_id]` -> `account_id`).
    fn map(&self, prefix: &str) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let inner = k.strip_prefix(prefix)?.strip_prefix('[')?.strip_suffix(']')?;
                (!inner.contains('[')).then(|| (inner.to_owned(), v.clone()))
            })
            .collect()
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, Refusal> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    invalid(
                        Some("parameter_invalid_integer"),
                        Some(key),
                        &format!("Invalid integer: {v}"),
                    )
                })
            })
            .transpose()
    }

    /// The parameters in a stable order, to compare a repeated idempotency key.
    fn fingerprint(&self, path: &str) -> String {
        let mut pairs = self.0.clone();
        pairs.sort();
        format!(
            "{path}?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }
}

/// Runs `f` once per idempotency key: a repeat gets the stored answer.
fn idempotent(
    state: &SimState,
    headers: &HeaderMap,
    fingerprint: String,
    f: impl FnOnce() -> Result<Value, Refusal>,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(key) = &key {
        if let Some(stored) = state.idempotent(key, &fingerprint) {
            return answer(stored);
        }
    }
    let (status, body) = match f() {
        Ok(body) => (200, body),
        Err(refusal) => refusal,
    };
    // Stripe stores the outcome of requests that reached its logic, errors included; not 5xx.
    if let Some(key) = &key {
        state.remember(key, &fingerprint, status, &body);
    }
    answer((status, body))
}

async fn create_session(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(res) = authorize(&state, &headers) {
        return *res;
    }
    let form = match Form::parse(&body) {
        Ok(f) => f,
        Err(r) => return answer(r),
    };
    let fingerprint = form.fingerprint("/v1/checkout/sessions");
    idempotent(&state, &headers, fingerprint, || {
        let new = parse_session(&form)?;
        Ok(state.create_session(new))
    })
}

fn parse_session(form: &Form) -> Result<NewSession, Refusal> {
    if form.required("mode")? != "payment" {
        return Err(invalid(
            None,
            Some("mode"),
            "The double supports mode=payment only.",
        ));
    }
    if form.0.iter().any(|(k, _)| k.starts_with("line_items[1]")) {
        return Err(invalid(
            None,
            Some("line_items"),
            "The double supports one line item.",
        ));
    }
    let unit = form
        .integer("line_items[0][price_data][unit_amount]")?
        .ok_or_else(|| {
            invalid(
                Some("parameter_missing"),
                Some("line_items[0][price_data][unit_amount]"),
                "Missing required param: line_items[0][price_data][unit_amount].",
            )
        })?;
    let quantity = form.integer("line_items[0][quantity]")?.unwrap_or(1);
    let currency = form.required("line_items[0][price_data][currency]")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(invalid(
            None,
            Some("line_items[0][price_data][currency]"),
            "Invalid currency: use a lowercase ISO code such as usd.",
        ));
    }
    let amount_total = unit
        .checked_mul(quantity)
        .filter(|a| *a > 0 && unit > 0 && quantity > 0)
        .ok_or_else(|| {
            invalid(
                None,
                Some("line_items[0][price_data][unit_amount]"),
                "The amount must be a positive integer.",
            )
        })?;
    Ok(NewSession {
        amount_total,
        currency: currency.to_owned(),
        product_name: form
            .required("line_items[0][price_data][product_data][name]")?
            .to_owned(),
        client_reference_id: form.get("client_reference_id").map(str::to_owned),
        success_url: form.required("success_url")?.to_owned(),
        cancel_url: form.get("cancel_url").unwrap_or_default().to_owned(),
        metadata: form.map("metadata"),
        intent_metadata: form.map("payment_intent_data[metadata]"),
    })
}

async fn retrieve_session(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(res) = authorize(&state, &headers) {
        return *res;
    }
    match state.session_json(&id) {
        Some(json) => answer((200, json)),
        None => answer(super::state::missing("checkout.session", &id, "session")),
    }
}

async fn create_refund(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(res) = authorize(&state, &headers) {
        return *res;
    }
    let form = match Form::parse(&body) {
        Ok(f) => f,
        Err(r) => return answer(r),
    };
    let fingerprint = form.fingerprint("/v1/refunds");
    let mut event = None;
    let res = idempotent(&state, &headers, fingerprint, || {
        let pi = match (form.get("payment_intent"), form.get("charge")) {
            (Some(pi), _) => pi.to_owned(),
            (None, Some(charge)) => state
                .store()
                .payments
                .values()
                .find(|p| p.charge == charge)
                .map(|p| p.payment_intent.clone())
                .ok_or_else(|| super::state::missing("charge", charge, "charge"))?,
            (None, None) => {
                return Err(invalid(
                    Some("parameter_missing"),
                    Some("payment_intent"),
                    "Provide a payment_intent or a charge.",
                ))
            }
        };
        let (json, evt) = state.refund(&pi, form.integer("amount")?, form.map("metadata"))?;
        event = Some(evt);
        Ok(json)
    });
    if let Some(evt) = event {
        webhooks::deliver(&state, evt);
    }
    res
}

async fn retrieve_payment_intent(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(res) = authorize(&state, &headers) {
        return *res;
    }
    match state.payment_intent_json(&id) {
        Some(json) => answer((200, json)),
        None => answer(super::state::missing("payment_intent", &id, "intent")),
    }
}
