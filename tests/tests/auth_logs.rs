//! No password, token, session id, TOTP secret or full email address appears in the logs:
//! every log line of the process (all crates, TRACE level) is captured while the sign-up,
//! confirmation, sign-in, TOTP, reset and failure flows run, then searched for each secret.
//! Alone in its binary because it installs the global subscriber.

mod auth_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use auth_support::{csrf_in, testid, TestApp, PASSWORD};
use ringledger_api::auth::{totp, AuthConfig};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_token_or_secret_appears_in_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let app = TestApp::start(AuthConfig::default()).await;
    let email = "zoe.secretname@example.com";
    let mut b = app.browser();
    b.submit("/signup", "/signup", &[("email", email), ("password", PASSWORD)])
        .await;
    let confirm = app.token_from_email(email, "/confirm?token=").await;
    b.get(&format!("/confirm?token={confirm}")).await;
    b.sign_in(email, "a wrong password here").await;
    let res = b.sign_in(email, PASSWORD).await;
    assert_eq!(res.location(), Some("/account"));
    let session_cookie = b.cookie.clone().unwrap();
    let session_id = session_cookie.split_once('=').unwrap().1.to_owned();

    let page = b.get("/account/two-factor").await;
    let csrf = csrf_in(&page.body).unwrap();
    let secret_b32 = testid(&page.body, "totp-secret").unwrap();
    let secret = totp_rs::Secret::Encoded(secret_b32.clone()).to_bytes().unwrap();
    let code = totp::current_code(&secret);
    let res = b
        .submit("/account/two-factor", "/account/two-factor", &[("code", &code)])
        .await;
    let codes = testid(&res.body, "recovery-codes").unwrap();
    let recovery = codes
        .split("<li>")
        .nth(1)
        .unwrap()
        .split("</li>")
        .next()
        .unwrap()
        .to_owned();

    let mut other = app.browser();
    other
        .submit("/password/forgot", "/password/forgot", &[("email", email)])
        .await;
    let reset = app.token_from_email(email, "/password/reset?token=").await;
    let new_password = "an entirely new passphrase";
    other
        .submit(
            &format!("/password/reset?token={reset}"),
            "/password/reset",
            &[("token", &reset), ("password", new_password)],
        )
        .await;
    app.stop().await;

    let logs = String::from_utf8_lossy(&capture.0.lock().unwrap()).into_owned();
    assert!(logs.len() > 1_000, "logs were captured ({} bytes)", logs.len());
    assert!(logs.contains("z***@example.com"), "emails appear masked");
    for (what, secret) in [
        ("password", PASSWORD),
        ("new password", new_password),
        ("wrong password", "a wrong password here"),
        ("confirmation token", confirm.as_str()),
        ("reset token", reset.as_str()),
        ("session id", session_id.as_str()),
        ("CSRF token", csrf.as_str()),
        ("TOTP secret", secret_b32.as_str()),
        ("recovery code", recovery.as_str()),
        ("full email", email),
        ("email local part", "zoe.secretname"),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
    }
}
