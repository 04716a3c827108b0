//! The account pages: profile and balance, change password, two-factor on/off, sign-in
//! history, delete. Every page needs a signed-in user; admins without TOTP may only enrol.

use askama::Template;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use ringledger_domain::{Currency, Money};
use serde::Deserialize;
use sqlx::Row;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::auth::passwords::Password;
use crate::auth::sessions::{Flash, Owner};
use crate::auth::users::{self, SignInEvent, User};
use crate::auth::{totp, Role};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(show))
        .route("/account/password", post(change_password))
        .route("/account/two-factor", get(two_factor).post(enable_two_factor))
        .route("/account/two-factor/disable", post(disable_two_factor))
        .route("/account/history", get(history))
        .route("/account/delete", get(delete_form).post(delete))
}

/// The balance as the balances projection has it.
pub struct BalanceLine {
    pub available: String,
    pub reserved: String,
    pub currency: String,
}

#[derive(Template)]
#[template(path = "account/show.html")]
struct AccountPage {
    page: Page,
    user: User,
    balance: Option<BalanceLine>,
    current_password_error: Option<String>,
    password_error: Option<String>,
}

#[derive(Template)]
#[template(path = "account/delete.html")]
struct DeletePage {
    page: Page,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account/two_factor.html")]
struct TwoFactorPage {
    page: Page,
    enabled: bool,
    is_admin: bool,
    secret: String,
    qr_svg: String,
    recovery_codes: Vec<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account/history.html")]
struct HistoryPage {
    page: Page,
    events: Vec<SignInEvent>,
}

#[derive(Deserialize)]
struct PasswordChange {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct DisableForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    password: String,
}

const HISTORY_ROWS: i64 = 50;

async fn balance(state: &AppState, user: &User) -> Option<BalanceLine> {
    // The read model may not exist yet (runner not started) or lag: then there is no line.
    let row =
        sqlx::query("SELECT currency, available_micros, reserved_micros FROM balances WHERE account_id = $1")
            .bind(user.id.0)
            .fetch_optional(&state.pool)
            .await
            .ok()??;
    let currency = Currency::parse(row.try_get::<String, _>("currency").ok()?.as_str()).ok()?;
    let money = |col: &str| {
        row.try_get::<i64, _>(col)
            .ok()
            .map(|m| Money::from_micros(m, currency))
    };
    Some(BalanceLine {
        available: money("available_micros")?.amount_string(),
        reserved: money("reserved_micros")?.amount_string(),
        currency: currency.as_str().to_owned(),
    })
}

async fn account_page(
    state: &AppState,
    ctx: &Ctx,
    errors: (Option<String>, Option<String>),
) -> Result<Response, Error> {
    let (session, user) = match web::require_user(ctx, "/account") {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let status = if errors.0.is_some() || errors.1.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let t = AccountPage {
        page: web::page(state, ctx, session, "Your account").await?,
        user: user.clone(),
        balance: balance(state, user).await,
        current_password_error: errors.0,
        password_error: errors.1,
    };
    web::html(status, &t, None)
}

async fn show(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    account_page(&state, &ctx, (None, None)).await
}

async fn change_password(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<PasswordChange>,
) -> Result<Response, Error> {
    let user = match web::require_user(&ctx, "/account/password") {
        Ok((_, u)) => u.clone(),
        Err(gate) => return Ok(gate.into_response()),
    };
    let outcome = state
        .auth
        .change_password(
            &user,
            Password::new(form.current_password),
            Password::new(form.password),
        )
        .await?;
    match outcome {
        Ok(()) => {
            // A privilege change: new session id, every other session ended.
            let owner = Owner {
                user: Some(user.id),
                pending: None,
                remember: ctx.session.as_ref().is_some_and(|s| s.remember),
            };
            let cookie = web::rotate(
                &state,
                &ctx,
                owner,
                Some(Flash::notice("Your password is changed.")),
            )
            .await?;
            crate::auth::sessions::destroy_all_for(state.auth.pool(), user.id, Some(&current_hash(&cookie)))
                .await?;
            Ok(web::redirect("/account", Some(cookie)))
        }
        Err((current, new)) => account_page(&state, &ctx, (current, new)).await,
    }
}

/// The stored hash of the session id inside a `Set-Cookie` value.
fn current_hash(set_cookie: &str) -> Vec<u8> {
    let value = set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .unwrap_or_default();
    crate::auth::sha256(value)
}

async fn two_factor(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, Error> {
    let (session, user) = match web::require_user(&ctx, uri.path()) {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let (secret, qr_svg) = if user.totp_enabled {
        (String::new(), String::new())
    } else {
        // Reuse a pending secret so a reload (or a prefetch) does not change it under the user.
        let raw = state.auth.enrolment_secret(user).await?;
        let label = user.email.clone().unwrap_or_default();
        (totp::base32(&raw), totp::qr_svg(&raw, &label)?)
    };
    let t = TwoFactorPage {
        page: web::page(&state, &ctx, session, "Two-factor sign-in").await?,
        enabled: user.totp_enabled,
        is_admin: user.role == Role::Admin,
        secret,
        qr_svg,
        recovery_codes: Vec::new(),
        error: None,
    };
    web::html(StatusCode::OK, &t, None)
}

async fn enable_two_factor(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<CodeForm>,
) -> Result<Response, Error> {
    let (session, user) = match web::require_user(&ctx, "/account/two-factor") {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let Some(secret) = state.auth.totp_secret(user).filter(|_| !user.totp_enabled) else {
        return Ok(web::redirect("/account/two-factor", None));
    };
    let secret = secret.as_slice();
    if !totp::verify_and_use(state.auth.pool(), user.id, secret, &form.code).await? {
        let label = user.email.clone().unwrap_or_default();
        let t = TwoFactorPage {
            page: web::page(&state, &ctx, session, "Two-factor sign-in").await?,
            enabled: false,
            is_admin: user.role == Role::Admin,
            secret: totp::base32(secret),
            qr_svg: totp::qr_svg(secret, &label)?,
            recovery_codes: Vec::new(),
            error: Some("That code is not right. Enter the 6-digit code your app shows now.".to_owned()),
        };
        return web::html(StatusCode::UNPROCESSABLE_ENTITY, &t, None);
    }
    let codes = totp::enable(state.auth.pool(), user.id).await?;
    tracing::info!(user = %user.id, "two-factor sign-in enabled");
    // A privilege change: rotate the session.
    let owner = Owner {
        user: Some(user.id),
        pending: None,
        remember: session.remember,
    };
    let cookie = web::rotate(&state, &ctx, owner, None).await?;
    let mut page = web::page(&state, &ctx, session, "Two-factor sign-in").await?;
    page.flash = Some(Flash::notice("Two-factor sign-in is on."));
    // The form on this page must carry the new session's token.
    page.csrf_token = new_session_csrf(&state, &cookie).await?;
    let t = TwoFactorPage {
        page,
        enabled: true,
        is_admin: user.role == Role::Admin,
        secret: String::new(),
        qr_svg: String::new(),
        recovery_codes: codes,
        error: None,
    };
    web::html(StatusCode::OK, &t, Some(cookie))
}

async fn new_session_csrf(state: &AppState, set_cookie: &str) -> Result<String, Error> {
    let token: Option<String> = sqlx::query_scalar("SELECT csrf_token FROM sessions WHERE id_hash = $1")
        .bind(current_hash(set_cookie))
        .fetch_optional(state.auth.pool())
        .await?;
    Ok(token.unwrap_or_default())
}

async fn disable_two_factor(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<DisableForm>,
) -> Result<Response, Error> {
    let user = match web::require_user(&ctx, "/account/two-factor/disable") {
        Ok((_, u)) => u.clone(),
        Err(gate) => return Ok(gate.into_response()),
    };
    if user.role == Role::Admin {
        let flash = Flash::alert("Admins must keep two-factor sign-in on.");
        return web::redirect_with_flash(&state, &ctx, "/account/two-factor", flash).await;
    }
    let ok = (!form.code.is_empty() && state.auth.check_code(&user, &form.code).await?)
        || (!form.password.is_empty()
            && state
                .auth
                .check_password(&user, Password::new(form.password))
                .await);
    let flash = if ok {
        totp::disable(state.auth.pool(), user.id).await?;
        tracing::info!(user = %user.id, "two-factor sign-in disabled");
        Flash::notice("Two-factor sign-in is off.")
    } else {
        Flash::alert("To turn two-factor sign-in off, enter a current code or your password.")
    };
    web::redirect_with_flash(&state, &ctx, "/account/two-factor", flash).await
}

async fn history(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    let (session, user) = match web::require_user(&ctx, "/account/history") {
        Ok(x) => x,
        Err(gate) => return Ok(gate.into_response()),
    };
    let t = HistoryPage {
        page: web::page(&state, &ctx, session, "Sign-in history").await?,
        events: users::history(state.auth.pool(), user.id, HISTORY_ROWS).await?,
    };
    web::html(StatusCode::OK, &t, None)
}

async fn delete_page(state: &AppState, ctx: &Ctx, error: Option<String>) -> Result<Response, Error> {
    let session = match web::require_user(ctx, "/account/delete") {
        Ok((s, _)) => s,
        Err(gate) => return Ok(gate.into_response()),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let t = DeletePage {
        page: web::page(state, ctx, session, "Delete my account").await?,
        error,
    };
    web::html(status, &t, None)
}

async fn delete_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    delete_page(&state, &ctx, None).await
}

async fn delete(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, Error> {
    let user = match web::require_user(&ctx, "/account/delete") {
        Ok((_, u)) => u.clone(),
        Err(gate) => return Ok(gate.into_response()),
    };
    if !state
        .auth
        .check_password(&user, Password::new(form.password))
        .await
    {
        return delete_page(&state, &ctx, Some("That is not your password.".to_owned())).await;
    }
    state.auth.delete_user(&user).await?;
    let flash = Flash::notice("Your account and personal data are deleted.");
    let cookie = web::rotate(
        &state,
        &Ctx {
            session: None,
            ..ctx.clone()
        },
        Owner::default(),
        Some(flash),
    )
    .await?;
    Ok(web::redirect("/signin", Some(cookie)))
}
