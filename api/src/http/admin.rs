//! `/admin`: every route here sits behind `web::admin_only` (signed in, admin role, TOTP on).
//! The landing page lists what the admin area has so far.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{middleware, Extension, Router};

use super::web::{self, Ctx, Page};
use super::{AppState, Error};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(landing))
        .merge(super::admin_calls::routes())
        .route_layer(middleware::from_fn(web::admin_only))
}

pub struct Section {
    pub name: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "admin/landing.html")]
struct Landing {
    page: Page,
    sections: Vec<Section>,
}

async fn landing(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    let Some(session) = ctx.session.as_ref() else {
        return Err(Error::Forbidden);
    };
    let pool = &state.pool;
    let (users, admins, locked): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE deleted_at IS NULL),
                count(*) FILTER (WHERE deleted_at IS NULL AND role = 'admin'),
                count(*) FILTER (WHERE deleted_at IS NULL AND locked_at IS NOT NULL)
           FROM users",
    )
    .fetch_one(pool)
    .await?;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE account_opened_at IS NOT NULL")
        .fetch_one(pool)
        .await?;
    let (queued, dead): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'dead') FROM jobs",
    )
    .fetch_one(pool)
    .await
    .unwrap_or((0, 0));
    let sections = vec![
        Section {
            name: "People",
            detail: format!("{users} users, of whom {admins} admins; {locked} locked"),
        },
        Section {
            name: "Ledger accounts",
            detail: format!("{accounts} opened"),
        },
        Section {
            name: "Durable jobs",
            detail: format!("{queued} queued, {dead} dead letters (`ringledger-replay jobs`)"),
        },
        Section {
            name: "Top-up offers",
            detail: "tiers, bonuses and the custom range customers buy credit in, at /admin/top-up"
                .to_owned(),
        },
        Section {
            name: "Fraud",
            detail: "flagged calls and accounts at /admin/fraud; high-risk ranges at /admin/fraud/ranges"
                .to_owned(),
        },
        Section {
            name: "Calls",
            detail: "live calls at /admin/calls (End call), the call log at /admin/calls/log".to_owned(),
        },
        Section {
            name: "Operations",
            detail: "health at /healthz and /readyz, metrics at /metrics".to_owned(),
        },
    ];
    let t = Landing {
        page: web::page(&state, &ctx, session, "Admin").await?,
        sections,
    };
    web::html(StatusCode::OK, &t, None)
}
