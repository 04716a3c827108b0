//! Forced hangup, api → media, end to end against a fake media node (a small axum server that
//! answers `hangup` as docs/metering-protocol.md says): a ban or a freeze during a call sends
//! `hangup` to the node within one tick interval, and the node's `stop` ends the call with
//! the ban's (freeze's) cause and settles the money; an admin's End call does the same with
//! cause `admin`; a final grant the node lets run past its ceiling is hung up by the api.

use std::time::Duration;

use ringledger_api::calls::CallsConfig;
use ringledger_api::ledger::Envelope;
use ringledger_domain::account::{AccountCommand, FreezeReason};
use ringledger_domain::call::HangupReason;
use ringledger_domain::{ActorId, CallId};
use ringledger_tests::accounts::fold_stream;
use ringledger_tests::metering::{
    call_events, funded_account, logged_end, per_second_cost, rate_micros, start_app, FakeNode, Metering,
};
use ringledger_tests::TestDb;
use serde_json::json;
use uuid::Uuid;

/// One tick: the interim period of the default grant policy.
fn tick() -> Duration {
    Duration::from_secs(CallsConfig::default().policy.interim_seconds.into())
}

async fn talking(app: &Metering, call: CallId, talk_ms: u64) {
    let body = json!({"call_id": call.to_string(), "seq": 2, "talk_ms": talk_ms});
    let (status, grant) = app.post("interim", &body).await.expect("interim");
    assert_eq!(status, 200, "{grant}");
}

/// The node's `stop` after a hangup; returns the settlement.
async fn stop_after_hangup(app: &Metering, call: CallId, talk_ms: u64) -> serde_json::Value {
    let body =
        json!({"call_id": call.to_string(), "seq": 3, "talk_ms": talk_ms, "cause": "hangup_requested"});
    let (status, ended) = app.post("stop", &body).await.expect("stop");
    assert_eq!(status, 200, "{ended}");
    ended
}

async fn settled_balance_is(db: &TestDb, account: ringledger_domain::AccountId, start: i64, charged: i64) {
    let (state, _) = fold_stream(&db.pool, account).await.expect("fold");
    let b = state.balances();
    assert_eq!(b.reserved, 0, "nothing stays reserved");
    assert_eq!(
        b.available,
        start - charged,
        "the account paid exactly what was charged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_during_a_call_reaches_the_media_node_within_one_tick_and_the_stop_settles_with_the_ban_cause() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let node = FakeNode::start().await.expect("node");
    app.register(&node.url).await.expect("register");
    let account = funded_account(&db, 5_000_000).await.expect("account");
    let (call, rate) = app.answered_call(account).await.expect("call");
    talking(&app, call, 30_000).await;

    let accounts = ringledger_tests::accounts::service(db.pool.clone());
    let ban = AccountCommand::Ban {
        actor: ActorId(Uuid::from_u128(7)),
        reason: "abuse reported".into(),
    };
    accounts
        .execute(account, Envelope::new(ban))
        .await
        .expect("banned");
    let banned_at = std::time::Instant::now();
    // The deadline is the bound: one tick interval after the ban.
    let seen = node.hangup(call, tick()).await.expect("hangup within one tick");
    assert!(seen.at.duration_since(banned_at) <= tick());
    assert_eq!(seen.body["reason"], "account_banned", "{}", seen.body);
    assert!(call_events(&db, call)
        .await
        .expect("events")
        .contains(&"CallHangupRequested".to_owned()));

    let ended = stop_after_hangup(&app, call, 31_500).await;
    // 31.5 s bill as 32 s, per second.
    let cost = per_second_cost(rate, 32);
    assert_eq!(ended["charged_micros"], cost, "{ended}");
    let (state, cause, charged) = logged_end(&db, call).await.expect("logged");
    assert_eq!(
        (state.as_str(), cause.as_str(), charged),
        ("ended", "account_banned", cost)
    );
    settled_balance_is(&db, account, 5_000_000, cost).await;
    assert_eq!(node.hangups_for(call).len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fraud_freeze_ends_the_accounts_calls_with_cause_account_frozen() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let node = FakeNode::start().await.expect("node");
    app.register(&node.url).await.expect("register");
    let account = funded_account(&db, 5_000_000).await.expect("account");
    let (first, rate) = app.answered_call(account).await.expect("first call");
    let (second, _) = app.answered_call(account).await.expect("second call");
    let cost = per_second_cost(rate, 4);
    let accounts = ringledger_tests::accounts::service(db.pool.clone());
    let freeze = AccountCommand::Freeze {
        reason: FreezeReason::Fraud,
        actor: None,
        note: "rule burst_of_short_calls".into(),
    };
    accounts
        .execute(account, Envelope::new(freeze))
        .await
        .expect("frozen");
    for call in [first, second] {
        let seen = node.hangup(call, tick()).await.expect("hangup within one tick");
        assert_eq!(seen.body["reason"], "account_frozen");
        stop_after_hangup(&app, call, 4_000).await;
        let (_, cause, charged) = logged_end(&db, call).await.expect("logged");
        assert_eq!((cause.as_str(), charged), ("account_frozen", cost));
    }
    settled_balance_is(&db, account, 5_000_000, 2 * cost).await;
    // The frozen account cannot start another call.
    let (_, status, denial) = app.start_call(account).await.expect("start");
    assert_eq!(
        (status, denial["code"].as_str()),
        (403, Some("account_frozen")),
        "{denial}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_ends_a_call_once_and_it_ends_with_cause_admin() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let node = FakeNode::start().await.expect("node");
    app.register(&node.url).await.expect("register");
    let account = funded_account(&db, 5_000_000).await.expect("account");
    let (call, _) = app.answered_call(account).await.expect("call");
    let now = chrono::Utc::now();
    app.calls
        .request_hangup(call, HangupReason::Admin, now)
        .await
        .expect("hangup requested");
    // A second click changes nothing: the hangup is keyed by (call, reason).
    app.calls
        .request_hangup(call, HangupReason::Admin, now)
        .await
        .expect("again");
    let seen = node.hangup(call, tick()).await.expect("hangup");
    assert_eq!(seen.body["reason"], "admin");
    // A report the node sends meanwhile hears it too.
    let body = json!({"call_id": call.to_string(), "seq": 2, "talk_ms": 9_000});
    let (_, grant) = app.post("interim", &body).await.expect("interim");
    assert_eq!(
        (grant["hangup"].as_str(), grant["final_unit"].as_bool()),
        (Some("admin"), Some(true))
    );
    stop_after_hangup(&app, call, 9_500).await;
    let (_, cause, _) = logged_end(&db, call).await.expect("logged");
    assert_eq!(cause, "admin");
    let requested = call_events(&db, call)
        .await
        .expect("events")
        .iter()
        .filter(|e| *e == "CallHangupRequested")
        .count();
    assert_eq!(requested, 1);
    assert_eq!(node.hangups_for(call).len(), 1, "one hangup for two clicks");
    // Ending a call that is over changes nothing and says so.
    let over = app.calls.request_hangup(call, HangupReason::Admin, now).await;
    assert!(over.is_err(), "a call that is over cannot be hung up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_grant_the_node_lets_run_past_its_ceiling_is_hung_up_by_the_api() {
    let db = TestDb::create().await.expect("db");
    let calls = CallsConfig {
        final_unit_grace_seconds: 1,
        ..CallsConfig::default()
    };
    let app = start_app(&db, calls).await.expect("app");
    let node = FakeNode::start().await.expect("node");
    app.register(&node.url).await.expect("register");
    // 3,800 micro-units pay a few seconds: the first grant is final.
    let account = funded_account(&db, 3_800).await.expect("account");
    let (call, status, grant) = app.start_call(account).await.expect("start");
    assert_eq!(status, 200, "{grant}");
    let rate = rate_micros(&grant).expect("rate");
    let affordable = (1..)
        .take_while(|s| per_second_cost(rate, *s) <= 3_800)
        .last()
        .unwrap_or(0);
    assert_eq!(
        (grant["granted_seconds"].as_i64(), grant["final_unit"].as_bool()),
        (Some(affordable), Some(true))
    );
    let body = json!({"call_id": call.to_string(), "seq": 1, "state": "answered"});
    app.post("progress", &body).await.expect("answered");
    // The node goes quiet and never hangs up: past the ceiling and the 1 s grace, the api does.
    let seen = node.hangup(call, Duration::from_secs(30)).await.expect("hangup");
    assert_eq!(seen.body["reason"], "final_unit");
    let talk_ms = u64::try_from(affordable + 3).expect("seconds") * 1_000;
    stop_after_hangup(&app, call, talk_ms).await;
    let (_, cause, charged) = logged_end(&db, call).await.expect("logged");
    // Three seconds past what 3,800 pays: the customer pays 3,800, the rest is overrun.
    assert_eq!((cause.as_str(), charged), ("final_unit", 3_800));
    settled_balance_is(&db, account, 3_800, 3_800).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_reported_past_a_final_ceiling_sends_the_hangup_at_once() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let node = FakeNode::start().await.expect("node");
    app.register(&node.url).await.expect("register");
    let account = funded_account(&db, 3_800).await.expect("account");
    let (call, _) = app.answered_call(account).await.expect("call");
    let body = json!({"call_id": call.to_string(), "seq": 2, "talk_ms": 60_000});
    let (_, grant) = app.post("interim", &body).await.expect("interim");
    assert_eq!(grant["hangup"], "final_unit", "{grant}");
    let seen = node.hangup(call, tick()).await.expect("hangup");
    assert_eq!(seen.body["reason"], "final_unit");
}
