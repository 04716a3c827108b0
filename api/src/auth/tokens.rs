//! Single-use email tokens (confirm, reset, unlock): 32 random bytes, sent once in a link, and
//! stored only as their SHA-256 with a purpose and an expiry. Consuming one is a single
//! UPDATE, so two clicks on the same link cannot both succeed. Tokens are never logged.

use std::fmt;

use ringledger_domain::AccountId;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Confirm,
    Reset,
    Unlock,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Confirm => "confirm",
            Purpose::Reset => "reset",
            Purpose::Unlock => "unlock",
        }
    }
}

/// A token as sent in a link. Never printed.
pub struct Token(String);

impl Token {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// Issues a token for `user`, replacing any unused one of the same purpose.
pub async fn issue(
    conn: &mut PgConnection,
    user: AccountId,
    purpose: Purpose,
    ttl_seconds: i64,
) -> Result<Token, sqlx::Error> {
    let token = super::b64(&super::random_bytes::<32>());
    sqlx::query("DELETE FROM user_tokens WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(user.0)
        .bind(purpose.as_str())
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at)
         VALUES ($1, $2, $3, now() + $4 * interval '1 second')",
    )
    .bind(super::sha256(&token))
    .bind(user.0)
    .bind(purpose.as_str())
    .bind(i32::try_from(ttl_seconds).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    Ok(Token(token))
}

/// Uses up `token` if it is unused, unexpired and for `purpose`; returns its user.
pub async fn consume(pool: &PgPool, purpose: Purpose, token: &str) -> Result<Option<AccountId>, sqlx::Error> {
    if token.is_empty() || token.len() > 100 {
        return Ok(None);
    }
    let user: Option<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE user_tokens SET used_at = now()
          WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now()
          RETURNING user_id",
    )
    .bind(super::sha256(token))
    .bind(purpose.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(user.map(AccountId))
}

/// Whether `token` would be accepted now, without using it (to show a form before a reset).
pub async fn is_valid(pool: &PgPool, purpose: Purpose, token: &str) -> Result<bool, sqlx::Error> {
    if token.is_empty() || token.len() > 100 {
        return Ok(false);
    }
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM user_tokens
          WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > now())",
    )
    .bind(super::sha256(token))
    .bind(purpose.as_str())
    .fetch_one(pool)
    .await
}

/// Deletes tokens expired or used more than a day ago, at most `max_rows` (maintenance job).
pub async fn prune(pool: &PgPool, max_rows: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM user_tokens WHERE token_hash IN
           (SELECT token_hash FROM user_tokens
             WHERE coalesce(used_at, expires_at) < now() - interval '1 day' LIMIT $1)",
    )
    .bind(max_rows)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
