//! `/admin/fraud`: flagged calls and accounts with their evidence, and the high-risk ranges
//! admins edit (every change audited, docs/decisions/0009-fraud-rules.md). Behind
//! `web::admin_only` like all of `/admin`; forms carry the session's CSRF token, checked by the
//! context middleware before a handler runs. Never shows a phone number: flags name prefixes.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{middleware, Extension, Form, Router};
use ringledger_domain::fraud::RiskRange;
use ringledger_domain::AccountId;
use ringledger_projections::fraud::{flags_page, FlagView};
use serde::Deserialize;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::auth::sessions::Flash;
use crate::fraud::ranges::{self, RangeRow};

/// Flags shown on one page at most.
const PAGE_FLAGS: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/fraud", get(flags))
        .route("/admin/fraud/ranges", get(ranges_page).post(add_range))
        .route("/admin/fraud/ranges/remove", post(remove_range))
        .route_layer(middleware::from_fn(web::admin_only))
}

/// An account's flags summed, for the accounts table.
pub struct AccountLine {
    pub account_id: String,
    pub flags: i64,
    pub score: i64,
    pub frozen_for_fraud: bool,
}

#[derive(Template)]
#[template(path = "admin/fraud.html")]
struct FlagsPage {
    page: Page,
    account: Option<String>,
    accounts: Vec<AccountLine>,
    flags: Vec<FlagView>,
    freeze_score: u32,
    window_hours: i64,
}

#[derive(Deserialize)]
struct FlagsQuery {
    account: Option<String>,
}

async fn flags(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<FlagsQuery>,
) -> Result<Response, Error> {
    let session = ctx.session.as_ref().ok_or(Error::Forbidden)?;
    let account = match q.account.as_deref().filter(|a| !a.is_empty()) {
        Some(text) => Some(AccountId(uuid::Uuid::parse_str(text.trim()).map_err(|_| {
            Error::BadRequest(format!("`{text}` is not an account id (a UUID)"))
        })?)),
        None => None,
    };
    let flags = flags_page(&state.pool, account, PAGE_FLAGS)
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let rows: Vec<(uuid::Uuid, i64, i64, bool)> = sqlx::query_as(
        "SELECT f.account_id, count(*), sum(f.score)::bigint,
                EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'Account'
                          AND e.aggregate_id = f.account_id::text AND e.event_type = 'AccountFrozen'
                          AND e.payload->>'reason' = 'fraud'
                          AND NOT EXISTS (SELECT 1 FROM events u WHERE u.aggregate_type = 'Account'
                                            AND u.aggregate_id = e.aggregate_id AND u.event_type = 'AccountUnfrozen'
                                            AND u.payload->>'reason' = 'fraud' AND u.sequence > e.sequence))
           FROM fraud_flags f
          WHERE $1::uuid IS NULL OR f.account_id = $1
          GROUP BY f.account_id ORDER BY sum(f.score) DESC LIMIT 100",
    )
    .bind(account.map(|a| a.0))
    .fetch_all(&state.pool)
    .await?;
    let accounts = rows
        .into_iter()
        .map(|(id, flags, score, frozen)| AccountLine {
            account_id: id.to_string(),
            flags,
            score,
            frozen_for_fraud: frozen,
        })
        .collect();
    let t = &state.fraud.config().rules;
    let page = FlagsPage {
        page: web::page(&state, &ctx, session, "Fraud flags").await?,
        account: account.map(|a| a.to_string()),
        accounts,
        flags,
        freeze_score: t.freeze_score,
        window_hours: t.score_window_hours,
    };
    web::html(StatusCode::OK, &page, None)
}

#[derive(Template)]
#[template(path = "admin/fraud_ranges.html")]
struct RangesPage {
    page: Page,
    ranges: Vec<RangeRow>,
    prefix: String,
    range_label: String,
    error: String,
}

async fn render_ranges(
    state: &AppState,
    ctx: &Ctx,
    status: StatusCode,
    form: Option<&RangeForm>,
    error: String,
) -> Result<Response, Error> {
    let session = ctx.session.as_ref().ok_or(Error::Forbidden)?;
    let page = RangesPage {
        page: web::page(state, ctx, session, "High-risk ranges").await?,
        ranges: ranges::list(&state.pool)
            .await
            .map_err(|e| Error::Internal(e.into()))?,
        prefix: form.map(|f| f.prefix.clone()).unwrap_or_default(),
        range_label: form.map(|f| f.label.clone()).unwrap_or_default(),
        error,
    };
    web::html(status, &page, None)
}

async fn ranges_page(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    render_ranges(&state, &ctx, StatusCode::OK, None, String::new()).await
}

#[derive(Deserialize)]
struct RangeForm {
    prefix: String,
    label: String,
}

async fn add_range(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<RangeForm>,
) -> Result<Response, Error> {
    let actor = ctx.signed_in().ok_or(Error::Forbidden)?.id;
    let range = match RiskRange::parse(&form.prefix, &form.label) {
        Ok(range) => range,
        Err(e) => {
            return render_ranges(
                &state,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&form),
                e.to_string(),
            )
            .await
        }
    };
    match ranges::add(&state.pool, actor, &range).await {
        Ok(()) => {
            tracing::info!(actor = %actor, prefix = %range.prefix, "high-risk range added");
            let flash = Flash::notice(format!(
                "Range +{} added; calls priced inside it are flagged from now on.",
                range.prefix
            ));
            web::redirect_with_flash(&state, &ctx, "/admin/fraud/ranges", flash).await
        }
        Err(crate::fraud::FraudError::Range(e)) => {
            render_ranges(
                &state,
                &ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&form),
                e.to_string(),
            )
            .await
        }
        Err(e) => Err(Error::Internal(e.into())),
    }
}

#[derive(Deserialize)]
struct RemoveForm {
    prefix: String,
}

async fn remove_range(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<RemoveForm>,
) -> Result<Response, Error> {
    let actor = ctx.signed_in().ok_or(Error::Forbidden)?.id;
    let removed = ranges::remove(&state.pool, actor, form.prefix.trim())
        .await
        .map_err(|e| Error::Internal(e.into()))?;
    let flash = if removed {
        tracing::info!(actor = %actor, prefix = %form.prefix.trim(), "high-risk range removed");
        Flash::notice(format!("Range +{} removed.", form.prefix.trim()))
    } else {
        Flash::alert("That range is not on the list (already removed?).")
    };
    web::redirect_with_flash(&state, &ctx, "/admin/fraud/ranges", flash).await
}
