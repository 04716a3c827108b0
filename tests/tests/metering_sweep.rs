//! The sweeper: a call silent for twice the grant validity is ended as orphaned and charged for
//! the seconds last reported, the rest of its reservations returned; a reservation no call
//! holds is released; a call still reporting is left alone.

use std::time::Duration;

use chrono::Utc;
use ringledger_api::calls::CallsConfig;
use ringledger_api::ledger::Envelope;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::{CallId, ReservationId};
use ringledger_tests::accounts::fold_stream;
use ringledger_tests::metering::{funded_account, start_app, usd};
use ringledger_tests::{eventually, TestDb};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_call_is_orphaned_and_charged_for_what_was_reported_and_orphans_are_released() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 1_000_000).await.expect("account");
    let tariff = app.quote(account).await.expect("quote").price.selling;
    let (call, status, grant) = app.start_call(account).await.expect("start");
    assert_eq!(status, 200, "{grant}");
    let c = call.to_string();
    app.post("progress", &json!({"call_id": c, "seq": 1, "state": "answered"}))
        .await
        .expect("answered");
    let (s, _) = app
        .post("interim", &json!({"call_id": c, "seq": 2, "talk_ms": 20_000}))
        .await
        .expect("interim");
    assert_eq!(s, 200);

    // A reservation no call ever recorded (a crash between ReserveCredit and RecordGrant).
    let accounts = ringledger_tests::accounts::service(db.pool.clone());
    let orphan = AccountCommand::ReserveCredit {
        reservation_id: ReservationId::new_v7(),
        call_id: CallId::new_v7(),
        amount: usd(10_000),
    };
    accounts
        .execute(account, Envelope::new(orphan))
        .await
        .expect("orphan reservation");

    let seen = eventually(Duration::from_secs(30), || async {
        let (live, held): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM active_calls WHERE call_id = $1 AND state = 'answered'),
                    (SELECT count(*) FROM open_reservations WHERE account_id = $2)",
        )
        .bind(call.0)
        .bind(account.0)
        .fetch_one(&db.pool)
        .await
        .ok()?;
        (live == 1 && held == 2).then_some(())
    })
    .await;
    assert!(
        seen.is_ok(),
        "the live call and both reservations never showed in the read models"
    );

    // Now: nothing is stale yet, so nothing happens.
    let quiet = app.calls.sweep_once(Utc::now()).await.expect("sweep");
    assert_eq!((quiet.calls_swept, quiet.reservations_released), (0, 0));

    // Two minutes on, the call has been silent for more than 2 x 30 s.
    let later = Utc::now() + chrono::Duration::seconds(120);
    let swept = app.calls.sweep_once(later).await.expect("sweep");
    assert_eq!((swept.calls_swept, swept.reservations_released), (1, 1));

    let (s, over) = app
        .post("interim", &json!({"call_id": c, "seq": 3, "talk_ms": 30_000}))
        .await
        .expect("late");
    assert_eq!((s, over["code"].as_str()), (410, Some("call_over")), "{over}");
    let cost = tariff.cost(20).expect("cost").micros();
    let (state, _) = fold_stream(&db.pool, account).await.expect("fold");
    assert_eq!(state.balances().reserved, 0);
    assert_eq!(state.balances().available, 1_000_000 - cost);
    let logged = eventually(Duration::from_secs(30), || async {
        let row: Option<(Option<String>, i64)> = sqlx::query_as(
            "SELECT cause, charged_micros FROM call_log WHERE call_id = $1 AND state = 'ended'",
        )
        .bind(call.0)
        .fetch_optional(&db.pool)
        .await
        .ok()?;
        row
    })
    .await
    .expect("swept call logged");
    assert_eq!(logged, (Some("orphaned".to_owned()), cost));
}
