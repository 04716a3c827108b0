//! A small Stripe API client over reqwest, speaking Stripe's form-encoded API (docs/decisions/
//! 0011-stripe-client.md says why not async-stripe): Checkout Sessions (create, retrieve) and
//! Refunds (create). The base URL comes from configuration, so the same code talks to
//! api.stripe.com or to the development double (`ringledger stripe-sim`). Every POST carries an
//! `Idempotency-Key`; Stripe's error bodies become a typed [`StripeError`]. Never logs the key.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use crate::config::Secret;

/// The API version we are written against; sent on every request and stamped on the double's
/// events.
pub const API_VERSION: &str = "2024-06-20";
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";
/// Where real Stripe hosts Checkout pages (a form on our site redirects there).
pub const HOSTED_CHECKOUT_ORIGIN: &str = "https://checkout.stripe.com";
const TIMEOUT: Duration = Duration::from_secs(30);
const MAX_KEY_CHARS: usize = 255;

/// What Stripe answered instead of the object, or why we got no answer.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Bad or revoked API key (401).
    #[error("Stripe refused our API key: {message}")]
    Authentication { message: String },
    /// A parameter Stripe does not accept (400), or a resource it does not know (404).
    #[error("Stripe refused the request ({status}{}): {message}", code.as_deref().map(|c| format!(", {c}")).unwrap_or_default())]
    InvalidRequest {
        status: u16,
        code: Option<String>,
        param: Option<String>,
        message: String,
    },
    /// The same idempotency key was used with other parameters (400 `idempotency_error`) or
    /// while the first request is still running (409).
    #[error("Stripe idempotency conflict: {message}")]
    Idempotency { message: String },
    #[error("Stripe is rate-limiting us; try again in a moment")]
    RateLimited,
    /// 5xx, or a body we could not read: the request may or may not have taken effect, so
    /// retry with the same idempotency key.
    #[error("Stripe is unavailable ({status}); retry with the same idempotency key")]
    Unavailable { status: u16 },
    #[error("could not reach Stripe: {0}")]
    Transport(String),
    #[error("Stripe's answer was not what we expected: {0}")]
    Decode(String),
    #[error("idempotency key must be 1-{MAX_KEY_CHARS} characters")]
    BadIdempotencyKey,
}

impl StripeError {
    /// A label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StripeError::Authentication { .. } => "authentication",
            StripeError::InvalidRequest { .. } => "invalid_request",
            StripeError::Idempotency { .. } => "idempotency",
            StripeError::RateLimited => "rate_limited",
            StripeError::Unavailable { .. } => "unavailable",
            StripeError::Transport(_) => "transport",
            StripeError::Decode(_) => "decode",
            StripeError::BadIdempotencyKey => "bad_idempotency_key",
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    code: Option<String>,
    param: Option<String>,
    #[serde(default)]
    message: String,
}

/// A Checkout Session, with the fields we read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    /// The hosted page; null once the session is complete or expired.
    pub url: Option<String>,
    pub payment_intent: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    pub amount_total: Option<i64>,
    /// Lowercase ISO code, as Stripe writes it.
    pub currency: Option<String>,
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub charge: Option<String>,
    pub payment_intent: Option<String>,
    pub status: Option<String>,
}

/// One payment line: `amount_minor` of `currency` (lowercase is sent) named `product_name`.
#[derive(Debug, Clone)]
pub struct NewCheckoutSession {
    pub amount_minor: i64,
    pub currency: String,
    pub product_name: String,
    pub client_reference_id: String,
    pub success_url: String,
    pub cancel_url: String,
    /// Put in both the session's `metadata` and `payment_intent_data.metadata`.
    pub metadata: BTreeMap<String, String>,
}

impl NewCheckoutSession {
    /// Stripe's form encoding with bracketed keys.
    fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![
            ("mode".to_owned(), "payment".to_owned()),
            ("client_reference_id".to_owned(), self.client_reference_id.clone()),
            ("success_url".to_owned(), self.success_url.clone()),
            ("cancel_url".to_owned(), self.cancel_url.clone()),
            ("line_items[0][quantity]".to_owned(), "1".to_owned()),
            (
                "line_items[0][price_data][currency]".to_owned(),
                self.currency.to_ascii_lowercase(),
            ),
            (
                "line_items[0][price_data][unit_amount]".to_owned(),
                self.amount_minor.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]".to_owned(),
                self.product_name.clone(),
            ),
        ];
        for (k, v) in &self.metadata {
            form.push((format!("metadata[{k}]"), v.clone()));
            form.push((format!("payment_intent_data[metadata][{k}]"), v.clone()));
        }
        form
    }
}

/// A refund of `amount_minor` (everything left when `None`) of a payment intent.
#[derive(Debug, Clone)]
pub struct NewRefund {
    pub payment_intent: String,
    pub amount_minor: Option<i64>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base_url: String,
    secret_key: Secret,
}

impl StripeClient {
    pub fn new(base_url: &str, secret_key: Secret) -> Result<StripeClient, StripeError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StripeError::Transport(e.to_string()))?;
        Ok(StripeClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            secret_key,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The origin our forms redirect to for payment: real Stripe's Checkout host, or the
    /// double's own origin (it serves its hosted page beside its API).
    pub fn hosted_checkout_origin(&self) -> String {
        if self.base_url == DEFAULT_BASE_URL {
            HOSTED_CHECKOUT_ORIGIN.to_owned()
        } else {
            origin(&self.base_url)
        }
    }

    pub async fn create_checkout_session(
        &self,
        session: &NewCheckoutSession,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, StripeError> {
        self.post("/v1/checkout/sessions", &session.form(), idempotency_key)
            .await
    }

    pub async fn retrieve_checkout_session(&self, id: &str) -> Result<CheckoutSession, StripeError> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(StripeError::InvalidRequest {
                status: 404,
                code: Some("resource_missing".to_owned()),
                param: Some("id".to_owned()),
                message: "No such checkout session".to_owned(),
            });
        }
        let req = self
            .http
            .get(format!("{}/v1/checkout/sessions/{id}", self.base_url));
        self.send(req).await
    }

    pub async fn create_refund(
        &self,
        refund: &NewRefund,
        idempotency_key: &str,
    ) -> Result<Refund, StripeError> {
        let mut form = vec![("payment_intent".to_owned(), refund.payment_intent.clone())];
        if let Some(amount) = refund.amount_minor {
            form.push(("amount".to_owned(), amount.to_string()));
        }
        for (k, v) in &refund.metadata {
            form.push((format!("metadata[{k}]"), v.clone()));
        }
        self.post("/v1/refunds", &form, idempotency_key).await
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(String, String)],
        idempotency_key: &str,
    ) -> Result<T, StripeError> {
        if idempotency_key.is_empty() || idempotency_key.len() > MAX_KEY_CHARS {
            return Err(StripeError::BadIdempotencyKey);
        }
        let body = serde_urlencoded::to_string(form).map_err(|e| StripeError::Decode(e.to_string()))?;
        let req = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("Idempotency-Key", idempotency_key)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, StripeError> {
        let res = req
            .bearer_auth(self.secret_key.expose())
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| StripeError::Transport(e.without_url().to_string()))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| StripeError::Transport(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| StripeError::Decode(e.to_string()));
        }
        Err(error_from(status, &bytes))
    }
}

fn error_from(status: StatusCode, body: &[u8]) -> StripeError {
    if status.is_server_error() {
        return StripeError::Unavailable {
            status: status.as_u16(),
        };
    }
    let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) else {
        return StripeError::Decode(format!("HTTP {status} without a Stripe error body"));
    };
    match (status.as_u16(), error.kind.as_str()) {
        (401, _) => StripeError::Authentication {
            message: error.message,
        },
        (429, _) => StripeError::RateLimited,
        (409, _) | (_, "idempotency_error") => StripeError::Idempotency {
            message: error.message,
        },
        (code, _) => StripeError::InvalidRequest {
            status: code,
            code: error.code,
            param: error.param,
            message: error.message,
        },
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_use_stripes_bracket_keys_and_metadata_twice() {
        let s = NewCheckoutSession {
            amount_minor: 1_000,
            currency: "USD".into(),
            product_name: "Credit".into(),
            client_reference_id: "acc".into(),
            success_url: "http://x/s?session_id={CHECKOUT_SESSION_ID}".into(),
            cancel_url: "http://x/c".into(),
            metadata: BTreeMap::from([("tier".to_owned(), "10".to_owned())]),
        };
        let form = s.form();
        let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("1000"));
        assert_eq!(get("line_items[0][price_data][currency]"), Some("usd"));
        assert_eq!(get("metadata[tier]"), Some("10"));
        assert_eq!(get("payment_intent_data[metadata][tier]"), Some("10"));
        assert_eq!(get("mode"), Some("payment"));
    }

    #[test]
    fn errors_are_typed_by_status_and_type() {
        let body = br#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_****1234"}}"#;
        assert!(matches!(
            error_from(StatusCode::UNAUTHORIZED, body),
            StripeError::Authentication { .. }
        ));
        let idem = br#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}"#;
        assert!(matches!(
            error_from(StatusCode::BAD_REQUEST, idem),
            StripeError::Idempotency { .. }
        ));
        assert!(matches!(
            error_from(StatusCode::BAD_GATEWAY, b"<html>"),
            StripeError::Unavailable { status: 502 }
        ));
        assert_eq!(origin("http://127.0.0.1:12111/v1"), "http://127.0.0.1:12111");
    }
}
