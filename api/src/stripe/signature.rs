//! Stripe webhook signatures, as Stripe specifies them: the `Stripe-Signature` header is
//! `t=UNIX_SECONDS,v1=HEX[,v1=HEX…]` (other schemes such as `v0` are ignored), and each `v1` is the
//! HMAC-SHA256 of `"{t}.{raw body}"` keyed with an endpoint secret (`whsec_…`, used as-is).
//! A request is genuine when any `v1` matches any of our secrets (two during a rotation) and `t`
//! is within the tolerance of our clock. Comparisons are constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance between the signed timestamp and our clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// The longest header we read; a real one holds a timestamp and a few signatures.
const MAX_HEADER_LEN: usize = 4_096;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook's signature was refused. None of these carry a secret or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("Stripe-Signature header is malformed: {0}")]
    Malformed(&'static str),
    #[error("Stripe-Signature header has no v1 signature")]
    NoV1Signature,
    #[error("signed timestamp is {age_secs} s from our clock; the tolerance is {tolerance_secs} s")]
    OutsideTolerance { age_secs: i64, tolerance_secs: i64 },
    #[error("no v1 signature matches any configured webhook secret")]
    NoMatch,
    #[error("no webhook secret is configured")]
    NoSecret,
}

/// The hex `v1` signature of `payload` signed at `timestamp` with `secret`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, payload).finalize().into_bytes())
}

/// A whole `Stripe-Signature` header value: one `v1` per secret, as Stripe sends during a rotation.
pub fn header(secrets: &[&str], timestamp: i64, payload: &[u8]) -> String {
    let mut out = format!("t={timestamp}");
    for secret in secrets {
        out.push_str(",v1=");
        out.push_str(&sign(secret, timestamp, payload));
    }
    out
}

/// Checks `header` against `payload` and returns the signed timestamp. `now` is unix seconds.
pub fn verify<S: AsRef<str>>(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[S],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    if header.len() > MAX_HEADER_LEN {
        return Err(SignatureError::Malformed("longer than 4096 bytes"));
    }
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("an item is not key=value"))?;
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not a whole number of seconds"))?;
                timestamp = Some(t);
            }
            // A v1 that is not hex can never match; skip it rather than refuse the others.
            "v1" => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t= timestamp"))?;
    if signatures.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    let age_secs = now.saturating_sub(timestamp);
    if age_secs.saturating_abs() > tolerance_secs {
        return Err(SignatureError::OutsideTolerance {
            age_secs,
            tolerance_secs,
        });
    }
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac(secret.as_ref(), timestamp, payload).finalize().into_bytes();
        for candidate in &signatures {
            matched |= expected.as_slice().ct_eq(candidate.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(timestamp)
    } else {
        Err(SignatureError::NoMatch)
    }
}

fn mac(secret: &str, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;

    #[test]
    fn matches_stripes_documented_construction() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{body}") computed independently with openssl.
        let expected = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            expected,
            "a13d4b1f9003bc2fb6c06224e878b6056185eaa50d40e1e7dc05517f8af41d7b"
        );
        let h = header(&[SECRET], 1_700_000_000, BODY);
        assert_eq!(h, format!("t=1700000000,v1={expected}"));
        assert_eq!(
            verify(Some(&h), BODY, &[SECRET], 1_700_000_100, 300),
            Ok(1_700_000_000)
        );
    }

    #[test]
    fn either_secret_of_a_rotation_is_accepted_and_extra_schemes_ignored() {
        let h = format!("t=10,v0=abc,v1=zz,{}", &header(&["whsec_old"], 10, BODY)[5..]);
        assert_eq!(
            verify(Some(&h), BODY, &["whsec_new", "whsec_old"], 10, 300),
            Ok(10)
        );
        let both = header(&["whsec_a", "whsec_b"], 10, BODY);
        assert_eq!(verify(Some(&both), BODY, &["whsec_b"], 10, 300), Ok(10));
    }

    #[test]
    fn refusals_name_the_reason() {
        let h = header(&[SECRET], 1_000, BODY);
        assert_eq!(
            verify::<&str>(None, BODY, &[SECRET], 1_000, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some(&h), b"{}", &[SECRET], 1_000, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&h), BODY, &["whsec_other"], 1_000, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&h), BODY, &[SECRET], 1_301, 300),
            Err(SignatureError::OutsideTolerance {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
        assert!(matches!(
            verify(Some(&h), BODY, &[SECRET], 699, 300),
            Err(SignatureError::OutsideTolerance { .. })
        ));
        assert_eq!(
            verify(Some("t=1"), BODY, &[SECRET], 1, 300),
            Err(SignatureError::NoV1Signature)
        );
        assert!(matches!(
            verify(Some("v1=00"), BODY, &[SECRET], 1, 300),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify(Some("t=x,v1=00"), BODY, &[SECRET], 1, 300),
            Err(SignatureError::Malformed(_))
        ));
        let empty: [&str; 0] = [];
        assert_eq!(
            verify(Some(&h), BODY, &empty, 1_000, 300),
            Err(SignatureError::NoSecret)
        );
    }
}
