//! The rates JSON API: `GET /api/rates?country=…` (the public price list) and
//! `GET /api/rates/quote?number=…&region=…` (a quote for the signed-in caller). Money is
//! `{"amount": "0.017600", "currency": "USD"}`; numbers come back masked.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::{Json, Router};
use chrono::Utc;
use ringledger_domain::rates::quote::Quote;
use ringledger_domain::AccountId;
use serde::Deserialize;
use serde_json::{json, Value};

use super::web::Ctx;
use super::AppState;
use crate::rates::{PriceListRow, QuoteOutcome, QuoteRequest, RateError};

/// Public routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/rates", get(price_list))
}

/// Routes for the signed-in caller, mounted behind the session middleware.
pub fn signed_in_router() -> Router<AppState> {
    Router::new().route("/api/rates/quote", get(quote_route))
}

async fn quote_route(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<QuoteQuery>,
) -> Response {
    let Some(user) = ctx.signed_in() else {
        let body = json!({ "error": "sign in to get a quote" });
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    };
    match quote(&state, user.id, q).await {
        Ok(body) => body.into_response(),
        Err(e) => e.into_response(),
    }
}

impl IntoResponse for RateError {
    fn into_response(self) -> Response {
        let status = match &self {
            RateError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            RateError::NotFound(_) => StatusCode::NOT_FOUND,
            RateError::Refused(_) => StatusCode::CONFLICT,
            RateError::Quote(q) if q.code() == "unknown_quote" => StatusCode::NOT_FOUND,
            RateError::Quote(_) => StatusCode::FORBIDDEN,
            RateError::NoActiveDeck | RateError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            RateError::Database(_) | RateError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "rates request failed");
            "something went wrong on our side; try again".to_owned()
        } else {
            self.to_string()
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

#[derive(Debug, Deserialize)]
pub struct PriceListQuery {
    pub country: Option<String>,
}

async fn price_list(
    State(state): State<AppState>,
    Query(q): Query<PriceListQuery>,
) -> Result<Json<Value>, RateError> {
    let country = q.country.as_deref().map(str::trim).filter(|c| !c.is_empty());
    if let Some(c) = country {
        if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(RateError::Invalid(format!(
                "country `{}` is not a two-letter code such as GB",
                c.chars().take(8).collect::<String>()
            )));
        }
    }
    let book = state.rates.book().get();
    let rows = book.price_list(country)?;
    Ok(Json(json!({
        "deck_id": book.deck_id,
        "country": country.map(str::to_ascii_uppercase),
        "rates": rows.iter().map(price_row_json).collect::<Vec<_>>(),
    })))
}

fn price_row_json(row: &PriceListRow) -> Value {
    let t = &row.price.selling;
    json!({
        "country": row.iso,
        "country_name": row.country,
        "description": row.description,
        "prefix": row.prefix,
        "rate_per_minute": t.rate_per_minute,
        "connect_fee": t.plan.connect_fee,
        "first_increment_seconds": t.plan.first_increment_seconds,
        "next_increment_seconds": t.plan.next_increment_seconds,
    })
}

#[derive(Debug, Deserialize)]
pub struct QuoteQuery {
    pub number: String,
    pub region: Option<String>,
}

/// The quote answer for `account` (the signed-in caller's account).
async fn quote(state: &AppState, account: AccountId, q: QuoteQuery) -> Result<Json<Value>, RateError> {
    if q.number.len() > 64 {
        return Err(RateError::Invalid(
            "a phone number is at most 64 characters".into(),
        ));
    }
    let region = q.region.filter(|r| !r.trim().is_empty());
    let request = QuoteRequest {
        account_id: account,
        number: q.number,
        region,
    };
    let body = match state.rates.quote(&request, Utc::now()).await? {
        QuoteOutcome::Quoted { number, quote } => quote_json(&number.masked(), &quote),
        QuoteOutcome::Blocked { reason } => json!({ "blocked_reason": reason }),
        QuoteOutcome::NoRate { number } => json!({
            "number": number.masked(),
            "blocked_reason": "we have no rate for this destination, so it cannot be called",
        }),
    };
    Ok(Json(body))
}

fn quote_json(masked: &str, quote: &Quote) -> Value {
    let t = &quote.price.selling;
    json!({
        "number": masked,
        "country": quote.destination.iso,
        "country_name": quote.destination.country,
        "description": quote.destination.description,
        "prefix": quote.destination.prefix,
        "rate_per_minute": t.rate_per_minute,
        "connect_fee": t.plan.connect_fee,
        "first_increment_seconds": t.plan.first_increment_seconds,
        "next_increment_seconds": t.plan.next_increment_seconds,
        "available": quote.available,
        "max_duration_seconds": quote.max_seconds,
        "blocked_reason": Value::Null,
        "quote_id": quote.id,
        "expires_at": quote.expires_at,
    })
}
