//! Encryption at rest for TOTP secrets: ChaCha20-Poly1305 under a server key from the
//! environment (`RINGLEDGER_TOTP_ENCRYPTION_KEY`, 32 bytes in base64), so a copy of the
//! database alone does not yield anyone's second factor. Each value is a random 12-byte nonce
//! followed by the ciphertext; the user id is the associated data, so a value moved to another
//! user's row does not open. Development without a key uses a fixed, public development key;
//! production refuses to start without one.

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::config::{Config, Mode, Secret};

const NONCE_BYTES: usize = 12;
/// Public on purpose: only for development databases.
const DEVELOPMENT_KEY: [u8; 32] = *b"ringledger-development-only-key!";

#[derive(Clone)]
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

impl SecretBox {
    pub fn new(key: &[u8; 32]) -> SecretBox {
        SecretBox {
            cipher: ChaCha20Poly1305::new(Key::from_slice(key)),
        }
    }

    /// The box for `config.totp_encryption_key` (the development key when unset in
    /// development; production validation already demands the key).
    pub fn from_config(config: &Config) -> anyhow::Result<SecretBox> {
        match (&config.totp_encryption_key, config.mode) {
            (Some(key), _) => SecretBox::from_base64(key),
            (None, Mode::Development) => Ok(SecretBox::new(&DEVELOPMENT_KEY)),
            (None, Mode::Production) => anyhow::bail!("production mode needs RINGLEDGER_TOTP_ENCRYPTION_KEY"),
        }
    }

    fn from_base64(key: &Secret) -> anyhow::Result<SecretBox> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key.expose().trim())
            .map_err(|_| {
                anyhow::anyhow!("totp_encryption_key is not base64; make one with `openssl rand -base64 32`")
            })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("totp_encryption_key must be 32 bytes; make one with `openssl rand -base64 32`")
        })?;
        Ok(SecretBox::new(&key))
    }

    pub fn seal(&self, plain: &[u8], associated: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce = super::random_bytes::<NONCE_BYTES>();
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: associated,
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// `None` when the value does not open with this key and associated data.
    pub fn open(&self, sealed: &[u8], associated: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: associated,
                },
            )
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_with_the_same_key_and_user() {
        let b = SecretBox::new(&[7u8; 32]);
        let sealed = b.seal(b"totp secret bytes", b"user-1").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(b.open(&sealed, b"user-1").unwrap(), b"totp secret bytes");
        assert!(b.open(&sealed, b"user-2").is_none());
        assert!(SecretBox::new(&[8u8; 32]).open(&sealed, b"user-1").is_none());
        assert!(SecretBox::from_base64(&Secret::new("c2hvcnQ=")).is_err());
    }
}
