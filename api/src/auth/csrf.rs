//! CSRF: the synchronizer-token pattern. Each session holds one random token; every form
//! carries it in a hidden `csrf_token` field and every unsafe request must present it. The
//! comparison is constant-time. Tokens are never logged.

use subtle::ConstantTimeEq;

/// The form field every form carries.
pub const FIELD: &str = "csrf_token";

/// A fresh token for a new session.
pub fn new_token() -> String {
    super::b64(&super::random_bytes::<32>())
}

/// Whether `given` is the session's token, compared in constant time.
pub fn matches(expected: &str, given: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn compares_tokens() {
        let t = super::new_token();
        assert!(super::matches(&t, &t.clone()));
        assert!(!super::matches(&t, ""));
        assert!(!super::matches(&t, &super::new_token()));
        assert!(!super::matches("", ""));
    }
}
