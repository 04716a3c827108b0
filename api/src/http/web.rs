//! What every web page shares: the request context (session, user, client IP) loaded once by
//! middleware, CSRF enforcement on every unsafe request, security headers, the layout's
//! context (`Page`), and helpers to render, redirect and flash. Never logs a session id or a
//! CSRF token.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::{AppState, Error};
use crate::auth::sessions::{self, Flash, Owner, Session};
use crate::auth::users::{self, User};
use crate::auth::Role;

/// Largest form body accepted (forms here are a few fields).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// The request's session, user and client address, put in the extensions by [`context`].
#[derive(Clone, Default)]
pub struct Ctx {
    pub session: Option<Session>,
    pub user: Option<User>,
    pub ip: Option<IpAddr>,
}

impl Ctx {
    pub fn signed_in(&self) -> Option<&User> {
        self.session.as_ref().and(self.user.as_ref())
    }
}

/// The layout's context: every page template has a `page: Page` field.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub title: String,
    pub signed_in: bool,
    pub is_admin: bool,
    pub email: String,
    pub csrf_token: String,
    pub flash: Option<Flash>,
}

impl Page {
    /// A page with no session (error pages).
    pub fn bare(title: &str) -> Page {
        Page {
            title: title.to_owned(),
            ..Page::default()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub page: Page,
    pub status: u16,
    pub message: String,
}

/// Loads the session and user, and refuses unsafe requests without the session's CSRF token.
pub async fn context(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, Error> {
    let (mut parts, body) = req.into_parts();
    let auth = &state.auth;
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let cookie = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| sessions::from_cookie_header(h, auth.secure()));
    let session = match cookie {
        Some(value) => sessions::load(auth.pool(), auth.config(), &value).await?,
        None => None,
    };
    let user = match session.as_ref().and_then(|s| s.user_id) {
        Some(id) => users::by_id(auth.pool(), id).await?,
        None => None,
    };
    let body = if is_unsafe(&parts.method) {
        let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| Error::BadRequest("the form is too large".to_owned()))?;
        let given = form_field(&bytes, crate::auth::csrf::FIELD);
        let expected = session.as_ref().map(|s| s.csrf_token.as_str()).unwrap_or("");
        if !crate::auth::csrf::matches(expected, given.as_deref().unwrap_or("")) {
            tracing::warn!(
                path = parts.uri.path(),
                "form refused: missing or wrong CSRF token"
            );
            return Err(Error::Csrf);
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(Ctx { session, user, ip });
    Ok(next.run(Request::from_parts(parts, body)).await)
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The CSP: no inline script or style; forms post to us, and to `form_origin` when given.
pub fn content_security_policy(form_origin: Option<&str>) -> String {
    // The one inline style allowed is Turbo's progress-bar stylesheet, by its hash
    // (tests/browser/auth.mjs fails on any CSP violation, so a Turbo update that changes
    // it is caught).
    let form_action = match form_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'self'; script-src 'self'; \
         style-src 'self' 'sha256-WAyOw4V+FqDc35lQPyRADLBWbuNK8ahvYEaQIYF1+Ps='; img-src 'self' data:; \
         frame-ancestors 'none'; base-uri 'self'; form-action {form_action}"
    )
}

/// The CSP (unless the page set its own) and the other headers every response carries.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // A page may widen its own policy (the buy page's form redirects to Stripe).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(v) = HeaderValue::from_str(&content_security_policy(None)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if state.auth.secure() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// A session for a page that shows a form: the current one, or a new anonymous one (with
/// the `Set-Cookie` to send).
pub async fn ensure_session(state: &AppState, ctx: &Ctx) -> Result<(Session, Option<String>), Error> {
    if let Some(s) = &ctx.session {
        return Ok((s.clone(), None));
    }
    let auth = &state.auth;
    let (id, session) = sessions::create(auth.pool(), auth.config(), Owner::default()).await?;
    Ok((session, Some(sessions::set_cookie(&id, auth.secure(), None))))
}

/// The layout context for `title`, taking (and clearing) the session's flash.
pub async fn page(state: &AppState, ctx: &Ctx, session: &Session, title: &str) -> Result<Page, Error> {
    if session.flash.is_some() {
        sessions::clear_flash(state.auth.pool(), &session.id_hash).await?;
    }
    let user = ctx.signed_in();
    Ok(Page {
        title: title.to_owned(),
        signed_in: user.is_some(),
        is_admin: user.is_some_and(|u| u.role == Role::Admin),
        email: user.and_then(|u| u.email.clone()).unwrap_or_default(),
        csrf_token: session.csrf_token.clone(),
        flash: session.flash.clone(),
    })
}

/// Renders `template` with `status`, adding `set_cookie` if a session was just created.
pub fn html(
    status: StatusCode,
    template: &impl Template,
    set_cookie: Option<String>,
) -> Result<Response, Error> {
    let body = template.render()?;
    let mut res = (status, Html(body)).into_response();
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// A 303 redirect, with an optional cookie.
pub fn redirect(to: &str, set_cookie: Option<String>) -> Response {
    let mut res = Redirect::to(to).into_response();
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// Redirects to `to` with a flash message shown there.
pub async fn redirect_with_flash(
    state: &AppState,
    ctx: &Ctx,
    to: &str,
    flash: Flash,
) -> Result<Response, Error> {
    let (session, cookie) = ensure_session(state, ctx).await?;
    sessions::set_flash(state.auth.pool(), &session.id_hash, &flash).await?;
    Ok(redirect(to, cookie))
}

/// Starts a fresh session for `owner` (rotation), ending the current one; returns its cookie.
pub async fn rotate(
    state: &AppState,
    ctx: &Ctx,
    owner: Owner,
    flash: Option<Flash>,
) -> Result<String, Error> {
    let auth = &state.auth;
    if let Some(old) = &ctx.session {
        sessions::destroy(auth.pool(), &old.id_hash).await?;
    }
    let (id, session) = sessions::create(auth.pool(), auth.config(), owner).await?;
    if let Some(f) = flash {
        sessions::set_flash(auth.pool(), &session.id_hash, &f).await?;
    }
    let max_age = owner
        .remember
        .then(|| auth.config().remember_days.saturating_mul(86_400));
    Ok(sessions::set_cookie(&id, auth.secure(), max_age))
}

/// Where a request without the right sign-in goes.
pub enum Gate {
    SignIn,
    EnrolTotp,
}

impl IntoResponse for Gate {
    fn into_response(self) -> Response {
        match self {
            Gate::SignIn => Redirect::to("/signin").into_response(),
            Gate::EnrolTotp => Redirect::to("/account/two-factor").into_response(),
        }
    }
}

/// The signed-in user, or where to go instead. Admins without TOTP may only enrol.
pub fn require_user<'a>(ctx: &'a Ctx, path: &str) -> Result<(&'a Session, &'a User), Gate> {
    let (Some(session), Some(user)) = (ctx.session.as_ref(), ctx.user.as_ref()) else {
        return Err(Gate::SignIn);
    };
    if user.role == Role::Admin && !user.totp_enabled && !path.starts_with("/account/two-factor") {
        return Err(Gate::EnrolTotp);
    }
    Ok((session, user))
}

/// The middleware every `/admin` route uses: anonymous → sign in, not an admin → 403, admin
/// without TOTP → enrol first.
pub async fn admin_only(req: Request, next: Next) -> Response {
    let ctx = req.extensions().get::<Ctx>().cloned().unwrap_or_default();
    match require_user(&ctx, req.uri().path()) {
        Err(gate) => gate.into_response(),
        Ok((_, user)) if user.role != Role::Admin => Error::Forbidden.into_response(),
        Ok(_) => next.run(req).await,
    }
}
