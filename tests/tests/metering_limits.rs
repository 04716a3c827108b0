//! Metering's guards over HTTP: many concurrent calls on a small balance never charge more
//! than it holds; a denial names the limit it hit; bad, expired or replayed JWTs are 401.

use chrono::Utc;
use ringledger_api::calls::{token, CallsConfig};
use ringledger_domain::call::Limits;
use ringledger_tests::accounts::fold_stream;
use ringledger_tests::metering::{funded_account, start_app, MEDIA_SECRET, NODE};
use ringledger_tests::TestDb;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_calls_never_charge_more_than_the_balance() {
    let db = TestDb::create().await.expect("db");
    let calls = CallsConfig {
        limits: Limits {
            max_concurrent_calls: 50,
            ..Limits::default()
        },
        ..CallsConfig::default()
    };
    let app = start_app(&db, calls).await.expect("app");
    // $0.30: about five minutes at $0.057.
    let balance = 300_000;
    let account = funded_account(&db, balance).await.expect("account");
    let runs = (0..20).map(|_| {
        let app = &app;
        async move {
            let (call, status, _) = app.start_call(account).await.expect("start");
            if status != 200 {
                assert_eq!(status, 403);
                return 0;
            }
            let c = call.to_string();
            let _ = app
                .post("progress", &json!({"call_id": c, "seq": 1, "state": "answered"}))
                .await;
            let _ = app
                .post("interim", &json!({"call_id": c, "seq": 2, "talk_ms": 50_000}))
                .await;
            let stop = json!({"call_id": c, "seq": 3, "talk_ms": 120_000, "cause": "caller_hangup"});
            let (s, ended) = app.post("stop", &stop).await.expect("stop");
            assert_eq!(s, 200, "{ended}");
            ended["charged_micros"].as_i64().expect("charged")
        }
    });
    let charged: Vec<i64> = futures::future::join_all(runs).await;
    let total: i64 = charged.iter().sum();
    assert!(charged.iter().filter(|c| **c > 0).count() >= 2, "{charged:?}");
    assert!(total <= balance, "charged {total} of {balance}");
    let (state, _) = fold_stream(&db.pool, account).await.expect("fold");
    let b = state.balances();
    assert!(b.available >= 0);
    assert_eq!(b.reserved, 0);
    assert_eq!(b.available + total, balance);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denial_names_the_limit_it_hit() {
    let db = TestDb::create().await.expect("db");
    let calls = CallsConfig {
        limits: Limits {
            max_concurrent_calls: 1,
            ..Limits::default()
        },
        ..CallsConfig::default()
    };
    let app = start_app(&db, calls).await.expect("app");
    let account = funded_account(&db, 1_000_000).await.expect("account");
    let (_, first, _) = app.start_call(account).await.expect("first");
    assert_eq!(first, 200);
    let (_, status, denial) = app.start_call(account).await.expect("second");
    assert_eq!(status, 403, "{denial}");
    assert_eq!(denial["code"], "concurrent_calls");
    assert_eq!(
        denial["limit"],
        json!({"name": "max_concurrent_calls", "value": 1})
    );
    assert!(
        denial["message"]
            .as_str()
            .unwrap_or_default()
            .contains("concurrent_calls = 1"),
        "{denial}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_expired_long_or_replayed_tokens_are_refused() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let body = json!({"node_id": NODE, "control_url": "http://127.0.0.1:7070",
        "public_ws_url": "ws://127.0.0.1:7071/ws",
        "load": {"active_calls": 0, "max_calls": 10, "cpu_per_mille": 5}});
    let now = Utc::now().timestamp();
    let secret = MEDIA_SECRET.as_bytes();
    let wrong = token::mint_media(NODE, b"not-the-media-secret-0123456789abcdef", now, 30).expect("mint");
    let expired = token::mint_media(NODE, secret, now - 120, 30).expect("mint");
    let long = token::mint_media(NODE, secret, now, 300).expect("mint");
    let other = token::mint_media("media-2", secret, now, 30).expect("mint");
    for (name, jwt) in [
        ("none", None),
        ("wrong", Some(&wrong)),
        ("expired", Some(&expired)),
        ("long", Some(&long)),
        ("other node", Some(&other)),
    ] {
        let (status, error) = app
            .post_with("register", &body, jwt.map(String::as_str))
            .await
            .expect("post");
        assert_eq!(
            (status, error["code"].as_str()),
            (401, Some("unauthorised")),
            "{name}: {error}"
        );
    }
    let good = token::mint_media(NODE, secret, now, 30).expect("mint");
    let (status, registered) = app
        .post_with("register", &body, Some(&good))
        .await
        .expect("register");
    assert_eq!(status, 200, "{registered}");
    assert_eq!(registered["heartbeat_seconds"], 15);
    let (status, replay) = app
        .post_with("register", &body, Some(&good))
        .await
        .expect("replay");
    assert_eq!(
        (status, replay["code"].as_str()),
        (401, Some("unauthorised")),
        "{replay}"
    );
}

/// Starts a call, retrying a `503 busy` as a node would; returns the status and body.
async fn start_retrying(
    app: &ringledger_tests::metering::Metering,
    account: ringledger_domain::AccountId,
) -> (u16, serde_json::Value) {
    for _ in 0..20 {
        let (_, status, body) = app.start_call(account).await.expect("start");
        if status != 503 {
            return (status, body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("start stayed busy");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_starts_pass_the_concurrent_calls_limit_exactly_that_many_times() {
    let db = TestDb::create().await.expect("db");
    let limit = 3;
    let calls = CallsConfig {
        limits: Limits {
            max_concurrent_calls: limit,
            ..Limits::default()
        },
        ..CallsConfig::default()
    };
    let app = start_app(&db, calls).await.expect("app");
    let account = funded_account(&db, 10_000_000).await.expect("account");
    let starts = (0..12).map(|_| start_retrying(&app, account));
    let answers = futures::future::join_all(starts).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(ok, limit as usize, "{answers:?}");
    for (status, denial) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 403, "{denial}");
        assert_eq!(denial["code"], "concurrent_calls", "{denial}");
        assert_eq!(
            denial["limit"],
            json!({"name": "max_concurrent_calls", "value": limit})
        );
    }
    let (state, _) = fold_stream(&db.pool, account).await.expect("fold");
    assert_eq!(
        state.live_calls(),
        limit as usize,
        "exactly the limit holds credit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_starts_never_reserve_past_the_daily_spend_cap() {
    let db = TestDb::create().await.expect("db");
    let cap = 150_000;
    let calls = CallsConfig {
        limits: Limits {
            max_concurrent_calls: 50,
            daily_spend_cap_micros: cap,
            ..Limits::default()
        },
        ..CallsConfig::default()
    };
    let app = start_app(&db, calls).await.expect("app");
    let account = funded_account(&db, 10_000_000).await.expect("account");
    let starts = (0..10).map(|_| start_retrying(&app, account));
    let answers = futures::future::join_all(starts).await;
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(ok >= 2, "a minute's grant is well under the cap: {answers:?}");
    assert!(ok < 10, "ten first grants are over the cap: {answers:?}");
    for (status, denial) in answers.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 403, "{denial}");
        assert_eq!(denial["code"], "daily_spend_cap", "{denial}");
        assert_eq!(
            denial["limit"],
            json!({"name": "daily_spend_cap_micros", "value": cap})
        );
    }
    let (state, _) = fold_stream(&db.pool, account).await.expect("fold");
    assert!(
        state.balances().reserved <= cap,
        "reserved {} of a {cap} cap",
        state.balances().reserved
    );
    assert_eq!(
        state.spent_on(chrono::Utc::now().date_naive()).micros(),
        state.balances().reserved
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_refusals_have_their_own_codes() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 1_000_000).await.expect("account");
    let other = funded_account(&db, 1_000_000).await.expect("other account");
    let start = |quote_id: String, destination: &'static str| {
        let app = &app;
        async move {
            let (call_token, _) = app.call_token(account).expect("token");
            let body = json!({"call_token": call_token, "quote_id": quote_id, "destination": destination,
                "leg_id": "leg-1"});
            app.post("start", &body).await.expect("start")
        }
    };
    let cases = [
        (
            "unknown",
            uuid::Uuid::new_v4().to_string(),
            ringledger_tests::metering::NUMBER,
            404,
            "unknown_quote",
        ),
        (
            "other account",
            app.quote(other).await.expect("quote").id.to_string(),
            ringledger_tests::metering::NUMBER,
            403,
            "quote_other_account",
        ),
        (
            "other number",
            app.quote(account).await.expect("quote").id.to_string(),
            "+447712345679",
            403,
            "quote_other_number",
        ),
    ];
    for (name, quote_id, destination, status, code) in cases {
        let (got, error) = start(quote_id, destination).await;
        assert_eq!(
            (got, error["code"].as_str()),
            (status, Some(code)),
            "{name}: {error}"
        );
        assert!(
            error["message"].as_str().is_some_and(|m| m.contains("quote")),
            "{name}: {error}"
        );
    }
    // Expired: the stored quote's expiry moved into the past.
    let quote = app.quote(account).await.expect("quote");
    sqlx::query("UPDATE quotes SET quote = jsonb_set(quote::jsonb, '{expires_at}', '\"2020-01-01T00:00:00Z\"') WHERE id = $1")
        .bind(quote.id.0)
        .execute(&db.pool)
        .await
        .expect("expire the quote");
    let (got, error) = start(quote.id.to_string(), ringledger_tests::metering::NUMBER).await;
    assert_eq!(
        (got, error["code"].as_str()),
        (403, Some("quote_expired")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("expired at 2020-01-01")),
        "{error}"
    );
}
