//! `GET /api/rates/quote` for a signed-in caller of the running app: sign up (with sign-up
//! credit), sign in, ask for a quote; the answer carries the rate, the exact maximum duration
//! and a quote id the store honours; anonymous callers get 401; emergency numbers the notice.

mod auth_support;

use std::time::Duration;

use auth_support::{TestApp, PASSWORD};
use reqwest::StatusCode;
use ringledger_api::auth::AuthConfig;
use ringledger_tests::rates::{admin, import_by_app, request, service};

const CLEAN: &[u8] = include_bytes!("../fixtures/rates/twilio-voice.csv");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_caller_gets_a_quote_and_anonymous_callers_do_not() {
    let app = TestApp::start(AuthConfig {
        signup_credit: "2.00".into(),
        ..AuthConfig::default()
    })
    .await;
    // The running app's own `rates` workers run the import job.
    let rates = service(app.pool.clone());
    let status = import_by_app(&rates, CLEAN, &request("twilio-voice.csv", None))
        .await
        .expect("the app's job imports the deck");
    rates
        .activate(status.deck_id, admin(), false)
        .await
        .expect("activate");

    let anonymous = reqwest::Client::new()
        .get(format!("{}/api/rates/quote?number=%2B442079460958", app.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let mut browser = app.confirmed_user("caller@example.com").await;
    let signed_in = browser.sign_in("caller@example.com", PASSWORD).await;
    assert_eq!(signed_in.location(), Some("/account"), "{}", signed_in.body);

    // serve's runner and rate book pick the activation and the sign-up credit up.
    let quote: serde_json::Value = ringledger_tests::eventually(Duration::from_secs(20), || {
        let mut b = auth_support::Browser {
            base: browser.base.clone(),
            client: browser.client.clone(),
            cookie: browser.cookie.clone(),
        };
        async move {
            let r = b.get("/api/rates/quote?number=%2B44%2020%207946%200958").await;
            let body: serde_json::Value = serde_json::from_str(&r.body).ok()?;
            (r.status == StatusCode::OK && body["available"]["amount"] == "2.000000").then_some(body)
        }
    })
    .await
    .expect("a quote once the deck is active and the credit is in");
    assert_eq!(quote["country"], "GB");
    assert_eq!(quote["prefix"], "442");
    assert_eq!(
        quote["rate_per_minute"],
        serde_json::json!({"amount": "0.018200", "currency": "USD"})
    );
    // $2.00 at $0.0182/min per second: floor(2_000_000 * 60 / 18_200) = 6593 s.
    assert_eq!(quote["max_duration_seconds"], 6_593);
    assert_eq!(quote["blocked_reason"], serde_json::Value::Null);
    assert!(quote["number"].as_str().expect("masked").contains('*'), "{quote}");
    let quote_id = quote["quote_id"].as_str().expect("id");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM quotes WHERE id = $1::uuid")
        .bind(quote_id)
        .fetch_one(&app.pool)
        .await
        .expect("query");
    assert_eq!(stored, 1);

    let emergency = browser.get("/api/rates/quote?number=911&region=US").await;
    assert_eq!(emergency.status, StatusCode::OK);
    assert!(
        emergency.body.contains("cannot place emergency calls"),
        "{}",
        emergency.body
    );
    let garbage = browser.get("/api/rates/quote?number=12ab").await;
    assert_eq!(
        garbage.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        garbage.body
    );
    app.stop().await;
}
