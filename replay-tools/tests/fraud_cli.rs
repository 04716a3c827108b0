//! `ringledger-replay fraud what-if` end to end: real calls through the metering endpoints,
//! then the binary prints what the rules would flag — as CSV, with overrides, with a ranges
//! file — refuses bad overrides clearly, and writes nothing.

use std::process::{Command, Output};

use ringledger_api::calls::CallsConfig;
use ringledger_domain::AccountId;
use ringledger_tests::metering::{funded_account, start_app, Metering};
use ringledger_tests::TestDb;
use serde_json::json;

fn replay(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringledger-replay"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("ringledger-replay runs")
}

/// CSV data rows (the header dropped) whose `rule` column is `rule`.
fn rows(out: &Output, rule: &str) -> usize {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .records()
        .filter_map(Result::ok)
        .filter(|r| r.get(3) == Some(rule))
        .count()
}

async fn short_call(app: &Metering, account: AccountId) {
    let (call, status, grant) = app.start_call(account).await.expect("start");
    assert_eq!(status, 200, "{grant}");
    let c = call.to_string();
    let (s, _) = app
        .post("progress", &json!({"call_id": c, "seq": 1, "state": "answered"}))
        .await
        .expect("answered");
    assert_eq!(s, 200);
    let stop = json!({"call_id": c, "seq": 2, "talk_ms": 3_000, "cause": "caller_hangup", "quality": null});
    assert_eq!(app.post("stop", &stop).await.expect("stop").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_prints_what_would_be_flagged_and_writes_nothing() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 5_000_000).await.expect("account");
    for _ in 0..5 {
        short_call(&app, account).await;
    }
    // The app's fraud scan flags the fifth call; after that nothing more is written.
    ringledger_tests::eventually(std::time::Duration::from_secs(60), || async {
        app.fraud.scan_once().await.ok()?;
        let flags: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CallFlagged'")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (flags == 1).then_some(())
    })
    .await
    .expect("the live rules flag the burst");
    let count = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&db.pool)
            .await
            .expect("count");
        n
    };
    let before = count().await;

    let help = replay(&db, &["fraud", "what-if", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("writes no event"));
    let out = replay(&db, &["fraud", "what-if", "--format", "csv"]);
    assert_eq!(rows(&out, "short_call_burst"), 1, "the fifth short call");
    let out = replay(
        &db,
        &[
            "fraud",
            "what-if",
            "--format",
            "csv",
            "--set",
            "burst_min_calls=3",
        ],
    );
    assert_eq!(rows(&out, "short_call_burst"), 3, "the third, fourth and fifth");
    let out = replay(
        &db,
        &[
            "fraud",
            "what-if",
            "--format",
            "csv",
            "--set",
            "burst_min_calls=3",
            "--only",
            "high_risk_range",
        ],
    );
    assert_eq!(rows(&out, "short_call_burst"), 0);
    let file = std::env::temp_dir().join(format!("ranges-{}.csv", uuid::Uuid::now_v7()));
    std::fs::write(&file, "prefix,label\n4477,test: UK Vodafone\n").expect("ranges file");
    let path = file.display().to_string();
    let out = replay(
        &db,
        &[
            "fraud",
            "what-if",
            "--format",
            "csv",
            "--ranges",
            &path,
            "--threshold",
            "1200",
        ],
    );
    assert_eq!(rows(&out, "high_risk_range"), 5);
    let table = replay(&db, &["fraud", "what-if", "--ranges", &path]);
    let text = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        text.contains("accounts with flags") && text.contains(&account.to_string()),
        "{text}"
    );
    let _ = std::fs::remove_file(&file);

    let bad = replay(&db, &["fraud", "what-if", "--set", "burst_calls=3"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no threshold named `burst_calls`"));
    let bad = replay(&db, &["fraud", "what-if", "--set", "burst_min_calls=1"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("burst_min_calls"));
    assert_eq!(count().await, before, "what-if wrote nothing");
}
