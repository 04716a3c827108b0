//! The extension point for SMS sign-in codes. A second factor by SMS needs a sender (a
//! provider's API, later) and a short-lived code; this module fixes the shape both take so
//! the sign-in flow can offer it when a sender is configured. No sender is implemented here,
//! and a phone number is personal data: it never goes into an event or a log.

use std::future::Future;
use std::pin::Pin;

/// Sends a text message. Implementations must not log the number or the body.
pub trait SmsSender: Send + Sync + 'static {
    fn send<'a>(
        &'a self,
        to_e164: &'a str,
        body: &'a str,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;
}

/// How long an SMS code stays valid.
pub const SMS_CODE_TTL_SECONDS: i64 = 300;
/// Digits in an SMS code.
pub const SMS_CODE_DIGITS: u32 = 6;

/// A fresh numeric code to send; store only its SHA-256 (as for email tokens).
pub fn new_code() -> String {
    use rand::Rng;
    let n: u32 = rand::rngs::OsRng.gen_range(0..10u32.pow(SMS_CODE_DIGITS));
    format!("{n:06}")
}

/// The message sent for a code; the service name first so phones can autofill it.
pub fn message(code: &str) -> String {
    format!("RingLedger sign-in code: {code}. It expires in 5 minutes. Never share it.")
}
