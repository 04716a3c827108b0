//! `ringledger-replay` end to end: the real binary against a database of its own holding a
//! real account history and live projections.

use std::process::{Command, Output};

use ringledger_api::ledger::Envelope;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::{AccountId, CallId, PaymentId, ReservationId};
use ringledger_projections::{versions, Runner, RunnerConfig};
use ringledger_tests::accounts::{open, service, usd};
use ringledger_tests::TestDb;

fn replay(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringledger-replay"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("ringledger-replay runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn history(db: &TestDb) -> AccountId {
    let svc = service(db.pool.clone());
    let account = AccountId::new_v7();
    open(&svc, account).await.expect("open");
    let pi = PaymentId::parse("pi_cli").expect("id");
    let buy = AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: pi,
        paid: usd(10),
        bonus: usd(1),
    };
    svc.execute(account, Envelope::new(buy)).await.expect("purchase");
    let call = CallId::new_v7();
    let reserve = AccountCommand::ReserveCredit {
        reservation_id: ReservationId::new_v7(),
        call_id: call,
        amount: usd(2),
    };
    svc.execute(account, Envelope::new(reserve))
        .await
        .expect("reserve");
    let settle = AccountCommand::SettleCall {
        call_id: call,
        cost: usd(1),
    };
    svc.execute(account, Envelope::new(settle)).await.expect("settle");
    for p in ringledger_projections::all() {
        let live = versions::ensure_live(&db.pool, p.as_ref())
            .await
            .expect("live version");
        Runner::new(db.pool.clone(), p, live, RunnerConfig::default())
            .catch_up(None, |_| {})
            .await
            .expect("catch up");
    }
    account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audits_verifies_rebuilds_and_reports() {
    let db = TestDb::create().await.expect("test database");
    let account = history(&db).await.to_string();

    let audit = replay(&db, &["audit", &account, "--format", "json"]);
    assert!(
        audit.status.success(),
        "{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&stdout(&audit)).expect("audit prints JSON");
    assert_eq!(doc["agree"], true);
    assert_eq!(
        doc["by_fold"]["available_micros"],
        usd(10).micros(),
        "11 credited, 2 reserved, 1 returned"
    );
    assert_eq!(
        doc["lines"].as_array().map(Vec::len),
        Some(5),
        "purchase 1 line, reserve 2, settle 2"
    );

    let events = replay(&db, &["events", &account, "--format", "csv"]);
    assert_eq!(stdout(&events).lines().count(), 1 + 4, "header and four events");

    let verify = replay(&db, &["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    sqlx::query("UPDATE balances_v1 SET available_micros = available_micros + 1")
        .execute(&db.pool)
        .await
        .expect("tamper");
    let verify = replay(&db, &["verify", "balances", "--format", "json"]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "a row altered by hand fails verify"
    );
    assert!(
        stdout(&verify).contains(&account),
        "the differing row is shown: {}",
        stdout(&verify)
    );

    let rebuild = replay(&db, &["rebuild", "balances"]);
    assert!(
        rebuild.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuild.stderr)
    );
    assert!(
        replay(&db, &["verify", "balances"]).status.success(),
        "the rebuilt version is correct"
    );
    let status = replay(&db, &["status", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status prints JSON");
    let live_balances = rows
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["projection"] == "balances" && r["state"] == "live");
    assert_eq!(
        live_balances.map(|r| r["version"].clone()),
        Some(serde_json::json!("2"))
    );

    let jobs = replay(&db, &["jobs"]);
    assert!(jobs.status.success(), "{}", String::from_utf8_lossy(&jobs.stderr));
    let bad = replay(&db, &["audit", "not-an-account"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not an account id"));
}
