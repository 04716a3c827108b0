//! Sealing destinations with the account's key (ChaCha20-Poly1305, a random 96-bit nonce per
//! seal, the call id as associated data). Keys live in `account_keys`, outside the log:
//! deleting an account's key shreds every number it sealed. Never logs a key or a number.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use ringledger_domain::call::SealedDestination;
use ringledger_domain::{AccountId, CallId};
use sqlx::PgPool;

use super::CallsError;

/// The only key version so far; rotation would add rows per version.
pub const KEY_VERSION: u32 = 1;
const NONCE_BYTES: usize = 12;

/// The account's 32-byte key, created on first use. Two concurrent first uses agree: the
/// insert that loses does nothing and both read the winner's key.
pub async fn account_key(pool: &PgPool, account: AccountId) -> Result<[u8; 32], CallsError> {
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    sqlx::query(
        "INSERT INTO account_keys (account_id, key) VALUES ($1, $2) ON CONFLICT (account_id) DO NOTHING",
    )
    .bind(account.0)
    .bind(&fresh[..])
    .execute(pool)
    .await
    .map_err(|e| CallsError::Internal(format!("account key: {e}")))?;
    let key: Vec<u8> = sqlx::query_scalar("SELECT key FROM account_keys WHERE account_id = $1")
        .bind(account.0)
        .fetch_one(pool)
        .await
        .map_err(|e| CallsError::Internal(format!("account key: {e}")))?;
    key.try_into()
        .map_err(|_| CallsError::Internal("the account's key is not 32 bytes".into()))
}

/// `nonce || ciphertext+tag` of the dialled digits, bound to the call.
pub fn seal(key: &[u8; 32], call: CallId, digits: &str) -> Result<SealedDestination, CallsError> {
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; NONCE_BYTES];
    rand::thread_rng().fill_bytes(&mut nonce);
    let payload = Payload {
        msg: digits.as_bytes(),
        aad: call.0.as_bytes(),
    };
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .map_err(|_| CallsError::Internal("sealing the destination failed".into()))?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    SealedDestination::new(KEY_VERSION, bytes).map_err(|e| CallsError::Internal(e.to_string()))
}

/// The digits back, or `None` when the key does not open it (shredded, or another account's).
pub fn open(key: &[u8; 32], call: CallId, sealed: &SealedDestination) -> Option<String> {
    if sealed.ciphertext.len() <= NONCE_BYTES {
        return None;
    }
    let (nonce, body) = sealed.ciphertext.split_at(NONCE_BYTES);
    let cipher = ChaCha20Poly1305::new(Key::from_slice(key));
    let payload = Payload {
        msg: body,
        aad: call.0.as_bytes(),
    };
    let digits = cipher.decrypt(Nonce::from_slice(nonce), payload).ok()?;
    String::from_utf8(digits).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_key_and_call() {
        let key = [7u8; 32];
        let call = CallId(uuid::Uuid::from_u128(1));
        let sealed = seal(&key, call, "442079460958").expect("seal");
        assert!(!sealed.ciphertext.windows(4).any(|w| w == b"4420"));
        assert_eq!(open(&key, call, &sealed).as_deref(), Some("442079460958"));
        assert_eq!(open(&[8u8; 32], call, &sealed), None);
        assert_eq!(open(&key, CallId(uuid::Uuid::from_u128(2)), &sealed), None);
    }
}
