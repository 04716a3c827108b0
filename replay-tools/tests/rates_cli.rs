//! `ringledger-replay rates` end to end: the real binary imports a Twilio file through the
//! durable job (refusing to activate a dirty deck without --skip-bad-rows), lists decks and
//! rows with margins, quotes a number and exports the deck back to the rows it came from.

use std::process::{Command, Output};

use ringledger_domain::rates::formats::{DeckReader, ReadOptions};
use ringledger_domain::Currency;
use ringledger_tests::TestDb;

fn replay(db: &TestDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringledger-replay"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("ringledger-replay runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!("{}/../tests/fixtures/rates/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_activate_list_quote_and_export_a_deck() {
    let db = TestDb::create().await.expect("db");
    let dirty = fixture("twilio-voice-dirty.csv");
    let out = replay(&db, &["rates", "import", &dirty, "--activate"]);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "a dirty deck is not activated: {stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("15") && stdout.contains("use a dot as decimal separator"),
        "{stdout}"
    );
    assert!(stderr.contains("skip-bad-rows"), "{stderr}");

    let clean = fixture("twilio-voice.csv");
    let out = replay(&db, &["rates", "import", &clean, "--activate"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("13 rows imported, 0 refused"), "{stderr}");
    assert!(stderr.contains("is now active"), "{stderr}");
    let again = replay(&db, &["rates", "import", &clean]);
    assert!(text(&again).1.contains("imported before"), "{:?}", text(&again));

    let list = replay(&db, &["rates", "list", "--format", "csv"]);
    let (stdout, _) = text(&list);
    assert_eq!(stdout.lines().count(), 3, "header and two decks: {stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("twilio-voice.csv") && l.ends_with(",yes")),
        "{stdout}"
    );

    let quote = replay(&db, &["rates", "quote", "+44 20 7946 0958", "--format", "json"]);
    let (stdout, stderr) = text(&quote);
    assert!(quote.status.success(), "{stdout}\n{stderr}");
    let fields: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    let get = |k: &str| {
        fields
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["field"] == k)
            .map(|r| r["value"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    assert_eq!(get("matched prefix"), "442 United Kingdom - Landline");
    assert_eq!(get("margin/min"), "0.004200 USD");
    assert!(!stdout.contains("7946 0958"), "the number is masked: {stdout}");
    let emergency = replay(&db, &["rates", "quote", "911", "--region", "US"]);
    assert_eq!(emergency.status.code(), Some(1));
    assert!(text(&emergency).0.contains("cannot place emergency calls"));

    let export = replay(&db, &["rates", "export", "--as", "twilio"]);
    let (stdout, stderr) = text(&export);
    assert!(export.status.success(), "{stderr}");
    let read = |bytes: &[u8]| -> Vec<_> {
        DeckReader::new(bytes, ReadOptions::new(Currency::USD))
            .expect("header")
            .map(|r| r.expect("row"))
            .collect()
    };
    let original = std::fs::read(&clean).expect("fixture");
    assert_eq!(
        read(stdout.as_bytes()),
        read(&original),
        "export gives back the file's rows"
    );
}
