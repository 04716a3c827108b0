//! `ringledger-replay rates correct | what-if | corrections`, `audit` and `verify` after a
//! correction: the real binary against a database with a call placed through the call service.

use std::process::{Command, Output};
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use ringledger_api::calls::{CallService, CallsConfig, Report, StartCall};
use ringledger_api::ledger::{AccountService, LedgerConfig};
use ringledger_api::rates::{QuoteOutcome, QuoteRequest};
use ringledger_api::store::PostgresStore;
use ringledger_domain::call::{EndCause, NodeId, Progress};
use ringledger_domain::{CallId, E164};
use ringledger_tests::TestDb;
use uuid::Uuid;

const DECK: &[u8] = include_bytes!("../../tests/fixtures/rates/twilio-voice.csv");
const ACTOR: &str = "0b0e0c7a-0000-4000-8000-00000000a11c";

fn replay(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringledger-replay"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("RINGLEDGER_ACTOR")
        .output()
        .expect("ringledger-replay runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_from_the_cli_shows_in_the_audit_and_verify_passes() {
    let db = TestDb::create().await.expect("db");
    let rates = ringledger_tests::rates::service(db.pool.clone());
    let status =
        ringledger_tests::rates::import(&rates, DECK, &ringledger_tests::rates::request("deck.csv", None))
            .await
            .expect("import");
    ringledger_tests::rates::activate(&rates, &status, false)
        .await
        .expect("activate");
    let account = ringledger_tests::metering::funded_account(&db, 5_000_000)
        .await
        .expect("account");
    let store = Arc::new(PostgresStore::new(db.pool.clone()));
    let accounts = AccountService::new(store.clone(), LedgerConfig::default());
    let calls = CallService::new(
        db.pool.clone(),
        store,
        LedgerConfig::default(),
        accounts,
        rates.clone(),
        CallsConfig::default(),
    );
    let at = Utc
        .with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .expect("time");
    let request = QuoteRequest {
        account_id: account,
        number: "+447712345678".into(),
        region: None,
    };
    let QuoteOutcome::Quoted { quote, .. } = rates.quote(&request, at).await.expect("quote") else {
        panic!("no quote")
    };
    let call = CallId(Uuid::new_v4());
    let start = StartCall {
        call_id: call,
        account_id: account,
        node_id: NodeId::parse("media-1").expect("node"),
        quote_id: quote.id,
        number: E164::parse("+447712345678", None).expect("number"),
    };
    calls.start(&start, at).await.expect("start");
    calls
        .report("media-1", call, 1, Report::Progress(Progress::Answered), at)
        .await
        .expect("answer");
    let stop = Report::Stop {
        talk_ms: 40_000,
        cause: EndCause::CallerHangup,
        quality: None,
    };
    calls
        .report("media-1", call, 2, stop, at + Duration::seconds(40))
        .await
        .expect("stop");

    catch_up_all(&db).await;
    let help = replay(&db, &["rates", "correct", "--help"]);
    for flag in [
        "--prefix",
        "--cost",
        "--selling",
        "--from",
        "--to",
        "--reason",
        "--actor",
    ] {
        assert!(text(&help).contains(flag), "{flag} in {}", text(&help));
    }
    let (from, to) = ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
    let what_if = replay(
        &db,
        &[
            "rates",
            "what-if",
            "../tests/fixtures/rates/twilio-voice.csv",
            "--from",
            from,
            "--to",
            to,
        ],
    );
    assert!(what_if.status.success(), "{}", text(&what_if));
    let csv = String::from_utf8_lossy(&what_if.stdout).into_owned();
    assert!(csv.starts_with("scope,key,currency,calls,changed_calls"), "{csv}");
    assert!(csv.contains(&format!("account,{account},USD,1,0")), "{csv}");

    let corrected = replay(
        &db,
        &[
            "rates",
            "correct",
            "--prefix",
            "4477",
            "--cost",
            "0.0100",
            "--selling",
            "0.0200",
            "--from",
            from,
            "--to",
            to,
            "--reason",
            "Vodafone was mistyped",
            "--actor",
            ACTOR,
        ],
    );
    assert!(corrected.status.success(), "{}", text(&corrected));
    let out = text(&corrected);
    assert!(out.contains("rc-1"), "{out}");
    let rerated = out
        .lines()
        .find(|l| l.starts_with("calls re-rated"))
        .expect("summary line");
    assert_eq!(rerated.split_whitespace().last(), Some("1"), "{out}");
    // What a running `serve` does: the read models follow the log.
    for p in ringledger_projections::all() {
        let live = ringledger_projections::versions::ensure_live(&db.pool, p.as_ref())
            .await
            .expect("live");
        ringledger_projections::Runner::new(
            db.pool.clone(),
            p,
            live,
            ringledger_projections::RunnerConfig::default(),
        )
        .catch_up(None, |_| {})
        .await
        .expect("caught up");
    }

    let audit = replay(&db, &["audit", &account.to_string()]);
    assert!(audit.status.success(), "{}", text(&audit));
    let trail = text(&audit);
    assert!(trail.contains("calls re-rated by rate corrections"), "{trail}");
    assert!(
        trail.contains(&call.to_string()) && trail.contains("rc-1") && trail.contains(ACTOR),
        "{trail}"
    );
    assert!(trail.contains("Vodafone was mistyped"), "{trail}");

    let listed = replay(&db, &["rates", "corrections"]);
    assert!(text(&listed).contains("done (1/1)"), "{}", text(&listed));
    let verify = replay(&db, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
}

/// What a running `serve` does: the read models follow the log.
async fn catch_up_all(db: &TestDb) {
    for p in ringledger_projections::all() {
        let live = ringledger_projections::versions::ensure_live(&db.pool, p.as_ref())
            .await
            .expect("live");
        ringledger_projections::Runner::new(
            db.pool.clone(),
            p,
            live,
            ringledger_projections::RunnerConfig::default(),
        )
        .catch_up(None, |_| {})
        .await
        .expect("caught up");
    }
}
