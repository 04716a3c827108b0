//! `/account/calls`: the signed-in customer's call history from the `call_log` read model —
//! time, country, masked number, duration, cost, cause — newest first, a page at a time. Only
//! the caller's own calls: the account is the signed-in user's, never a parameter.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::calls::listing::{self, CallFilter, CallRow};

pub fn router() -> Router<AppState> {
    Router::new().route("/account/calls", get(history))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PageQuery {
    page: i64,
}

#[derive(Template)]
#[template(path = "account/calls.html")]
struct CallsPage {
    page: Page,
    calls: Vec<CallRow>,
    admin: bool,
    prev_href: String,
    next_href: String,
}

async fn history(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<PageQuery>,
) -> Result<Response, Error> {
    let (session, user) = match web::require_user(&ctx, "/account/calls") {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let page_no = q.page.clamp(0, 100_000);
    let filter = CallFilter {
        account: Some(user.id),
        page: page_no,
        ..CallFilter::default()
    };
    let (calls, more) = listing::log_page(&state.pool, &filter)
        .await
        .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
    let t = CallsPage {
        page: web::page(&state, &ctx, session, "Your calls").await?,
        calls,
        admin: false,
        prev_href: if page_no > 0 {
            format!("/account/calls?page={}", page_no - 1)
        } else {
            String::new()
        },
        next_href: if more {
            format!("/account/calls?page={}", page_no + 1)
        } else {
            String::new()
        },
    };
    web::html(StatusCode::OK, &t, None)
}
