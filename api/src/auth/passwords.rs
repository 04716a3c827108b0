//! Password policy and hashing. Hashes are argon2id with OWASP's recommended parameters
//! (Password Storage Cheat Sheet: m = 19 MiB = 19,456 KiB, t = 2 iterations, p = 1), stored as
//! PHC strings so parameters can be raised later without breaking old hashes. Hashing runs on
//! the blocking pool: it takes tens of milliseconds of CPU on purpose. A password never leaves
//! this module except as a hash, and is never logged (its `Debug` is redacted).

use std::fmt;
use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory cost in KiB (19 MiB).
pub const MEMORY_KIB: u32 = 19_456;
/// Time cost: passes over the memory.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const PARALLELISM: u32 = 1;
pub const MIN_CHARS: usize = 10;
pub const MAX_CHARS: usize = 128;

static COMMON: LazyLock<std::collections::HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().collect());

/// A password as typed. Never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(text: impl Into<String>) -> Password {
        Password(text.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("use at least 10 characters")]
    TooShort,
    #[error("use at most 128 characters")]
    TooLong,
    #[error("this password is one of the most common ones; choose another")]
    Common,
}

/// Checks a new password against the policy: 10 to 128 characters, not on the common list.
pub fn check_policy(password: &Password) -> Result<(), PasswordError> {
    let chars = password.0.chars().count();
    if chars < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_CHARS {
        return Err(PasswordError::TooLong);
    }
    if COMMON.contains(password.0.to_lowercase().as_str()) {
        return Err(PasswordError::Common);
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).unwrap_or_else(|_| Params::default());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes synchronously (call from the blocking pool).
pub fn hash_blocking(password: &Password) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.0.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
}

/// Verifies synchronously (call from the blocking pool). A malformed hash is a mismatch.
pub fn verify_blocking(hash: &str, password: &Password) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher().verify_password(password.0.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when there is no user, so an unknown email costs the same time.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_blocking(&Password::new("not a real password, only for timing")).unwrap_or_default()
});

pub async fn hash(password: Password) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Verifies `password` against `hash`, or against a dummy hash when `hash` is `None`
/// (returning false) so both paths take the same time.
pub async fn verify(hash: Option<String>, password: Password) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_blocking(&h, &password),
        None => {
            let _ = verify_blocking(&DUMMY_HASH, &password);
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_refuses_short_long_and_common() {
        assert_eq!(
            check_policy(&Password::new("short")),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            check_policy(&Password::new("x".repeat(129))),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            check_policy(&Password::new("QWERTYUIOP")),
            Err(PasswordError::Common)
        );
        assert_eq!(
            check_policy(&Password::new("Password123")),
            Err(PasswordError::Common)
        );
        assert!(COMMON.len() >= 10_000);
        assert_eq!(
            check_policy(&Password::new("correct horse battery staple")),
            Ok(())
        );
        assert!(!format!("{:?}", Password::new("hunter2hunter2")).contains("hunter2"));
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let pw = Password::new("correct horse battery staple");
        let h = hash_blocking(&pw).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_blocking(&h, &pw));
        assert!(!verify_blocking(&h, &Password::new("wrong horse battery staple")));
        assert!(!verify_blocking("not a hash", &pw));
    }
}
