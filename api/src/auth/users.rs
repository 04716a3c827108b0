//! The `users` identity table and its companions (`sign_in_events`, `account_keys`). A user's
//! id is its ledger `AccountId`: one uuid names the person here and the account in events, so
//! erasing the person (emptying these columns, deleting the key) leaves the ledger whole under
//! an id that no longer points at anyone.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ringledger_domain::AccountId;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::{Email, Role};

#[derive(Clone)]
pub struct User {
    pub id: AccountId,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub role: Role,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub sign_in_count: i32,
    pub current_sign_in_at: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub current_sign_in_ip: Option<String>,
    pub last_sign_in_ip: Option<String>,
    pub failed_attempts: i32,
    pub locked_at: Option<DateTime<Utc>>,
    pub totp_secret: Option<Vec<u8>>,
    pub totp_enabled: bool,
    pub totp_last_step: Option<i64>,
    pub account_opened: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, email, password_hash, role, confirmed_at, created_at, sign_in_count,
    current_sign_in_at, last_sign_in_at, host(current_sign_in_ip) AS current_ip,
    host(last_sign_in_ip) AS last_ip, failed_attempts, locked_at, totp_secret,
    totp_enabled_at IS NOT NULL AS totp_enabled, totp_last_step,
    account_opened_at IS NOT NULL AS account_opened";

fn from_row(r: &PgRow) -> Result<User, sqlx::Error> {
    Ok(User {
        id: AccountId(r.try_get("id")?),
        email: r.try_get("email")?,
        password_hash: r.try_get("password_hash")?,
        role: Role::parse(r.try_get("role")?),
        confirmed_at: r.try_get("confirmed_at")?,
        created_at: r.try_get("created_at")?,
        sign_in_count: r.try_get("sign_in_count")?,
        current_sign_in_at: r.try_get("current_sign_in_at")?,
        last_sign_in_at: r.try_get("last_sign_in_at")?,
        current_sign_in_ip: r.try_get("current_ip")?,
        last_sign_in_ip: r.try_get("last_ip")?,
        failed_attempts: r.try_get("failed_attempts")?,
        locked_at: r.try_get("locked_at")?,
        totp_secret: r.try_get("totp_secret")?,
        totp_enabled: r.try_get("totp_enabled")?,
        totp_last_step: r.try_get("totp_last_step")?,
        account_opened: r.try_get("account_opened")?,
    })
}

pub async fn by_email(pool: &PgPool, email: &Email) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1 AND deleted_at IS NULL");
    let row = sqlx::query(&sql)
        .bind(email.as_str())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_id(pool: &PgPool, id: AccountId) -> Result<Option<User>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1 AND deleted_at IS NULL");
    let row = sqlx::query(&sql).bind(id.0).fetch_optional(pool).await?;
    row.as_ref().map(from_row).transpose()
}

/// Inserts a new, unconfirmed user; `None` if the email is taken.
pub async fn insert(
    conn: &mut PgConnection,
    email: &Email,
    password_hash: &str,
    role: Role,
) -> Result<Option<AccountId>, sqlx::Error> {
    let id = AccountId::new_v7();
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, $3, $4)
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(id.0)
    .bind(email.as_str())
    .bind(password_hash)
    .bind(role.as_str())
    .execute(&mut *conn)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(id))
}

/// Marks the email confirmed and creates the account's encryption key (kept outside the log).
pub async fn confirm(conn: &mut PgConnection, id: AccountId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET confirmed_at = coalesce(confirmed_at, now()) WHERE id = $1")
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO account_keys (account_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(id.0)
        .bind(super::random_bytes::<32>().to_vec())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn mark_account_opened(pool: &PgPool, id: AccountId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET account_opened_at = coalesce(account_opened_at, now()) WHERE id = $1")
        .bind(id.0)
        .execute(pool)
        .await?;
    Ok(())
}

/// IPs go to Postgres as text and are cast to `inet` there.
fn net(ip: Option<IpAddr>) -> Option<String> {
    ip.map(|ip| ip.to_string())
}

/// Trackable: counts a successful sign-in, moves current to last, clears failures.
pub async fn record_sign_in(pool: &PgPool, id: AccountId, ip: Option<IpAddr>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE users SET sign_in_count = sign_in_count + 1,
                last_sign_in_at = current_sign_in_at, last_sign_in_ip = current_sign_in_ip,
                current_sign_in_at = now(), current_sign_in_ip = $2::inet,
                failed_attempts = 0, locked_at = NULL
          WHERE id = $1",
    )
    .bind(id.0)
    .bind(net(ip))
    .execute(&mut *tx)
    .await?;
    event_in(&mut tx, id, ip, "success").await?;
    tx.commit().await
}

/// Records an attempt that failed (`outcome`: bad_password, locked, bad_code, unconfirmed).
pub async fn record_event(
    pool: &PgPool,
    id: AccountId,
    ip: Option<IpAddr>,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    event_in(&mut conn, id, ip, outcome).await
}

async fn event_in(
    conn: &mut PgConnection,
    id: AccountId,
    ip: Option<IpAddr>,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sign_in_events (user_id, ip, outcome) VALUES ($1, $2::inet, $3)")
        .bind(id.0)
        .bind(net(ip))
        .bind(outcome)
        .execute(conn)
        .await?;
    Ok(())
}

/// Counts a wrong password; returns true when this attempt locked the account.
pub async fn record_failure(pool: &PgPool, id: AccountId, max_attempts: i32) -> Result<bool, sqlx::Error> {
    let locked: bool = sqlx::query_scalar(
        "UPDATE users SET failed_attempts = failed_attempts + 1,
                locked_at = CASE WHEN locked_at IS NULL AND failed_attempts + 1 >= $2 THEN now() ELSE locked_at END
          WHERE id = $1
          RETURNING locked_at IS NOT NULL AND failed_attempts = $2",
    )
    .bind(id.0)
    .bind(max_attempts)
    .fetch_one(pool)
    .await?;
    Ok(locked)
}

pub async fn unlock(pool: &PgPool, id: AccountId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET failed_attempts = 0, locked_at = NULL WHERE id = $1")
        .bind(id.0)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_password(pool: &PgPool, id: AccountId, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, failed_attempts = 0, locked_at = NULL WHERE id = $1")
        .bind(id.0)
        .bind(hash)
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SignInEvent {
    pub at: DateTime<Utc>,
    pub ip: Option<String>,
    pub outcome: String,
}

pub async fn history(pool: &PgPool, id: AccountId, limit: i64) -> Result<Vec<SignInEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT at, host(ip) AS ip, outcome FROM sign_in_events WHERE user_id = $1 ORDER BY at DESC LIMIT $2",
    )
    .bind(id.0)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SignInEvent {
                at: r.try_get("at")?,
                ip: r.try_get("ip")?,
                outcome: r.try_get("outcome")?,
            })
        })
        .collect()
}

/// Erases a person: personal columns emptied, tokens, sessions, history, recovery codes and
/// the account key deleted (crypto-shredding). The row stays as a pseudonymous tombstone so
/// the ledger's account id still resolves to "deleted".
pub async fn erase(pool: &PgPool, id: AccountId) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE users SET email = NULL, password_hash = NULL, current_sign_in_ip = NULL,
                last_sign_in_ip = NULL, totp_secret = NULL, totp_enabled_at = NULL,
                totp_last_step = NULL, deleted_at = now()
          WHERE id = $1",
    )
    .bind(id.0)
    .execute(&mut *tx)
    .await?;
    for sql in [
        "DELETE FROM user_tokens WHERE user_id = $1",
        "DELETE FROM sessions WHERE user_id = $1 OR pending_user_id = $1",
        "DELETE FROM sign_in_events WHERE user_id = $1",
        "DELETE FROM recovery_codes WHERE user_id = $1",
        "DELETE FROM account_keys WHERE account_id = $1",
    ] {
        sqlx::query(sql).bind(id.0).execute(&mut *tx).await?;
    }
    tx.commit().await
}
