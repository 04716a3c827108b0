//! Authentication of media requests: a fresh HS256 JWT per request with the shared
//! `media_secret`, at most 60 s long, and a `jti` never seen before its expiry (kept in
//! `metering_jtis`, so replicas agree). Never logs a token or a secret.

use axum::http::HeaderMap;
use chrono::{TimeZone, Utc};

use super::error::MeteringError;
use super::AppState;
use crate::calls::token::{self, CallGrant};
use crate::config::Secret;

/// The secrets metering needs; either may be absent in development (requests are refused).
#[derive(Clone, Default)]
pub struct MeteringSecrets {
    pub media_secret: Option<Secret>,
    pub call_token_secret: Option<Secret>,
}

impl MeteringSecrets {
    pub fn check_call_token(&self, call_token: &str) -> Result<CallGrant, MeteringError> {
        let secret = self.call_token_secret.as_ref().ok_or_else(|| {
            MeteringError::new(
                "invalid_call_token",
                "call tokens are not configured (RINGLEDGER_CALL_TOKEN_SECRET)",
            )
        })?;
        token::check_call(call_token, secret.expose().as_bytes()).map_err(|e| {
            MeteringError::new(
                "invalid_call_token",
                format!("call token refused: {e}; ask the browser for a new one"),
            )
        })
    }
}

/// Checks the request's JWT and records its `jti`; returns the node id (`sub`).
pub(super) async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, MeteringError> {
    let secret =
        state.metering.media_secret.as_ref().ok_or_else(|| {
            MeteringError::unauthorised("metering is not configured (RINGLEDGER_MEDIA_SECRET)")
        })?;
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| MeteringError::unauthorised("missing `Authorization: Bearer <JWT>`"))?;
    let claims = token::check_media(bearer.trim(), secret.expose().as_bytes())
        .map_err(|e| MeteringError::unauthorised(&e.to_string()))?;
    let expires_at = Utc
        .timestamp_opt(claims.exp, 0)
        .single()
        .ok_or_else(|| MeteringError::unauthorised("`exp` is out of range"))?;
    let fresh = sqlx::query(
        "INSERT INTO metering_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
    )
    .bind(claims.jti)
    .bind(expires_at)
    .execute(&state.pool)
    .await
    .map_err(MeteringError::internal)?
    .rows_affected()
        == 1;
    if !fresh {
        return Err(MeteringError::unauthorised(
            "this token's `jti` was already used; sign a fresh token per request",
        ));
    }
    Ok(claims.sub)
}

/// Forgets `jti`s past their expiry (a replay of those fails on `exp` already).
pub(super) async fn forget_expired_jtis(pool: &sqlx::PgPool) -> Result<(), MeteringError> {
    sqlx::query("DELETE FROM metering_jtis WHERE expires_at < now() - interval '10 seconds'")
        .execute(pool)
        .await
        .map_err(MeteringError::internal)?;
    Ok(())
}
