//! TOTP second factor (RFC 6238 via `totp-rs`: SHA-1, 6 digits, 30-second steps, one step of
//! clock skew either way) and one-time recovery codes. A code is accepted at most once: the
//! step it matched is stored and older-or-equal steps are refused afterwards. Secrets are
//! 20 random bytes, shown once as base32 and as a QR code during enrolment, never logged.
//! Recovery codes are stored as SHA-256 hashes and shown once. Secrets are stored encrypted
//! (`secret_box`); this module sees them only in the clear, handed in by `AuthService`.

use std::time::{SystemTime, UNIX_EPOCH};

use ringledger_domain::AccountId;
use sqlx::PgPool;
use totp_rs::{Algorithm, Secret, TOTP};

pub const ISSUER: &str = "RingLedger";
pub const STEP_SECONDS: u64 = 30;
pub const SKEW_STEPS: u8 = 1;
pub const RECOVERY_CODES: usize = 10;

pub fn new_secret() -> Vec<u8> {
    super::random_bytes::<20>().to_vec()
}

fn totp(secret: &[u8], account_name: &str) -> Result<TOTP, totp_rs::TotpUrlError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        SKEW_STEPS,
        STEP_SECONDS,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account_name.to_owned(),
    )
}

/// The base32 form people type into an authenticator app.
pub fn base32(secret: &[u8]) -> String {
    Secret::Raw(secret.to_vec()).to_encoded().to_string()
}

/// The enrolment QR code as an SVG document (an `otpauth://` URL).
pub fn qr_svg(secret: &[u8], account_name: &str) -> anyhow::Result<String> {
    let url = totp(secret, account_name)?.get_url();
    let code = qrcode::QrCode::new(url.as_bytes())?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Inline in HTML: drop the XML declaration.
    Ok(svg.find("<svg").map_or(svg.clone(), |i| svg[i..].to_owned()))
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The step `code` matches within the allowed skew, if any (constant-time per candidate).
pub fn matching_step(secret: &[u8], code: &str, at_seconds: u64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    );
    let current = at_seconds / STEP_SECONDS;
    let skew = u64::from(SKEW_STEPS);
    let mut found = None;
    for step in current.saturating_sub(skew)..=current + skew {
        if totp.check(&code, step * STEP_SECONDS) {
            found = Some(step as i64);
        }
    }
    found
}

/// The current code (tests and the benchmark use it to play an authenticator app).
pub fn current_code(secret: &[u8]) -> String {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        0,
        STEP_SECONDS,
        secret.to_vec(),
        None,
        String::new(),
    )
    .generate(now_seconds())
}

/// Accepts `code` for `user` if it matches a step later than the last one used, recording it.
pub async fn verify_and_use(
    pool: &PgPool,
    user: AccountId,
    secret: &[u8],
    code: &str,
) -> Result<bool, sqlx::Error> {
    let Some(step) = matching_step(secret, code, now_seconds()) else {
        return Ok(false);
    };
    let used = sqlx::query(
        "UPDATE users SET totp_last_step = $2
          WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
    )
    .bind(user.0)
    .bind(step)
    .execute(pool)
    .await?;
    Ok(used.rows_affected() == 1)
}

/// Stores a (sealed) secret for enrolment, not yet enabled.
pub async fn store_secret(pool: &PgPool, user: AccountId, sealed: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET totp_secret = $2, totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $1",
    )
    .bind(user.0)
    .bind(sealed)
    .execute(pool)
    .await?;
    Ok(())
}

/// Turns TOTP on and replaces the recovery codes; returns the codes to show once.
pub async fn enable(pool: &PgPool, user: AccountId) -> Result<Vec<String>, sqlx::Error> {
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE users SET totp_enabled_at = now() WHERE id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    for code in &codes {
        sqlx::query("INSERT INTO recovery_codes (code_hash, user_id) VALUES ($1, $2)")
            .bind(super::sha256(&normalise_recovery(code)))
            .bind(user.0)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(codes)
}

pub async fn disable(pool: &PgPool, user: AccountId) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE users SET totp_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $1",
    )
    .bind(user.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

/// `xxxxx-xxxxx` from an alphabet without look-alikes.
fn new_recovery_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let mut code: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    code.insert(5, '-');
    code
}

fn normalise_recovery(code: &str) -> String {
    code.trim().to_lowercase().replace([' ', '-'], "")
}

/// Uses up a recovery code of `user`, if it is one.
pub async fn use_recovery_code(pool: &PgPool, user: AccountId, code: &str) -> Result<bool, sqlx::Error> {
    let normal = normalise_recovery(code);
    if normal.len() != 10 {
        return Ok(false);
    }
    let used = sqlx::query(
        "UPDATE recovery_codes SET used_at = now() WHERE code_hash = $1 AND user_id = $2 AND used_at IS NULL",
    )
    .bind(super::sha256(&normal))
    .bind(user.0)
    .execute(pool)
    .await?;
    Ok(used.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_within_skew_only() {
        let secret = new_secret();
        let totp = TOTP::new_unchecked(
            Algorithm::SHA1,
            6,
            0,
            STEP_SECONDS,
            secret.clone(),
            None,
            String::new(),
        );
        let t = 1_800_000_000;
        let code = totp.generate(t);
        assert_eq!(matching_step(&secret, &code, t), Some((t / 30) as i64));
        assert!(matching_step(&secret, &code, t + 30).is_some());
        assert!(matching_step(&secret, &code, t + 95).is_none());
        assert!(matching_step(&secret, "abcdef", t).is_none());
        assert_eq!(base32(&secret).len(), 32);
        assert!(qr_svg(&secret, "someone").unwrap().starts_with("<svg"));
        let rc = new_recovery_code();
        assert_eq!(normalise_recovery(&rc.to_uppercase()).len(), 10);
    }
}
