//! `ringledger-loadgen` end to end, small: three simulated media nodes play about fifty calls
//! against an api started on a database of its own, with one-second ticks, repeats, older
//! reports, gaps, accounts running dry, late BYEs and a node dying mid-run; every end check
//! must pass. And the media side of `hangup`: a node's control URL checks the api's JWT,
//! refuses replays and unknown calls, and ends a held call with `stop`/`hangup_requested`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ringledger_tests::loadgen::{self, call, InProcess, Node, Options, Stats, Target};
use ringledger_tests::{eventually, TestDb};
use serde_json::json;

fn small() -> Options {
    Options {
        nodes: 3,
        calls_per_node: 6,
        duration: 5,
        tick: 1,
        accounts: 6,
        dry_share: 0.5,
        dead_nodes: 1,
        seed: 11,
        run_seconds: 14,
        start_rate: 50,
        calm: false,
        validity_seconds: 3,
        grant_seconds: 8,
        regrant_lead_seconds: 3,
        max_ring_seconds: 3,
        pool_size: 16,
        no_verify: false,
        replay_bin: None,
    }
}

async fn target(db: &TestDb, options: &Options) -> Arc<Target> {
    let how = InProcess {
        database_url: db.url.clone(),
        pool_size: options.pool_size,
        calls: options.calls_config(),
    };
    Arc::new(Target::in_process(how).await.expect("in-process api"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_load_passes_every_check() {
    let db = TestDb::create().await.expect("db");
    let options = small();
    let target = target(&db, &options).await;
    let outcome = loadgen::run(target, options).await.expect("the load runs");
    outcome.print();
    assert!(outcome.passed(), "checks failed: {:#?}", outcome.report.failures);
    let started = outcome.records.iter().filter(|r| r.started).count();
    assert!(started >= 30, "only {started} calls started");
    // The scenario did what it says: a dead node's calls were swept, accounts ran dry, the
    // api answered repeats and refused older reports.
    assert!(outcome.report.swept >= 1, "no call was swept");
    assert!(
        outcome.stats.final_units.get() >= 1,
        "no call reached a final unit"
    );
    assert!(
        outcome.stats.duplicates_checked.get() >= 1,
        "no repeat was checked"
    );
    assert!(
        outcome.stats.reorders_checked.get() >= 1,
        "no older report was sent"
    );
    assert!(outcome.report.calls_ended >= 20);
}

fn api_jwt(node: &str, secret: &str, jti: uuid::Uuid) -> String {
    let now = Utc::now().timestamp();
    let claims =
        json!({"iss": "ringledger-api", "sub": "api", "aud": node, "iat": now, "exp": now + 30, "jti": jti});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hangs_up_a_call_when_the_api_asks_and_refuses_bad_requests() {
    let db = TestDb::create().await.expect("db");
    let options = Options {
        validity_seconds: 30,
        ..small()
    };
    let target = target(&db, &options).await;
    let account = target
        .open_account(loadgen::FULL_CREDIT_MICROS)
        .await
        .expect("account");
    let stats = Arc::new(Stats::default());
    let node = Node::start(
        "hangup-node",
        &target.base,
        target.secrets.media.clone(),
        stats.clone(),
    )
    .await
    .expect("node");
    let (_drain_tx, drain) = tokio::sync::watch::channel(false);
    let cx = call::CallContext {
        node: node.clone(),
        target: target.clone(),
        tick: Duration::from_secs(1),
        drain,
    };
    let plan = call::CallPlan {
        number: "+447712345678",
        ring: Duration::from_millis(100),
        fail: None,
        talk: Duration::from_secs(600),
        hangup_cause: "caller_hangup",
        late_bye: Duration::ZERO,
        duplicate_p: 0.0,
        reorder_p: 0.0,
        gap_p: 0.0,
        seed: 1,
    };
    let playing = tokio::spawn(async move { call::play(&cx, account, plan).await });
    // Wait until the call has been answered and metered at least once.
    let metered = eventually(Duration::from_secs(30), || async {
        (stats.interims.get() >= 1).then_some(())
    })
    .await;
    if metered.is_err() && playing.is_finished() {
        panic!("the call was never metered: {:?}", playing.await);
    }
    metered.expect("the call is metered");
    let call_id = node
        .calls_held()
        .into_iter()
        .next()
        .expect("the node holds the call");

    let http = reqwest::Client::new();
    let url = format!("{}/v1/hangup", node.control_url);
    let secret = target.secrets.media.to_string();
    let body =
        json!({"call_id": call_id, "reason": "account_frozen", "message": "the account is frozen (fraud)"});
    let post = |jwt: Option<String>, body: serde_json::Value| {
        let mut request = http.post(&url).json(&body);
        if let Some(jwt) = jwt {
            request = request.bearer_auth(jwt);
        }
        async move {
            let response = request.send().await.expect("control URL answers");
            let status = response.status().as_u16();
            (
                status,
                response.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // No token, a token for another node, a wrong secret: 401 and the call goes on.
    let (s, refused) = post(None, body.clone()).await;
    assert_eq!(
        (s, refused["code"].as_str()),
        (401, Some("unauthorised")),
        "{refused}"
    );
    let other = api_jwt("another-node", &secret, uuid::Uuid::new_v4());
    assert_eq!(post(Some(other), body.clone()).await.0, 401);
    let wrong = api_jwt(
        "hangup-node",
        "not-the-media-secret-0123456789abcdef",
        uuid::Uuid::new_v4(),
    );
    assert_eq!(post(Some(wrong), body.clone()).await.0, 401);
    // A call the node does not hold: 404 unknown_call.
    let unknown = json!({"call_id": uuid::Uuid::new_v4(), "reason": "admin", "message": "x"});
    let (s, missing) = post(
        Some(api_jwt("hangup-node", &secret, uuid::Uuid::new_v4())),
        unknown,
    )
    .await;
    assert_eq!(
        (s, missing["code"].as_str()),
        (404, Some("unknown_call")),
        "{missing}"
    );
    assert!(!playing.is_finished(), "the call ended on a refused hangup");

    // The real thing: 202, then the node ends the call with stop/hangup_requested.
    let jti = uuid::Uuid::new_v4();
    let (s, accepted) = post(Some(api_jwt("hangup-node", &secret, jti)), body.clone()).await;
    assert_eq!(
        (s, accepted["call_id"].clone()),
        (202, json!(call_id)),
        "{accepted}"
    );
    let (s, replay) = post(Some(api_jwt("hangup-node", &secret, jti)), body.clone()).await;
    assert_eq!(
        (s, replay["code"].as_str()),
        (401, Some("unauthorised")),
        "a replayed jti: {replay}"
    );
    let record = tokio::time::timeout(Duration::from_secs(30), playing)
        .await
        .expect("the call ends")
        .expect("the call task");
    assert_eq!(
        record.end,
        call::End::Stopped("hangup_requested".into()),
        "{record:?}"
    );
    assert_eq!(record.hangup.as_deref(), Some("account_frozen"));
    let cause: Option<String> = sqlx::query_scalar(
        "SELECT payload::jsonb ->> 'cause' FROM events WHERE aggregate_type = 'Call' AND aggregate_id = $1 AND event_type = 'CallEnded'",
    )
    .bind(call_id.to_string())
    .fetch_optional(&db.pool)
    .await
    .expect("query");
    assert_eq!(cause.as_deref(), Some("hangup_requested"));
    // Once ended, the node no longer holds it.
    let (s, _) = post(Some(api_jwt("hangup-node", &secret, uuid::Uuid::new_v4())), body).await;
    assert_eq!(s, 404);
}
