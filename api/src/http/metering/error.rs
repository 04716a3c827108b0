//! Metering errors as the protocol sends them: `{code, message, limit}` with the status of
//! docs/metering-protocol.md, "Errors". Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::calls::CallsError;

#[derive(Debug)]
pub struct MeteringError {
    pub code: &'static str,
    pub message: String,
    pub limit: Option<(&'static str, i64)>,
}

impl MeteringError {
    pub fn new(code: &'static str, message: impl Into<String>) -> MeteringError {
        MeteringError {
            code,
            message: message.into(),
            limit: None,
        }
    }
    pub fn malformed(message: &str) -> MeteringError {
        MeteringError::new("malformed", message)
    }
    pub fn unauthorised(message: &str) -> MeteringError {
        MeteringError::new("unauthorised", message)
    }
    pub fn internal(e: impl std::fmt::Display) -> MeteringError {
        tracing::error!(error = %e, "metering request failed");
        MeteringError::new("internal", "something went wrong on our side; try again")
    }

    fn status(&self) -> StatusCode {
        match self.code {
            "malformed" => StatusCode::BAD_REQUEST,
            "unauthorised" => StatusCode::UNAUTHORIZED,
            "unknown_call" | "unknown_quote" => StatusCode::NOT_FOUND,
            "stale_seq" => StatusCode::CONFLICT,
            "call_over" => StatusCode::GONE,
            "invalid_report" => StatusCode::UNPROCESSABLE_ENTITY,
            "busy" => StatusCode::SERVICE_UNAVAILABLE,
            "internal" => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl From<CallsError> for MeteringError {
    fn from(e: CallsError) -> MeteringError {
        if let CallsError::Internal(_) = e {
            return MeteringError::internal(e);
        }
        MeteringError {
            code: e.code(),
            message: e.to_string(),
            limit: e.limit(),
        }
    }
}

/// How long a busy caller should wait.
const RETRY_AFTER_MS: u64 = 500;

impl IntoResponse for MeteringError {
    fn into_response(self) -> Response {
        let status = self.status();
        let limit: Value = match self.limit {
            Some((name, value)) => json!({ "name": name, "value": value }),
            None => Value::Null,
        };
        let mut body = json!({ "code": self.code, "message": self.message, "limit": limit });
        if status == StatusCode::SERVICE_UNAVAILABLE {
            body["retry_after_ms"] = json!(RETRY_AFTER_MS);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
