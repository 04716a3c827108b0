//! Accounts and sign-in: identity tables, password hashing, email tokens, server-side
//! sessions, CSRF, rate limits, lockout, TOTP and the flows that tie them together. Personal
//! data (emails, IPs, TOTP secrets) lives only in identity tables; this module never writes it
//! into an event and never logs a password, token, secret or full email address.

pub mod admin_cli;
pub mod csrf;
pub mod email;
pub mod emails;
pub mod passwords;
pub mod rate_limit;
pub mod secret_box;
pub mod service;
pub mod sessions;
pub mod sms;
pub mod tokens;
pub mod totp;
pub mod users;

use serde::{Deserialize, Serialize};

pub use email::Email;
pub use service::AuthService;

/// `[auth]` in the configuration (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Failed password attempts in a row before the account is locked.
    pub max_failed_attempts: i32,
    /// A locked account unlocks by itself after this long (or at once by the emailed link).
    pub unlock_after_minutes: i64,
    pub confirm_token_hours: i64,
    pub reset_token_minutes: i64,
    pub unlock_token_hours: i64,
    /// A session unused this long is over (unless "remember me" was ticked).
    pub session_idle_minutes: i64,
    /// A session ends this long after sign-in whatever happens.
    pub session_absolute_hours: i64,
    /// "Remember me": the session and its cookie last this long instead.
    pub remember_days: i64,
    /// Credit granted when an email is confirmed, a decimal in USD ("0" = none).
    pub signup_credit: String,
    pub rate_limit: rate_limit::RateLimitConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_failed_attempts: 10,
            unlock_after_minutes: 60,
            confirm_token_hours: 24,
            reset_token_minutes: 60,
            unlock_token_hours: 24,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            remember_days: 14,
            signup_credit: "0".to_owned(),
            rate_limit: rate_limit::RateLimitConfig::default(),
        }
    }
}

/// A user's role. Admins must use TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
    pub fn parse(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::Customer
        }
    }
}

/// Random bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use rand::RngCore;
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

/// URL-safe base64 without padding.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256, how tokens, session ids and recovery codes are stored.
pub fn sha256(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}
