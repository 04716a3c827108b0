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
