//! Sign-up, confirmation, sign-in (with the second factor), sign-out, password reset and
//! unlock pages. Handlers parse the form, call `AuthService`, and render or redirect.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;

use super::web::{self, Ctx, Page};
use super::{AppState, Error};
use crate::auth::passwords::Password;
use crate::auth::service::{FieldErrors, Next, SignIn};
use crate::auth::sessions::{Flash, Owner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(signup_form).post(signup))
        .route("/confirm", get(confirm))
        .route("/signin", get(signin_form).post(signin))
        .route("/signin/two-factor", get(two_factor_form).post(two_factor))
        .route("/signout", post(signout))
        .route("/password/forgot", get(forgot_form).post(forgot))
        .route("/password/reset", get(reset_form).post(reset))
        .route("/unlock", get(unlock))
}

#[derive(Template)]
#[template(path = "auth/signup.html")]
struct SignupPage {
    page: Page,
    email: String,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "auth/check_email.html")]
struct CheckEmailPage {
    page: Page,
    message: &'static str,
}

#[derive(Template)]
#[template(path = "auth/signin.html")]
struct SigninPage {
    page: Page,
    email: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/two_factor.html")]
struct TwoFactorPage {
    page: Page,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/forgot.html")]
struct ForgotPage {
    page: Page,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "auth/reset.html")]
struct ResetPage {
    page: Page,
    token: String,
    errors: FieldErrors,
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct EmailPasswordForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    remember_me: Option<String>,
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

async fn home(Extension(ctx): Extension<Ctx>) -> Response {
    let to = if ctx.signed_in().is_some() {
        "/account"
    } else {
        "/signin"
    };
    web::redirect(to, None)
}

async fn signup_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    let page = web::page(&state, &ctx, &session, "Create an account").await?;
    let t = SignupPage {
        page,
        email: String::new(),
        errors: FieldErrors::default(),
    };
    web::html(StatusCode::OK, &t, cookie)
}

async fn signup(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<EmailPasswordForm>,
) -> Result<Response, Error> {
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    let outcome = state
        .auth
        .sign_up(&form.email, Password::new(form.password), ctx.ip)
        .await?;
    match outcome {
        Ok(()) => {
            let page = web::page(&state, &ctx, &session, "Check your email").await?;
            let t = CheckEmailPage {
                page,
                message: "We sent a confirmation link to the address you gave. Open it to finish creating your account.",
            };
            web::html(StatusCode::OK, &t, cookie)
        }
        Err(errors) => {
            let page = web::page(&state, &ctx, &session, "Create an account").await?;
            let t = SignupPage {
                page,
                email: form.email,
                errors,
            };
            web::html(StatusCode::UNPROCESSABLE_ENTITY, &t, cookie)
        }
    }
}

async fn confirm(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, Error> {
    let flash = match state.auth.confirm(&q.token).await? {
        Some(_) => Flash::notice("Your email is confirmed. Sign in to continue."),
        None => Flash::alert(
            "That confirmation link is invalid, used or expired. Sign up again to get a new one.",
        ),
    };
    web::redirect_with_flash(&state, &ctx, "/signin", flash).await
}

async fn signin_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    if ctx.signed_in().is_some() {
        return Ok(web::redirect("/account", None));
    }
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    let page = web::page(&state, &ctx, &session, "Sign in").await?;
    let t = SigninPage {
        page,
        email: String::new(),
        error: None,
    };
    web::html(StatusCode::OK, &t, cookie)
}

async fn signin(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<EmailPasswordForm>,
) -> Result<Response, Error> {
    let remember = form.remember_me.is_some();
    let outcome = state
        .auth
        .sign_in(&form.email, Password::new(form.password), ctx.ip)
        .await?;
    let error = match outcome {
        SignIn::Accepted { user, next } => {
            let (owner, to) = match next {
                Next::Done => (
                    Owner {
                        user: Some(user),
                        pending: None,
                        remember,
                    },
                    "/account",
                ),
                Next::EnrolTotp => (
                    Owner {
                        user: Some(user),
                        pending: None,
                        remember,
                    },
                    "/account/two-factor",
                ),
                Next::SecondFactor => (
                    Owner {
                        user: None,
                        pending: Some(user),
                        remember,
                    },
                    "/signin/two-factor",
                ),
            };
            let flash = (next == Next::Done).then(|| Flash::notice("Signed in."));
            let cookie = web::rotate(&state, &ctx, owner, flash).await?;
            return Ok(web::redirect(to, Some(cookie)));
        }
        SignIn::Refused => "That email and password do not match an account, or the account is locked \
                            after too many attempts (we email an unlock link)."
            .to_owned(),
        SignIn::Unconfirmed => "Confirm your email first: open the link we sent you.".to_owned(),
    };
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    let page = web::page(&state, &ctx, &session, "Sign in").await?;
    let t = SigninPage {
        page,
        email: form.email,
        error: Some(error),
    };
    web::html(StatusCode::UNPROCESSABLE_ENTITY, &t, cookie)
}

async fn two_factor_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    let Some(session) = ctx.session.clone().filter(|s| s.pending_user_id.is_some()) else {
        return Ok(web::redirect("/signin", None));
    };
    let page = web::page(&state, &ctx, &session, "Two-factor sign-in").await?;
    web::html(StatusCode::OK, &TwoFactorPage { page, error: None }, None)
}

async fn two_factor(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<CodeForm>,
) -> Result<Response, Error> {
    let Some((session, user)) = ctx
        .session
        .clone()
        .and_then(|s| s.pending_user_id.map(|u| (s, u)))
    else {
        return Ok(web::redirect("/signin", None));
    };
    if state.auth.second_factor(user, &form.code, ctx.ip).await? {
        let owner = Owner {
            user: Some(user),
            pending: None,
            remember: session.remember,
        };
        let cookie = web::rotate(&state, &ctx, owner, Some(Flash::notice("Signed in."))).await?;
        return Ok(web::redirect("/account", Some(cookie)));
    }
    let page = web::page(&state, &ctx, &session, "Two-factor sign-in").await?;
    let t = TwoFactorPage {
        page,
        error: Some(
            "That code is not right. Use the current code from your app, or a recovery code.".to_owned(),
        ),
    };
    web::html(StatusCode::UNPROCESSABLE_ENTITY, &t, None)
}

async fn signout(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Result<Response, Error> {
    let cookie = web::rotate(&state, &ctx, Owner::default(), Some(Flash::notice("Signed out."))).await?;
    Ok(web::redirect("/signin", Some(cookie)))
}

async fn forgot_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
) -> Result<Response, Error> {
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    let page = web::page(&state, &ctx, &session, "Forgot your password?").await?;
    let t = ForgotPage {
        page,
        errors: FieldErrors::default(),
    };
    web::html(StatusCode::OK, &t, cookie)
}

async fn forgot(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<EmailForm>,
) -> Result<Response, Error> {
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    state.auth.forgot(&form.email, ctx.ip).await?;
    let page = web::page(&state, &ctx, &session, "Check your email").await?;
    let t = CheckEmailPage {
        page,
        message: "If that address has an account, we sent it a link to choose a new password. The link works once and expires in an hour.",
    };
    web::html(StatusCode::OK, &t, cookie)
}

async fn reset_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, Error> {
    if !state.auth.reset_token_valid(&q.token).await? {
        let flash = Flash::alert("That reset link is invalid, used or expired. Ask for a new one.");
        return web::redirect_with_flash(&state, &ctx, "/password/forgot", flash).await;
    }
    let (session, cookie) = web::ensure_session(&state, &ctx).await?;
    let page = web::page(&state, &ctx, &session, "Choose a new password").await?;
    let t = ResetPage {
        page,
        token: q.token,
        errors: FieldErrors::default(),
    };
    web::html(StatusCode::OK, &t, cookie)
}

async fn reset(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(form): Form<ResetForm>,
) -> Result<Response, Error> {
    match state
        .auth
        .reset(&form.token, Password::new(form.password))
        .await?
    {
        Ok(()) => {
            let flash = Flash::notice("Your password is changed. Sign in with the new one.");
            let cookie = web::rotate(&state, &ctx, Owner::default(), Some(flash)).await?;
            Ok(web::redirect("/signin", Some(cookie)))
        }
        Err(None) => {
            let flash = Flash::alert("That reset link is invalid, used or expired. Ask for a new one.");
            web::redirect_with_flash(&state, &ctx, "/password/forgot", flash).await
        }
        Err(Some(e)) => {
            let (session, cookie) = web::ensure_session(&state, &ctx).await?;
            let page = web::page(&state, &ctx, &session, "Choose a new password").await?;
            let t = ResetPage {
                page,
                token: form.token,
                errors: FieldErrors {
                    email: None,
                    password: Some(e.to_string()),
                },
            };
            web::html(StatusCode::UNPROCESSABLE_ENTITY, &t, cookie)
        }
    }
}

async fn unlock(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<TokenQuery>,
) -> Result<Response, Error> {
    let flash = if state.auth.unlock(&q.token).await? {
        Flash::notice("Your account is unlocked. Sign in to continue.")
    } else {
        Flash::alert("That unlock link is invalid, used or expired.")
    };
    web::redirect_with_flash(&state, &ctx, "/signin", flash).await
}
