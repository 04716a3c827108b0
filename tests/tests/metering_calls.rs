//! Metering end to end over HTTP with real JWTs and a real Postgres: a normal call is charged
//! exactly the tariff's cost of its billed seconds and settled; a repeated `seq` gets the first
//! answer and appends nothing, an older one is refused, a gap is accepted; a call that talks
//! past its credit gets a final unit and is charged at most what was reserved.

use std::time::Duration;

use chrono::Utc;
use ringledger_api::calls::{token, CallsConfig};
use ringledger_tests::accounts::fold_stream;
use ringledger_tests::metering::{call_events, funded_account, start_app, usd, MEDIA_SECRET};
use ringledger_tests::{eventually, TestDb};
use serde_json::{json, Value};

fn micros(v: &Value, field: &str) -> i64 {
    v[field].as_i64().unwrap_or_else(|| panic!("{field} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_call_is_charged_exactly_its_cost_and_settled() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 1_000_000).await.expect("account");
    let tariff = app.quote(account).await.expect("quote").price.selling;

    let (call, status, grant) = app.start_call(account).await.expect("start");
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["seq"], 0);
    assert_eq!(grant["granted_seconds"], 60);
    assert_eq!(grant["final_unit"], false);
    assert_eq!(grant["interim_seconds"], 6);
    assert_eq!(grant["rate"], json!(tariff.rate_per_minute));

    let c = call.to_string();
    // Only the node holding the call may report on it; an unknown call is 404.
    let other =
        token::mint_media("media-2", MEDIA_SECRET.as_bytes(), Utc::now().timestamp(), 30).expect("mint");
    let body = json!({"call_id": c, "seq": 1, "state": "ringing"});
    let (s, refused) = app
        .post_with("progress", &body, Some(&other))
        .await
        .expect("other node");
    assert_eq!(
        (s, refused["code"].as_str()),
        (401, Some("unauthorised")),
        "{refused}"
    );
    let unknown = json!({"call_id": uuid::Uuid::new_v4(), "seq": 1, "talk_ms": 1_000});
    let (s, missing) = app.post("interim", &unknown).await.expect("unknown call");
    assert_eq!(
        (s, missing["code"].as_str()),
        (404, Some("unknown_call")),
        "{missing}"
    );
    let (s, ringing) = app
        .post("progress", &json!({"call_id": c, "seq": 1, "state": "ringing"}))
        .await
        .expect("ringing");
    assert_eq!((s, ringing["seq"].clone()), (200, json!(1)), "{ringing}");
    let (s, _) = app
        .post("progress", &json!({"call_id": c, "seq": 2, "state": "answered"}))
        .await
        .expect("answered");
    assert_eq!(s, 200);
    let (s, tick) = app
        .post("interim", &json!({"call_id": c, "seq": 3, "talk_ms": 6_000}))
        .await
        .expect("interim");
    assert_eq!(
        (s, tick["granted_seconds"].clone(), tick["seconds_left"].clone()),
        (200, json!(60), json!(54))
    );

    // Talk 49 s: the money left would not pay the next 12 s, so the api re-grants to 120 s.
    let (s, regrant) = app
        .post("interim", &json!({"call_id": c, "seq": 4, "talk_ms": 48_500}))
        .await
        .expect("interim");
    assert_eq!(s, 200, "{regrant}");
    assert_eq!(regrant["granted_seconds"], 120);
    assert_eq!(regrant["seconds_left"], 71);

    // A repeat gets the first answer and appends nothing; an older seq is refused.
    let before = call_events(&db, call).await.expect("events");
    let (s, repeat) = app
        .post("interim", &json!({"call_id": c, "seq": 4, "talk_ms": 48_900}))
        .await
        .expect("repeat");
    assert_eq!((s, &repeat), (200, &regrant));
    let (s, stale) = app
        .post("interim", &json!({"call_id": c, "seq": 3, "talk_ms": 50_000}))
        .await
        .expect("stale");
    assert_eq!((s, stale["code"].as_str()), (409, Some("stale_seq")), "{stale}");
    assert!(
        stale["message"].as_str().unwrap_or_default().contains("seq 3"),
        "{stale}"
    );
    assert_eq!(call_events(&db, call).await.expect("events"), before);

    // The live call shows in active_calls, holding both grants in open_reservations (the
    // app's projection runners write them).
    let live = eventually(Duration::from_secs(30), || async {
        let (state, held): (Option<String>, i64) = sqlx::query_as(
            "SELECT (SELECT state FROM active_calls WHERE call_id = $1),
                    (SELECT count(*) FROM open_reservations WHERE call_id = $1)",
        )
        .bind(call.0)
        .fetch_one(&db.pool)
        .await
        .ok()?;
        (state.as_deref() == Some("answered") && held == 2).then_some(())
    })
    .await;
    assert!(
        live.is_ok(),
        "the answered call and its two grants never showed in the read models"
    );

    // A gap is accepted: counts are cumulative.
    let (s, gap) = app
        .post("interim", &json!({"call_id": c, "seq": 7, "talk_ms": 70_000}))
        .await
        .expect("gap");
    assert_eq!((s, gap["seq"].clone()), (200, json!(7)), "{gap}");

    let stop = json!({"call_id": c, "seq": 8, "talk_ms": 75_400, "cause": "caller_hangup", "quality": null});
    let (s, ended) = app.post("stop", &stop).await.expect("stop");
    assert_eq!(s, 200, "{ended}");
    let cost = tariff.cost(76).expect("cost").micros();
    assert_eq!(ended["billed_seconds"], 76);
    assert_eq!(micros(&ended, "cost_micros"), cost);
    assert_eq!(micros(&ended, "charged_micros"), cost);
    assert_eq!(ended["currency"], "USD");
    // A retried stop gets the same answer and does not settle twice.
    let (s, again) = app.post("stop", &stop).await.expect("stop again");
    assert_eq!((s, &again), (200, &ended));
    let (s, over) = app
        .post("interim", &json!({"call_id": c, "seq": 9, "talk_ms": 80_000}))
        .await
        .expect("after");
    assert_eq!((s, over["code"].as_str()), (410, Some("call_over")));

    let (state, events) = fold_stream(&db.pool, account).await.expect("fold");
    let balances = state.balances();
    assert_eq!(balances.available, 1_000_000 - cost);
    assert_eq!(balances.reserved, 0);
    let settled = events.iter().filter(|e| e.name() == "ReservationSettled").count();
    assert_eq!(settled, 1);
    assert!(state.open_reservations().is_empty());

    // The read models: the call log has the call's figures and no number; nothing is live or
    // held any more.
    let logged = eventually(Duration::from_secs(30), || async {
        let row: Option<(String, i64, i64, i64, Option<String>, String)> = sqlx::query_as(
            "SELECT state, billed_seconds, cost_micros, charged_micros, cause, row_to_json(call_log)::text
               FROM call_log WHERE call_id = $1",
        )
        .bind(call.0)
        .fetch_optional(&db.pool)
        .await
        .ok()?;
        row.filter(|r| r.0 == "ended")
    })
    .await
    .expect("call logged as ended");
    assert_eq!((logged.1, logged.2, logged.3), (76, cost, cost));
    assert_eq!(logged.4.as_deref(), Some("caller_hangup"));
    assert!(
        logged.5.contains("\"4477\"") && !logged.5.contains("7712345678"),
        "{}",
        logged.5
    );
    let quiet = eventually(Duration::from_secs(30), || async {
        let (live, held): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM active_calls WHERE call_id = $1),
                    (SELECT count(*) FROM open_reservations WHERE call_id = $1)",
        )
        .bind(call.0)
        .fetch_one(&db.pool)
        .await
        .ok()?;
        (live == 0 && held == 0).then_some(())
    })
    .await;
    assert!(
        quiet.is_ok(),
        "the ended call is still live or holding credit in the read models"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_past_its_credit_gets_a_final_unit_and_pays_at_most_what_was_reserved() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    // $0.04 pays less than the first 60 s grant: the grant is what the account holds, final.
    let account = funded_account(&db, 40_000).await.expect("account");
    let tariff = app.quote(account).await.expect("quote").price.selling;
    let affordable = (1..60u64)
        .take_while(|t| tariff.cost(*t).expect("cost") <= usd(40_000))
        .last()
        .expect("some seconds");
    let (call, status, grant) = app.start_call(account).await.expect("start");
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["final_unit"], true, "{grant}");
    assert_eq!(grant["granted_seconds"], affordable);

    let c = call.to_string();
    let (s, tick) = app
        .post("interim", &json!({"call_id": c, "seq": 1, "talk_ms": 30_000}))
        .await
        .expect("interim");
    assert_eq!(s, 200, "{tick}");
    assert_eq!(
        (tick["final_unit"].clone(), tick["seconds_left"].clone()),
        (json!(true), json!(affordable - 30))
    );

    // The node hung up late: 70 s of talk cost more than the 40,000 reserved.
    let stop = json!({"call_id": c, "seq": 2, "talk_ms": 70_000, "cause": "final_unit"});
    let (s, ended) = app.post("stop", &stop).await.expect("stop");
    assert_eq!(s, 200, "{ended}");
    assert_eq!(
        micros(&ended, "cost_micros"),
        tariff.cost(70).expect("cost").micros()
    );
    assert_eq!(micros(&ended, "charged_micros"), 40_000);

    let (state, events) = fold_stream(&db.pool, account).await.expect("fold");
    assert_eq!((state.balances().available, state.balances().reserved), (0, 0));
    let overrun: i64 = events
        .iter()
        .filter_map(|e| match e {
            ringledger_domain::account::AccountEvent::ReservationSettled { overrun, .. } => {
                Some(overrun.micros())
            }
            _ => None,
        })
        .sum();
    assert_eq!(overrun, tariff.cost(70).expect("cost").micros() - 40_000);
}
