//! What the webhook refuses or ignores, as Stripe recommends: a bad signature, an expired
//! timestamp, a missing header and malformed JSON (even correctly signed) answer 400 and
//! record nothing; an unknown event type is stored, marked ignored and answered 200; the
//! previous secret of a rotation is still accepted. Every log line of the process is captured
//! (as auth_logs does) and searched: refusals are logged with their reason and event id, never
//! with the secret or a signature. Alone in its binary because it installs the global subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringledger_api::stripe::signature;
use ringledger_domain::AccountId;
use ringledger_tests::accounts::{fold_stream, open};
use ringledger_tests::payments::{event, processed, session, PaymentsApp, PREVIOUS_SECRET, SECRET};
use ringledger_tests::TestDb;

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
async fn refused_and_ignored_webhooks_credit_nothing_lose_nothing_and_log_no_secret() {
    let capture = Capture::default();
    let writer = capture.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let db = TestDb::create().await.unwrap();
    let app = PaymentsApp::start(&db.url, 16).await.unwrap();
    let account = AccountId::new_v7();
    open(&app.app_state.accounts, account).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    let body = event(
        "evt_forged",
        "checkout.session.completed",
        session("cs_r", "pi_r", account, 5_000, 0, "paid"),
    );

    let wrong_secret = signature::header(&["whsec_not_ours"], now, body.as_bytes());
    let (status, json) = app.post(&body, Some(&wrong_secret)).await.unwrap();
    assert_eq!((status, json["error"].as_str()), (400, Some("signature")));
    let tampered = signature::header(&[SECRET], now, body.replace("5000", "500000").as_bytes());
    assert_eq!(app.post(&body, Some(&tampered)).await.unwrap().0, 400);
    let expired = signature::header(&[SECRET], now - 301, body.as_bytes());
    let (status, json) = app.post(&body, Some(&expired)).await.unwrap();
    assert_eq!((status, json["error"].as_str()), (400, Some("timestamp")));
    assert_eq!(app.post(&body, None).await.unwrap().0, 400);
    let malformed = r#"{"id": "evt_malformed", "type": "checkout.session.completed", "data": {"#;
    let signed = signature::header(&[SECRET], now, malformed.as_bytes());
    let (status, json) = app.post(malformed, Some(&signed)).await.unwrap();
    assert_eq!((status, json["error"].as_str()), (400, Some("malformed")));

    let unknown = event(
        "evt_unknown",
        "customer.subscription.created",
        serde_json::json!({"id": "sub_1"}),
    );
    let (status, json) = app.deliver(&unknown).await.unwrap();
    assert_eq!((status, json["ignored"].as_bool()), (200, Some(true)));

    let recorded: Vec<(String, String)> =
        sqlx::query_as("SELECT event_id, status FROM stripe_inbox ORDER BY event_id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, vec![("evt_unknown".to_owned(), "ignored".to_owned())]);
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(
        state.balances().available,
        0,
        "nothing credited from a refused request"
    );

    // The same event, now genuinely signed, and by the previous secret of a rotation: credited.
    let previous = signature::header(&[PREVIOUS_SECRET], now, body.as_bytes());
    assert_eq!(app.post(&body, Some(&previous)).await.unwrap().0, 200);
    processed(&db.pool, &["evt_forged".to_owned()], Duration::from_secs(30))
        .await
        .unwrap();
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(state.balances().available, 50_000_000);

    let metrics = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ringledger_stripe_webhooks_refused_total{reason=\"signature\"} 2"),
        "{metrics}"
    );
    assert!(metrics.contains("ringledger_stripe_webhooks_refused_total{reason=\"timestamp\"} 1"));
    assert!(metrics.contains("ringledger_stripe_webhooks_refused_total{reason=\"malformed\"} 1"));
    app.stop().await;

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("stripe webhook refused"), "refusals are logged");
    let refusal_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("stripe webhook refused"))
        .collect();
    assert_eq!(refusal_lines.len(), 5, "{refusal_lines:?}");
    assert!(refusal_lines
        .iter()
        .any(|l| l.contains("evt_forged") && l.contains("timestamp")));
    assert!(refusal_lines
        .iter()
        .any(|l| l.contains("evt_malformed") || l.contains("malformed")));
    for secret in [
        SECRET,
        PREVIOUS_SECRET,
        "whsec_not_ours",
        &wrong_secret,
        &expired,
        &previous,
    ] {
        assert!(
            !logs.contains(secret),
            "a secret or signature appears in the logs"
        );
    }
    for sig in [wrong_secret, tampered, expired, signed, previous] {
        let hex = sig.split("v1=").nth(1).unwrap().to_owned();
        assert!(!logs.contains(&hex), "a signature appears in the logs");
    }
    assert!(
        !logs.contains("payer@example.com"),
        "a payload's personal data appears in the logs"
    );
}
