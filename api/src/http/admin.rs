//! `/admin`: every route here sits behind `web::admin_only` (signed in, admin role, TOTP on).
//! The landing page lists what the admin area has so far.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{middleware, Extension, Router};

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::auth::sessions::Flash;
use crate::payments::inbox::{self, DeadWebhook};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(landing))
        .merge(super::admin_calls::routes())
        .route("/admin/payments/webhooks", get(dead_webhooks))
        .route("/admin/payments/webhooks/{job_id}/retry", post(retry_webhook))
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
            name: "Stripe webhooks",
            detail: "dead-lettered events and retry at /admin/payments/webhooks".to_owned(),
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

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
struct DeadWebhooks {
    page: Page,
    dead: Vec<DeadWebhook>,
}

/// The dead-lettered Stripe webhook events (newest 200).
async fn dead_webhooks(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    let Some(session) = ctx.session.as_ref() else {
        return Err(Error::Forbidden);
    };
    let dead = inbox::dead_letters(&state.pool, 200).await?;
    let t = DeadWebhooks {
        page: web::page(&state, &ctx, session, "Stripe webhooks").await?,
        dead,
    };
    web::html(StatusCode::OK, &t, None)
}

/// Sends one dead webhook job back to the queue.
async fn retry_webhook(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(job_id): Path<i64>,
) -> Result<Response, Error> {
    let retried = inbox::retry_dead(&state.pool, job_id)
        .await
        .map_err(|e| Error::Internal(anyhow::Error::new(e)))?;
    let actor = ctx.signed_in().map(|u| u.id.to_string()).unwrap_or_default();
    let flash = if retried {
        tracing::info!(job_id, actor, "admin retried a dead stripe webhook job");
        Flash::notice("The event is back on the queue.")
    } else {
        Flash::alert("No dead webhook job has that id (it may have been retried already).")
    };
    web::redirect_with_flash(&state, &ctx, "/admin/payments/webhooks", flash).await
}
