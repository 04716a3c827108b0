//! Buying credit: the buy page (tiers and a custom amount), the POST that creates a Stripe
//! Checkout Session and sends the browser to its payment page, the success page that shows
//! "processing" until the webhook side has credited the payment and then the new balance (the
//! `balance-poll` Stimulus controller polls `/account/balance.json`), and the cancel page.
//! Nothing here credits an account: only a verified webhook does.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Form, Json, Router};
use ringledger_domain::topup::{minor, Choice, CUSTOM_TIER};
use ringledger_domain::{AccountId, Currency, Money, PaymentId};
use serde::Deserialize;
use serde_json::json;
use sqlx::Row;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::checkout::{new_nonce, CheckoutError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account/credit", get(buy).post(start))
        .route("/account/credit/success", get(success))
        .route("/account/credit/cancel", get(cancel))
        .route("/account/balance.json", get(balance_json))
}

pub struct TierView {
    pub id: String,
    pub price: String,
    /// "" when the tier has no bonus.
    pub bonus: String,
}

#[derive(Template)]
#[template(path = "checkout/buy.html")]
struct BuyPage {
    page: Page,
    configured: bool,
    tiers: Vec<TierView>,
    /// The hint of the custom amount field ("Between … and …."), when one is offered.
    custom: Option<String>,
    currency: String,
    nonce: String,
    amount: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "checkout/success.html")]
struct SuccessPage {
    page: Page,
    amount: String,
    /// `paid`, `pending` (pay later, not settled) or `unpaid` (not completed).
    state: &'static str,
    credited: bool,
    balance: String,
    poll_url: String,
}

#[derive(Template)]
#[template(path = "checkout/cancel.html")]
struct CancelPage {
    page: Page,
}

#[derive(Deserialize)]
struct BuyForm {
    #[serde(default)]
    nonce: String,
    #[serde(default)]
    tier: String,
    #[serde(default)]
    amount: String,
}

async fn buy_page(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    amount: String,
    error: Option<String>,
) -> Result<Response, Error> {
    let (session, _) = match web::require_user(ctx, "/account/credit") {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let offers = state.checkout.offers().await.map_err(internal)?;
    let (tiers, custom, currency) = match offers.offers() {
        Some(o) => (
            o.tiers
                .iter()
                .map(|t| TierView {
                    id: t.id.clone(),
                    price: minor::display(t.price),
                    bonus: t
                        .price
                        .mul_div_floor(i64::from(t.bonus_bps), 10_000)
                        .ok()
                        .filter(Money::is_positive)
                        .map(minor::display)
                        .unwrap_or_default(),
                })
                .collect(),
            o.custom
                .as_ref()
                .map(|c| format!("Between {} and {}.", minor::display(c.min), minor::display(c.max))),
            o.currency.as_str().to_owned(),
        ),
        None => (Vec::new(), None, String::new()),
    };
    let t = BuyPage {
        page: web::page(state, ctx, session, "Buy credit").await?,
        configured: state.checkout.stripe().is_some(),
        tiers,
        custom,
        currency,
        nonce: new_nonce(),
        amount,
        error,
    };
    let mut res = web::html(status, &t, None)?;
    // The form redirects to Stripe's payment page: the CSP must allow that form action.
    if let Some(stripe) = state.checkout.stripe() {
        let csp = web::content_security_policy(Some(&stripe.hosted_checkout_origin()));
        if let Ok(v) = HeaderValue::from_str(&csp) {
            res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    Ok(res)
}

async fn buy(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    buy_page(&state, &ctx, StatusCode::OK, String::new(), None).await
}

async fn start(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<BuyForm>,
) -> Result<Response, Error> {
    let user = match web::require_user(&ctx, "/account/credit") {
        Ok((_, u)) => u.clone(),
        Err(gate) => return Ok(gate.into_response()),
    };
    let refuse = |message: String| {
        buy_page(
            &state,
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            form.amount.clone(),
            Some(message),
        )
    };
    let choice = if form.tier == CUSTOM_TIER {
        let offers = state.checkout.offers().await.map_err(internal)?;
        let currency = offers.offers().map_or(Currency::USD, |o| o.currency);
        match Money::parse(form.amount.trim(), currency) {
            Ok(m) => Choice::Custom(m),
            Err(e) => return refuse(format!("Amount: {e}")).await,
        }
    } else {
        Choice::Tier(form.tier.clone())
    };
    match state.checkout.start(user.id, &choice, &form.nonce).await {
        Ok(url) => Ok(web::redirect(&url, None)),
        Err(CheckoutError::Offers(e)) => refuse(e.to_string()).await,
        Err(e @ (CheckoutError::BadNonce | CheckoutError::NotConfigured)) => refuse(e.to_string()).await,
        Err(e) => {
            tracing::warn!(error = %e, "checkout session not created");
            refuse(
                "We could not reach our payment provider. Nothing was charged; try again in a moment."
                    .to_owned(),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct SuccessQuery {
    #[serde(default)]
    session_id: String,
}

async fn success(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<SuccessQuery>,
) -> Result<Response, Error> {
    let (session, user) = match web::require_user(&ctx, "/account/credit/success") {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let Some(stripe_session) = state
        .checkout
        .session_for(user.id, &q.session_id)
        .await
        .map_err(internal)?
    else {
        return Err(Error::NotFound);
    };
    let amount = match (stripe_session.amount_total, stripe_session.currency.as_deref()) {
        (Some(total), Some(code)) => Currency::parse(&code.to_ascii_uppercase())
            .ok()
            .and_then(|c| minor::from_minor(total, c).ok())
            .map(minor::display)
            .unwrap_or_default(),
        _ => String::new(),
    };
    let payment = stripe_session
        .payment_intent
        .as_deref()
        .and_then(|p| PaymentId::parse(p).ok());
    let page_state = match (
        stripe_session.status.as_deref(),
        stripe_session.payment_status.as_str(),
    ) {
        (_, "paid") => "paid",
        (Some("complete"), _) if payment.is_some() => "pending",
        _ => "unpaid",
    };
    let credited = match &payment {
        Some(p) => credited(&state, user.id, p).await,
        None => false,
    };
    let t = SuccessPage {
        page: web::page(&state, &ctx, session, "Payment").await?,
        amount,
        state: page_state,
        credited,
        balance: balance(&state, user.id)
            .await
            .map(|b| minor::display(b.0))
            .unwrap_or_default(),
        poll_url: payment
            .map(|p| format!("/account/balance.json?payment={}", p.as_str()))
            .unwrap_or_default(),
    };
    web::html(StatusCode::OK, &t, None)
}

async fn cancel(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    let session = match web::require_user(&ctx, "/account/credit/cancel") {
        Ok((s, _)) => s,
        Err(gate) => return Ok(gate.into_response()),
    };
    let t = CancelPage {
        page: web::page(&state, &ctx, session, "Payment cancelled").await?,
    };
    web::html(StatusCode::OK, &t, None)
}

#[derive(Deserialize)]
struct BalanceQuery {
    payment: Option<String>,
}

/// The signed-in account's balance, and whether a payment has been credited yet.
async fn balance_json(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<BalanceQuery>,
) -> Response {
    let Some(user) = ctx.signed_in() else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "sign in first" })),
        )
            .into_response();
    };
    let payment = match q.payment.as_deref().map(PaymentId::parse).transpose() {
        Ok(p) => p,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": "payment is not a payment id" })),
            )
                .into_response()
        }
    };
    let money = |m: Money| json!({ "amount": m.amount_string(), "currency": m.currency().as_str() });
    let balance = balance(&state, user.id).await;
    let mut body = json!({
        "available": balance.map(|b| money(b.0)),
        "reserved": balance.map(|b| money(b.1)),
        "available_display": balance.map(|b| minor::display(b.0)),
    });
    if let Some(p) = payment {
        body["payment"] = json!({ "id": p.as_str(), "credited": credited(&state, user.id, &p).await });
    }
    let mut res = Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// (available, reserved) from the balances read model; none before the account's first event
/// is projected.
async fn balance(state: &AppState, account: AccountId) -> Option<(Money, Money)> {
    let row =
        sqlx::query("SELECT currency, available_micros, reserved_micros FROM balances WHERE account_id = $1")
            .bind(account.0)
            .fetch_optional(&state.pool)
            .await
            .ok()??;
    let currency = Currency::parse(row.try_get::<String, _>("currency").ok()?.as_str()).ok()?;
    Some((
        Money::from_micros(row.try_get("available_micros").ok()?, currency),
        Money::from_micros(row.try_get("reserved_micros").ok()?, currency),
    ))
}

/// True once the statement (a projection of the Account stream) has the purchase's credit.
async fn credited(state: &AppState, account: AccountId, payment: &PaymentId) -> bool {
    sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS (SELECT 1 FROM statement_lines
                         WHERE account_id = $1 AND kind = 'CreditPurchased'
                           AND (reference = $2 OR starts_with(reference, $2 || ' ')))",
    )
    .bind(account.0)
    // The statement's reference for a purchase (ringledger_projections::statement): `payment
    // pi_…`, followed by ` (checkout cs_…)` when the purchase came through Checkout.
    .bind(format!("payment {}", payment.as_str()))
    .fetch_one(&state.pool)
    .await
    .unwrap_or(false)
}

fn internal(e: CheckoutError) -> Error {
    Error::Internal(anyhow::Error::new(e))
}
