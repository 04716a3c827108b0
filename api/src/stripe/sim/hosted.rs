//! The hosted checkout page (`/c/pay/{id}`, where a session's `url` points): a card field and a
//! "pay later" bank transfer. Test cards as Stripe's: `4242 4242 4242 4242` pays,
//! `4000 0000 0000 0002` is declined (shown, nothing charged, try again); any other number is
//! refused as invalid. A bank transfer completes the session unpaid and settles later
//! (succeeded or failed, as chosen on the page). Card numbers are never stored or logged.

use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use ringledger_domain::topup::minor;
use ringledger_domain::Currency;
use serde::Deserialize;

use super::objects::SessionStatus;
use super::state::SimState;
use super::webhooks;

pub const SUCCESS_CARD: &str = "4242424242424242";
pub const DECLINE_CARD: &str = "4000000000000002";

pub(super) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/c/pay/{id}", get(show).post(pay))
        .route("/c/checkout.css", get(stylesheet))
}

async fn stylesheet() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("checkout.css"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "stripe_sim/checkout.html")]
struct PayPage {
    id: String,
    amount: String,
    product_name: String,
    cancel_url: String,
    /// Why the last attempt failed, shown above the form.
    error: Option<String>,
    /// Set when the session can no longer be paid.
    closed: Option<String>,
}

#[derive(Deserialize)]
struct PayForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    outcome: String,
}

fn render(status: StatusCode, page: &PayPage) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response(),
    }
}

fn page(state: &SimState, id: &str, error: Option<String>) -> Option<PayPage> {
    let s = state.session(id)?;
    let closed = match s.status {
        SessionStatus::Open => None,
        SessionStatus::Complete => Some("This payment is already complete.".to_owned()),
        SessionStatus::Expired => Some("This checkout session has expired.".to_owned()),
    };
    let amount = Currency::parse(&s.currency.to_ascii_uppercase())
        .ok()
        .and_then(|c| minor::from_minor(s.amount_total, c).ok())
        .map(minor::display)
        .unwrap_or_else(|| format!("{} {}", s.amount_total, s.currency));
    Some(PayPage {
        id: s.id,
        amount,
        product_name: s.product_name,
        cancel_url: s.cancel_url,
        error,
        closed,
    })
}

async fn show(State(state): State<Arc<SimState>>, Path(id): Path<String>) -> Response {
    match page(&state, &id, None) {
        Some(p) => render(StatusCode::OK, &p),
        None => (StatusCode::NOT_FOUND, "No such checkout session").into_response(),
    }
}

async fn pay(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> Response {
    let Some(session) = state.session(&id) else {
        return (StatusCode::NOT_FOUND, "No such checkout session").into_response();
    };
    let retry = |status: StatusCode, message: &str| match page(&state, &id, Some(message.to_owned())) {
        Some(p) => render(status, &p),
        None => (StatusCode::NOT_FOUND, "No such checkout session").into_response(),
    };
    let settled = match form.method.as_str() {
        "card" => {
            let number: String = form
                .card_number
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .collect();
            match number.as_str() {
                SUCCESS_CARD => true,
                DECLINE_CARD => {
                    tracing::info!(session = %id, "stripe-sim: card declined (test card)");
                    return retry(
                        StatusCode::PAYMENT_REQUIRED,
                        "Your card was declined. Try another card.",
                    );
                }
                _ => {
                    return retry(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "Your card number is invalid. Use a test card.",
                    )
                }
            }
        }
        "bank_transfer" => false,
        _ => return retry(StatusCode::UNPROCESSABLE_ENTITY, "Choose how to pay."),
    };
    let event = match state.complete(&id, settled) {
        Ok(e) => e,
        Err(_) => return retry(StatusCode::CONFLICT, "This session can no longer be paid."),
    };
    webhooks::deliver(&state, event);
    if !settled {
        let succeeds = form.outcome != "failed";
        let (state, id) = (state.clone(), id.clone());
        let wait = Duration::from_millis(state.config.async_settle_ms);
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            // An admin may have settled it already; then there is nothing left to do.
            if let Ok(event) = state.settle(&id, succeeds) {
                webhooks::deliver(&state, event);
            }
        });
    }
    Redirect::to(&session.success_url.replace("{CHECKOUT_SESSION_ID}", &id)).into_response()
}
