//! Server-side sessions in Postgres. The cookie holds 32 random bytes; the table holds their
//! SHA-256, the user (or the user still owing a second factor), the CSRF token and a one-shot
//! flash message. A session ends when idle for `session_idle_minutes` (unless "remember me"),
//! and in any case at `expires_at` (`session_absolute_hours`, or `remember_days`). Sign-in and
//! privilege changes always start a new session (rotation): an id seen before sign-in is
//! worthless after it.
//!
//! Cookie: `__Host-ringledger_session` with `Secure` when `public_url` is https,
//! `ringledger_session` on plain http (development); always `HttpOnly`, `SameSite=Lax`,
//! `Path=/`. The id is never logged.

use std::fmt;

use ringledger_domain::AccountId;
use sqlx::{PgPool, Row};

use super::AuthConfig;

pub const SECURE_COOKIE: &str = "__Host-ringledger_session";
pub const PLAIN_COOKIE: &str = "ringledger_session";
/// last_seen_at is written at most this often per session.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// The cookie value. Never printed.
#[derive(Clone)]
pub struct SessionId(String);

impl SessionId {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId([redacted])")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashKind {
    Notice,
    Alert,
}

/// A one-shot message shown on the next page (the layout's flash partial styles by `kind`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub kind: FlashKind,
    pub message: String,
}

impl Flash {
    pub fn notice(message: impl Into<String>) -> Flash {
        Flash {
            kind: FlashKind::Notice,
            message: message.into(),
        }
    }
    pub fn alert(message: impl Into<String>) -> Flash {
        Flash {
            kind: FlashKind::Alert,
            message: message.into(),
        }
    }
    pub fn is_alert(&self) -> bool {
        self.kind == FlashKind::Alert
    }
}

#[derive(Clone)]
pub struct Session {
    pub id_hash: Vec<u8>,
    pub user_id: Option<AccountId>,
    pub pending_user_id: Option<AccountId>,
    pub csrf_token: String,
    pub remember: bool,
    pub flash: Option<Flash>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("pending_user_id", &self.pending_user_id)
            .finish_non_exhaustive()
    }
}

/// Who a new session belongs to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner {
    pub user: Option<AccountId>,
    pub pending: Option<AccountId>,
    pub remember: bool,
}

fn lifetime_seconds(config: &AuthConfig, remember: bool) -> i64 {
    if remember {
        config.remember_days.saturating_mul(86_400)
    } else {
        config.session_absolute_hours.saturating_mul(3_600)
    }
}

/// The cookie's name for this deployment.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE
    } else {
        PLAIN_COOKIE
    }
}

/// `Set-Cookie` for a session; persistent only with "remember me".
pub fn set_cookie(id: &SessionId, secure: bool, remember_seconds: Option<i64>) -> String {
    let mut c = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax",
        cookie_name(secure),
        id.expose()
    );
    if secure {
        c.push_str("; Secure");
    }
    if let Some(s) = remember_seconds {
        c.push_str(&format!("; Max-Age={s}"));
    }
    c
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let mut c = format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
        cookie_name(secure)
    );
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The session id in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str, secure: bool) -> Option<String> {
    let name = cookie_name(secure);
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name && !v.is_empty() && v.len() <= 100).then(|| v.to_owned())
    })
}

pub async fn create(
    pool: &PgPool,
    config: &AuthConfig,
    owner: Owner,
) -> Result<(SessionId, Session), sqlx::Error> {
    let id = SessionId(super::b64(&super::random_bytes::<32>()));
    let session = Session {
        id_hash: super::sha256(id.expose()),
        user_id: owner.user,
        pending_user_id: owner.pending,
        csrf_token: super::csrf::new_token(),
        remember: owner.remember,
        flash: None,
    };
    let lifetime = i32::try_from(lifetime_seconds(config, owner.remember)).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, pending_user_id, csrf_token, remember, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 second')",
    )
    .bind(&session.id_hash)
    .bind(owner.user.map(|u| u.0))
    .bind(owner.pending.map(|u| u.0))
    .bind(&session.csrf_token)
    .bind(owner.remember)
    .bind(lifetime)
    .execute(pool)
    .await?;
    Ok((id, session))
}

/// The live session for a cookie value, touching `last_seen_at` now and then.
pub async fn load(
    pool: &PgPool,
    config: &AuthConfig,
    cookie_value: &str,
) -> Result<Option<Session>, sqlx::Error> {
    let id_hash = super::sha256(cookie_value);
    let idle = i32::try_from(config.session_idle_minutes.saturating_mul(60)).unwrap_or(i32::MAX);
    let row = sqlx::query(
        "SELECT user_id, pending_user_id, csrf_token, remember, flash_kind, flash_message,
                extract(epoch FROM now() - last_seen_at)::bigint AS idle_seconds
           FROM sessions
          WHERE id_hash = $1 AND expires_at > now()
            AND (remember OR last_seen_at > now() - $2 * interval '1 second')",
    )
    .bind(&id_hash)
    .bind(idle)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let idle_seconds: i64 = row.try_get("idle_seconds")?;
    if idle_seconds >= TOUCH_EVERY_SECONDS {
        sqlx::query("UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1")
            .bind(&id_hash)
            .execute(pool)
            .await?;
    }
    let flash_kind: Option<String> = row.try_get("flash_kind")?;
    let flash_message: Option<String> = row.try_get("flash_message")?;
    let flash = match (flash_kind.as_deref(), flash_message) {
        (Some("alert"), Some(m)) => Some(Flash::alert(m)),
        (Some(_), Some(m)) => Some(Flash::notice(m)),
        _ => None,
    };
    Ok(Some(Session {
        id_hash,
        user_id: row.try_get::<Option<uuid::Uuid>, _>("user_id")?.map(AccountId),
        pending_user_id: row
            .try_get::<Option<uuid::Uuid>, _>("pending_user_id")?
            .map(AccountId),
        csrf_token: row.try_get("csrf_token")?,
        remember: row.try_get("remember")?,
        flash,
    }))
}

pub async fn destroy(pool: &PgPool, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Ends every session of `user` (password reset, deletion), except `keep` if given.
pub async fn destroy_all_for(pool: &PgPool, user: AccountId, keep: Option<&[u8]>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM sessions WHERE (user_id = $1 OR pending_user_id = $1) AND id_hash IS DISTINCT FROM $2",
    )
    .bind(user.0)
    .bind(keep)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_flash(pool: &PgPool, id_hash: &[u8], flash: &Flash) -> Result<(), sqlx::Error> {
    let kind = if flash.is_alert() { "alert" } else { "notice" };
    sqlx::query("UPDATE sessions SET flash_kind = $2, flash_message = $3 WHERE id_hash = $1")
        .bind(id_hash)
        .bind(kind)
        .bind(&flash.message)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn clear_flash(pool: &PgPool, id_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET flash_kind = NULL, flash_message = NULL WHERE id_hash = $1")
        .bind(id_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes expired sessions, at most `max_rows` (a maintenance job may call this).
pub async fn prune_expired(pool: &PgPool, max_rows: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM sessions WHERE id_hash IN
           (SELECT id_hash FROM sessions WHERE expires_at < now() LIMIT $1)",
    )
    .bind(max_rows)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
