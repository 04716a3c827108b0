//! Fraud detection end to end, with real calls through the metering endpoints and a real
//! Postgres: a burst of short calls is flagged from the fifth, normal calls are not, calls into
//! a high-risk range are flagged and freeze the account (reason `fraud`) at the threshold; the
//! what-if agrees with what was flagged and writes nothing; a rebuild of the signals and a
//! re-run of the process manager from position 0 flag and freeze nothing new.

use std::collections::BTreeSet;
use std::time::Duration;

use ringledger_api::calls::CallsConfig;
use ringledger_api::fraud::ranges::RangeBook;
use ringledger_api::fraud::{ranges, what_if, ScanReport, WhatIf};
use ringledger_domain::account::{AccountEvent, FreezeReason};
use ringledger_domain::fraud::{RiskRange, Thresholds};
use ringledger_domain::{AccountId, CallId};
use ringledger_projections::{versions, Runner, RunnerConfig};
use ringledger_tests::accounts::fold_stream;
use ringledger_tests::metering::{funded_account, start_app, Metering};
use ringledger_tests::{eventually, TestDb};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(60);

/// Places, answers and stops a call that talked `talk_ms`.
async fn call(app: &Metering, account: AccountId, talk_ms: u64) -> CallId {
    let (call, status, grant) = app.start_call(account).await.expect("start");
    assert_eq!(status, 200, "{grant}");
    let c = call.to_string();
    let (s, body) = app
        .post("progress", &json!({"call_id": c, "seq": 1, "state": "answered"}))
        .await
        .expect("answered");
    assert_eq!(s, 200, "{body}");
    let stop = json!({"call_id": c, "seq": 2, "talk_ms": talk_ms, "cause": "caller_hangup", "quality": null});
    let (s, body) = app.post("stop", &stop).await.expect("stop");
    assert_eq!(s, 200, "{body}");
    call
}

/// Scans until the process manager has read every Call event in the log (its own flags
/// included), and returns what those scans did.
async fn settle(app: &Metering, db: &TestDb) -> ScanReport {
    let total = std::sync::Mutex::new(ScanReport::default());
    eventually(DEADLINE, || async {
        let report = app.fraud.scan_once().await.ok()?;
        if let Ok(mut t) = total.lock() {
            t.events += report.events;
            t.flags += report.flags;
            t.freezes += report.freezes;
        }
        let at = app.fraud.checkpoint().await.ok()?;
        let head: Option<(i64, i64)> = sqlx::query_as(
            "SELECT tx_id::text::bigint, global_position FROM events WHERE aggregate_type = 'Call'
              ORDER BY tx_id DESC, global_position DESC LIMIT 1",
        )
        .fetch_optional(&db.pool)
        .await
        .ok()?;
        let caught_up = head.is_none_or(|(tx, pos)| (at.tx_id, at.global_position) >= (tx, pos));
        caught_up.then_some(())
    })
    .await
    .expect("the fraud process manager catches up");
    total.into_inner().unwrap_or_default()
}

/// (call, rule) of every `CallFlagged` in the log.
async fn flags(db: &TestDb) -> BTreeSet<(String, String)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT aggregate_id, payload->>'rule' FROM events WHERE event_type = 'CallFlagged'")
            .fetch_all(&db.pool)
            .await
            .expect("flags");
    rows.into_iter().collect()
}

async fn event_count(db: &TestDb) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .expect("count")
}

/// A digest of everything a what-if must leave alone: the log, every read model and
/// checkpoint the fraud work touches.
async fn snapshot(db: &TestDb) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT count(*)::text || ':' || coalesce(max(global_position), 0)::text FROM events",
        "SELECT coalesce(md5(string_agg(call_id::text || rule || score::text, ',' ORDER BY call_id, rule)), '') FROM fraud_flags",
        "SELECT coalesce(md5(string_agg(call_id::text || billed_seconds::text, ',' ORDER BY call_id)), '') FROM fraud_calls",
        "SELECT coalesce(md5(string_agg(projection || version::text || global_position::text, ',' ORDER BY projection, version)), '') FROM projection_checkpoints",
        "SELECT coalesce(md5(string_agg(name || global_position::text, ',')), '') FROM fraud_process",
        "SELECT count(*)::text FROM fraud_risk_range_audit",
    ] {
        out.push(sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql));
    }
    out
}

async fn frozen_for_fraud(db: &TestDb, account: AccountId) -> bool {
    let (state, events) = fold_stream(&db.pool, account).await.expect("stream");
    let frozen = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                AccountEvent::AccountFrozen {
                    reason: FreezeReason::Fraud,
                    ..
                }
            )
        })
        .count();
    assert!(frozen <= 1, "frozen for fraud {frozen} times");
    state.frozen_reasons().contains(&FreezeReason::Fraud)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_flag_real_calls_freeze_at_the_threshold_and_never_twice() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");

    // A normal history: a few calls of a minute or two. Nothing fires.
    let normal = funded_account(&db, 5_000_000).await.expect("account");
    for talk_ms in [65_000, 120_000, 95_000] {
        call(&app, normal, talk_ms).await;
    }
    // A burst: four short calls stay below the threshold, the fifth fires.
    let burst = funded_account(&db, 5_000_000).await.expect("account");
    let mut short = Vec::new();
    for _ in 0..4 {
        short.push(call(&app, burst, 2_000).await);
    }
    settle(&app, &db).await;
    assert_eq!(
        flags(&db).await,
        BTreeSet::new(),
        "no rule fires on a normal history"
    );
    short.push(call(&app, burst, 2_000).await);
    settle(&app, &db).await;
    let fifth = (short[4].to_string(), "short_call_burst".to_owned());
    assert_eq!(flags(&db).await, BTreeSet::from([fifth.clone()]));
    let evidence: String = sqlx::query_scalar(
        "SELECT payload->>'evidence' FROM events WHERE event_type = 'CallFlagged' AND aggregate_id = $1",
    )
    .bind(&fifth.0)
    .fetch_one(&db.pool)
    .await
    .expect("evidence");
    assert!(
        evidence.starts_with("5 answered calls of at most 10 s"),
        "{evidence}"
    );
    assert!(!evidence.contains("447712345678"), "no number in evidence");
    assert!(
        !frozen_for_fraud(&db, burst).await,
        "300 is below the freeze threshold"
    );

    // The test number's range becomes high-risk: each call is flagged 600; the second freezes.
    let admin = AccountId::new_v7();
    let range = RiskRange::parse("+4477", "test: UK Vodafone mobiles").expect("range");
    ranges::add(&db.pool, admin, &range).await.expect("add range");
    let risky = funded_account(&db, 5_000_000).await.expect("account");
    let first = call(&app, risky, 30_000).await;
    settle(&app, &db).await;
    assert!(flags(&db)
        .await
        .contains(&(first.to_string(), "high_risk_range".to_owned())));
    assert!(
        !frozen_for_fraud(&db, risky).await,
        "600 is below the freeze threshold"
    );
    let second = call(&app, risky, 30_000).await;
    settle(&app, &db).await;
    assert!(flags(&db)
        .await
        .contains(&(second.to_string(), "high_risk_range".to_owned())));
    // The freeze follows the flag once the signals show it: the next scan or two.
    eventually(DEADLINE, || async {
        app.fraud.scan_once().await.ok()?;
        frozen_for_fraud(&db, risky).await.then_some(())
    })
    .await
    .expect("frozen for fraud at 1,200 >= 1,000");
    let (_, status, denied) = app.start_call(risky).await.expect("start while frozen");
    assert_ne!(status, 200, "a frozen account places no call: {denied}");
    assert!(!frozen_for_fraud(&db, burst).await && !frozen_for_fraud(&db, normal).await);
    let flagged = flags(&db).await;
    assert_eq!(flagged.len(), 3, "{flagged:?}");

    // What-if agrees with what the live rules flagged — each call judged by the list as it
    // stood when placed — and writes nothing.
    settle(&app, &db).await;
    let before = snapshot(&db).await;
    let options = WhatIf {
        from: None,
        to: None,
        thresholds: Thresholds::default(),
        ranges: RangeBook::as_listed(ranges::history(&db.pool).await.expect("history")),
    };
    let report = what_if(&db.pool, &options).await.expect("what-if");
    let predicted: BTreeSet<(String, String)> = report
        .hits
        .iter()
        .map(|h| (h.call_id.to_string(), h.rule.as_str().to_owned()))
        .collect();
    let freezes: Vec<AccountId> = report
        .accounts
        .iter()
        .filter(|a| a.would_freeze)
        .map(|a| a.account_id)
        .collect();
    assert_eq!(predicted, flagged, "what-if agrees with the live rules");
    assert_eq!(freezes, vec![risky]);
    // The edited list tried on the whole history: the older calls to the range would be flagged too.
    let all = WhatIf {
        ranges: RangeBook::fixed(ranges::load(&db.pool).await.expect("ranges")),
        ..options.clone()
    };
    let report = what_if(&db.pool, &all).await.expect("what-if");
    let high_risk = report
        .hits
        .iter()
        .filter(|h| h.rule.as_str() == "high_risk_range")
        .count();
    assert_eq!(high_risk, 3 + 5 + 2);
    // With overrides: every call of these day-old accounts is "high cost" at a rate of 1 micro.
    let loose = WhatIf {
        thresholds: Thresholds {
            high_cost_rate_micros: 1,
            ..Thresholds::default()
        },
        ..all.clone()
    };
    let report = what_if(&db.pool, &loose).await.expect("what-if with overrides");
    let new_account = report
        .hits
        .iter()
        .filter(|h| h.rule.as_str() == "new_account_high_cost")
        .count();
    assert_eq!(
        new_account,
        3 + 5 + 2,
        "every call placed fires new_account_high_cost"
    );
    assert_eq!(snapshot(&db).await, before, "what-if wrote nothing");

    // Rebuild the signals blue/green, re-run the process manager from position 0: nothing new.
    let events_before = event_count(&db).await;
    let signals = ringledger_projections::by_name("fraud_signals").expect("projection");
    let version = versions::create_version(&db.pool, signals.as_ref())
        .await
        .expect("version");
    Runner::new(db.pool.clone(), signals.clone(), version, RunnerConfig::rebuild())
        .catch_up(None, |_| {})
        .await
        .expect("rebuild");
    versions::create_indexes(&db.pool, signals.as_ref(), version)
        .await
        .expect("indexes");
    versions::switch(&db.pool, signals.as_ref(), version)
        .await
        .expect("switch");
    let rebuilt: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM fraud_flags_v{version}"))
        .fetch_one(&db.pool)
        .await
        .expect("rebuilt flags");
    assert_eq!(rebuilt, 3, "the rebuilt signals hold the same flags");
    app.fraud.reset_checkpoint().await.expect("reset");
    let rerun = settle(&app, &db).await;
    assert_eq!((rerun.flags, rerun.freezes), (0, 0), "{rerun:?}");
    assert_eq!(event_count(&db).await, events_before, "a re-run appends nothing");
    assert_eq!(flags(&db).await, flagged);
    assert!(frozen_for_fraud(&db, risky).await);
}
