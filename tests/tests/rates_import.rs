//! Deck imports end to end on a real Postgres: the file's rows become `RateDeckRowsImported`
//! chunks (at most 5,000 rows, each with its source line) and a summary; the same file again
//! is recognised by its hash; a deck with bad rows reports them and is activated only when the
//! admin skips them; an import killed half-way and run again gives the same log; the rate
//! table's rows export back to the same rows.

use ringledger_domain::rates::deck::DeckEvent;
use ringledger_domain::rates::formats::{write_generic, DeckReader, ReadOptions};
use ringledger_domain::rates::DeckFormat;
use ringledger_domain::Currency;
use ringledger_tests::rates::{activate, catch_up, import, request, service};
use ringledger_tests::TestDb;

const CLEAN: &[u8] = include_bytes!("../fixtures/rates/twilio-voice.csv");
const DIRTY: &[u8] = include_bytes!("../fixtures/rates/twilio-voice-dirty.csv");

async fn deck_events(pool: &sqlx::PgPool, deck: &str) -> Vec<DeckEvent> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload::jsonb FROM events WHERE aggregate_type = 'RateDeck' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(deck)
    .fetch_all(pool)
    .await
    .expect("events");
    rows.into_iter()
        .map(|v| serde_json::from_value(v).expect("deck event decodes"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_file_becomes_chunks_and_a_summary_and_is_recognised_the_second_time() {
    let db = TestDb::create().await.expect("db");
    let svc = service(db.pool.clone());
    let status = import(&svc, CLEAN, &request("twilio-voice.csv", None))
        .await
        .expect("import");
    assert_eq!(status.status, "imported", "{status:?}");
    assert_eq!((status.rows_done, status.error_count), (13, 0));

    let events = deck_events(&db.pool, &status.deck_id.to_string()).await;
    let DeckEvent::RateDeckRowsImported { chunk, rows, .. } = &events[0] else {
        panic!("first event is a chunk: {events:?}");
    };
    assert_eq!((*chunk, rows.len()), (0, 13));
    assert_eq!(rows[0].line, 2, "the header is line 1");
    assert_eq!(rows[0].destination_prefixes, vec!["441", "442", "443"]);
    assert_eq!(rows[3].origination_prefixes, vec!["1"]);
    let DeckEvent::RateDeckImported { summary, .. } = &events[1] else {
        panic!("then the summary: {events:?}");
    };
    assert_eq!(summary.format, DeckFormat::Twilio);
    assert_eq!(summary.row_count, 13);
    assert_eq!(summary.sha256.len(), 64);

    let again = import(&svc, CLEAN, &request("renamed.csv", None))
        .await
        .expect("second import");
    assert_eq!(again.status, "duplicate");
    assert_eq!(again.deck_id, status.deck_id);
    assert!(
        again.message.as_deref().unwrap_or("").contains("imported before"),
        "{again:?}"
    );
    assert_eq!(
        deck_events(&db.pool, &status.deck_id.to_string()).await.len(),
        2,
        "nothing appended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_reported_by_line_and_the_deck_waits_for_the_admin_to_skip_them() {
    let db = TestDb::create().await.expect("db");
    let svc = service(db.pool.clone());
    let status = import(&svc, DIRTY, &request("dirty.csv", None))
        .await
        .expect("import");
    assert_eq!((status.rows_done, status.error_count), (14, 2), "{status:?}");
    let problems: serde_json::Value =
        sqlx::query_scalar("SELECT problems FROM rate_decks WHERE deck_id = $1")
            .bind(status.deck_id.0)
            .fetch_one(&db.pool)
            .await
            .expect("deck row");
    let lines: Vec<u64> = problems
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, vec![15, 17]);
    assert_eq!(problems[0]["column"], "Price / min");
    assert!(
        problems[0]["message"]
            .as_str()
            .expect("message")
            .contains("use a dot as decimal separator"),
        "{problems}"
    );

    let refused = svc
        .activate(status.deck_id, ringledger_tests::rates::admin(), false)
        .await
        .expect_err("a dirty deck is not activated by default");
    assert!(refused.to_string().contains("skip-bad-rows"), "{refused}");
    activate(&svc, &status, true)
        .await
        .expect("activated when skipping");
    let active: Option<i64> =
        sqlx::query_scalar("SELECT skipped_rows FROM rate_decks WHERE activated_at IS NOT NULL")
            .fetch_optional(&db.pool)
            .await
            .expect("query");
    assert_eq!(active, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_half_way_and_run_again_appends_each_chunk_once() {
    let db = TestDb::create().await.expect("db");
    // 12,001 rows: three chunks (5,000 + 5,000 + 2,001).
    let mut file = b"prefix,country,description,rate_per_min\n".to_vec();
    for i in 0..12_001u32 {
        file.extend_from_slice(format!("44{i:06},GB,Row {i},0.0{:04}\n", i % 9_000 + 100).as_bytes());
    }
    let svc = service(db.pool.clone());
    let submitted = svc
        .submit_import(file.clone(), &request("big.csv", None))
        .await
        .expect("submit");
    // The first run dies after its first chunk: simulate by appending chunk 0 the way the job
    // does, with the job's idempotency key, then run the whole job.
    let deck = submitted.deck_id;
    let first: Vec<_> = DeckReader::new(&file[..], ReadOptions::new(Currency::USD))
        .expect("header")
        .take(5_000)
        .map(|r| r.expect("row"))
        .collect();
    let killed = ringledger_tests::rates::service(db.pool.clone());
    killed
        .import_chunk(deck, 0, first)
        .await
        .expect("chunk 0 appended by the first run");
    let done = svc.run_import(submitted.id).await.expect("second run");
    assert_eq!(done.rows_done, 12_001);
    let again = svc
        .run_import(submitted.id)
        .await
        .expect("a third run changes nothing");
    assert_eq!(again.status, "imported");
    let events = deck_events(&db.pool, &deck.to_string()).await;
    let chunks: Vec<(u32, usize)> = events
        .iter()
        .filter_map(|e| match e {
            DeckEvent::RateDeckRowsImported { chunk, rows, .. } => Some((*chunk, rows.len())),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, vec![(0, 5_000), (1, 5_000), (2, 2_001)]);
    assert_eq!(events.len(), 4, "three chunks and one summary");
    catch_up(&db.pool).await.expect("projection");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_rows")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(rows, 12_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_table_exports_the_rows_the_file_gave() {
    let db = TestDb::create().await.expect("db");
    let svc = service(db.pool.clone());
    let status = import(&svc, CLEAN, &request("twilio-voice.csv", None))
        .await
        .expect("import");
    let from_file: Vec<_> = DeckReader::new(CLEAN, ReadOptions::new(Currency::USD))
        .expect("header")
        .map(|r| r.expect("row"))
        .collect();
    let stored = svc
        .deck_rows(status.deck_id)
        .await
        .expect("rows from the rate table");
    assert_eq!(stored, from_file);
    let mut exported = Vec::new();
    write_generic(&mut exported, &stored, Currency::USD).expect("export");
    let reread: Vec<_> = DeckReader::new(&exported[..], ReadOptions::new(Currency::USD))
        .expect("header")
        .map(|r| r.expect("row"))
        .collect();
    let strip = |rows: &[ringledger_domain::rates::DeckRow]| {
        rows.iter()
            .map(|r| {
                let mut r = r.clone();
                r.line = 0;
                r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&reread), strip(&from_file));
}
