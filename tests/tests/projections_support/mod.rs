//! What the projection tests share: catching a projection version up to a known number of
//! events (polling with a deadline, since any transaction anywhere in the cluster may hold the
//! xmin fence for a moment), and the oracle every read model is checked against — a fold of
//! each Account stream as stored, computed here independently of the projection code.

#![allow(dead_code)] // each test file uses its own subset

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringledger_domain::account::{Account, AccountCommand, AccountEvent};
use ringledger_domain::AccountId;
use ringledger_projections::{runner, versions, Position, Projection, Runner, RunnerConfig};
use ringledger_tests::accounts::fold_stream;
use sqlx::{PgConnection, PgPool, Row};

/// Creates version 1 (tables, checkpoint, views) of every projection, and returns those that
/// read Account events: the oracle here folds Account streams, and these tests write only
/// those (the rate table and the call log are tested with their own streams).
pub async fn ensure_all_live(pool: &PgPool) -> Vec<Arc<dyn Projection>> {
    let mut all = ringledger_projections::all();
    for p in &all {
        versions::ensure_live(pool, p.as_ref())
            .await
            .expect("ensure_live");
    }
    all.retain(|p| p.aggregate_types().contains(&"Account"));
    all
}

/// A projection by name, as a fresh instance (a process of its own would have one).
pub fn fresh(name: &str) -> Arc<dyn Projection> {
    ringledger_projections::by_name(name).expect("known projection")
}

/// A version's checkpoint and how many events it has applied.
pub async fn checkpoint_row(pool: &PgPool, projection: &str, version: i32) -> (Position, i64) {
    let row = sqlx::query(
        "SELECT tx_id::text::bigint AS tx, global_position, events_applied FROM projection_checkpoints
          WHERE projection = $1 AND version = $2",
    )
    .bind(projection)
    .bind(version)
    .fetch_one(pool)
    .await
    .expect("checkpoint row");
    let position = Position {
        tx_id: row.get("tx"),
        global_position: row.get("global_position"),
    };
    (position, row.get("events_applied"))
}

/// Events of the Account aggregate in the log.
pub async fn account_event_count(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Account'")
        .fetch_one(pool)
        .await
        .expect("count events")
}

/// The last Account event in commit order.
pub async fn account_head(pool: &PgPool) -> Position {
    let row = sqlx::query(
        "SELECT tx_id::text::bigint AS tx, global_position FROM events WHERE aggregate_type = 'Account'
          ORDER BY tx_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .expect("head");
    Position {
        tx_id: row.get("tx"),
        global_position: row.get("global_position"),
    }
}

/// Runs `catch_up` on `runner` until its version has applied `expected` events, or panics
/// after `deadline`. `catch_up` stops at the xmin fence, which a transaction in any database
/// of the cluster may hold for a moment; so this polls rather than trusting one call.
pub async fn catch_up_to(pool: &PgPool, runner: &Runner, expected: i64, deadline: Duration) {
    let name = runner.projection().name();
    let start = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        runner.catch_up(None, |_| {}).await.expect("catch_up");
        let (_, applied) = checkpoint_row(pool, name, runner.version()).await;
        if applied >= expected {
            assert_eq!(
                applied,
                expected,
                "{name} v{} applied more events than the log holds",
                runner.version()
            );
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "{name} v{} applied {applied} of {expected} events within {deadline:?}",
            runner.version()
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A runner of version `version` with the default settings.
pub fn runner(pool: &PgPool, p: &Arc<dyn Projection>, version: i32) -> Runner {
    Runner::new(pool.clone(), p.clone(), version, RunnerConfig::default())
}

/// Polls `check` every few milliseconds until it is true, or panics after `deadline`.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < deadline, "{what}: not within {deadline:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the balances table must hold for one account: computed from the stream alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedBalance {
    pub currency: String,
    pub available: i64,
    pub reserved: i64,
    pub receivable: i64,
    pub disputed: i64,
    pub lifetime_purchased: i64,
    pub lifetime_spent: i64,
    pub last_sequence: i64,
}

/// Every Account stream in the log.
pub async fn account_ids(pool: &PgPool) -> Vec<AccountId> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'Account' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("stream ids");
    ids.iter()
        .map(|s| AccountId::parse(s).expect("account stream id"))
        .collect()
}

/// The fold of one stream as stored (checking its sequences have no gaps).
pub async fn expected_balance(pool: &PgPool, account: AccountId) -> ExpectedBalance {
    let (state, events) = fold_stream(pool, account).await.expect("stream folds");
    let b = state.balances();
    let mut purchased = 0i64;
    let mut spent = 0i64;
    for e in &events {
        match e {
            AccountEvent::CreditPurchased { paid, .. } => purchased += paid.micros(),
            AccountEvent::ReservationSettled { charged, .. } => spent += charged.micros(),
            _ => {}
        }
    }
    ExpectedBalance {
        currency: state.currency().map(|c| c.to_string()).unwrap_or_default(),
        available: b.available,
        reserved: b.reserved,
        receivable: b.receivable,
        disputed: b.disputed,
        lifetime_purchased: purchased,
        lifetime_spent: spent,
        last_sequence: events.len() as i64,
    }
}

/// The `balances` rows read through `table` (a view or a version's table), by account.
pub async fn balance_rows(pool: &PgPool, table: &str) -> BTreeMap<String, ExpectedBalance> {
    let sql = format!(
        "SELECT account_id::text AS id, currency, available_micros, reserved_micros, receivable_micros,
                disputed_micros, lifetime_purchased_micros, lifetime_spent_micros, last_sequence
           FROM {table}"
    );
    let rows = sqlx::query(&sql).fetch_all(pool).await.expect("balances rows");
    rows.iter()
        .map(|r| {
            (
                r.get::<String, _>("id"),
                ExpectedBalance {
                    currency: r.get("currency"),
                    available: r.get("available_micros"),
                    reserved: r.get("reserved_micros"),
                    receivable: r.get("receivable_micros"),
                    disputed: r.get("disputed_micros"),
                    lifetime_purchased: r.get("lifetime_purchased_micros"),
                    lifetime_spent: r.get("lifetime_spent_micros"),
                    last_sequence: r.get("last_sequence"),
                },
            )
        })
        .collect()
}

/// The balances read model (through `table`) holds exactly one row per Account stream, each
/// equal to the fold of that stream.
pub async fn assert_balances_match_folds(pool: &PgPool, table: &str) {
    let rows = balance_rows(pool, table).await;
    let ids = account_ids(pool).await;
    let names: BTreeSet<String> = ids.iter().map(|a| a.to_string()).collect();
    let have: BTreeSet<String> = rows.keys().cloned().collect();
    assert_eq!(have, names, "{table}: one row per Account stream");
    for account in ids {
        let expected = expected_balance(pool, account).await;
        assert_eq!(
            rows[&account.to_string()],
            expected,
            "{table}: account {account} differs from the fold of its stream"
        );
    }
}

/// One statement line as the log dictates it: (global position, ledger account, amount).
pub type LineKey = (i64, String, i64);

/// The statement lines the log calls for: one per customer posting of every Account event.
pub async fn expected_lines(pool: &PgPool) -> BTreeSet<LineKey> {
    let rows: Vec<(i64, serde_json::Value)> =
        sqlx::query_as("SELECT global_position, payload::jsonb FROM events WHERE aggregate_type = 'Account'")
            .fetch_all(pool)
            .await
            .expect("events");
    let mut lines = BTreeSet::new();
    for (position, payload) in rows {
        let event: AccountEvent = serde_json::from_value(payload).expect("event decodes");
        if let Some(postings) = event.postings() {
            for line in postings.lines().iter().filter(|l| l.account.is_customer()) {
                let fresh = lines.insert((position, line.account.as_str().to_owned(), line.amount.micros()));
                assert!(fresh, "two postings on one ledger account in event {position}");
            }
        }
    }
    lines
}

/// The statement lines read through `table` hold exactly the lines the log calls for (none
/// twice, none missing), each running balance is the sum of the lines before it on its ledger
/// account, and the last running balance of each ledger account is the fold's balance.
pub async fn assert_statements_match_log(pool: &PgPool, table: &str) {
    let expected = expected_lines(pool).await;
    let actual_rows: Vec<(i64, String, i64)> = sqlx::query_as(&format!(
        "SELECT global_position, ledger_account, amount_micros FROM {table}"
    ))
    .fetch_all(pool)
    .await
    .expect("statement lines");
    assert_eq!(
        actual_rows.len(),
        expected.len(),
        "{table}: one line per customer posting in the log"
    );
    let actual: BTreeSet<LineKey> = actual_rows.into_iter().collect();
    let missing: Vec<_> = expected.difference(&actual).take(5).collect();
    let extra: Vec<_> = actual.difference(&expected).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{table}: lines missing {missing:?}, lines not in the log {extra:?}"
    );

    let broken: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT account_id::text, ledger_account, sequence, running_balance_micros, s FROM (
             SELECT account_id, ledger_account, sequence, running_balance_micros,
                    sum(amount_micros) OVER (PARTITION BY account_id, ledger_account ORDER BY sequence)::bigint AS s
               FROM {table}) x
          WHERE running_balance_micros <> s ORDER BY 1, 2, 3 LIMIT 5"
    ))
    .fetch_all(pool)
    .await
    .expect("running balances");
    assert!(
        broken.is_empty(),
        "{table}: running balances that are not the sum of the lines before them \
         (account, ledger, sequence, running, sum): {broken:?}"
    );

    let last: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "SELECT DISTINCT ON (account_id, ledger_account) account_id::text, ledger_account, running_balance_micros
           FROM {table} ORDER BY account_id, ledger_account, sequence DESC"
    ))
    .fetch_all(pool)
    .await
    .expect("last running balances");
    let mut folds: BTreeMap<String, ExpectedBalance> = BTreeMap::new();
    for (account, ledger, running) in last {
        if !folds.contains_key(&account) {
            let folded = expected_balance(pool, AccountId::parse(&account).unwrap()).await;
            folds.insert(account.clone(), folded);
        }
        let folded = &folds[&account];
        let want = match ledger.as_str() {
            "available" => folded.available,
            "reserved" => folded.reserved,
            "receivable" => folded.receivable,
            "disputed" => folded.disputed,
            other => panic!("{table}: line on ledger account {other}"),
        };
        assert_eq!(
            running, want,
            "{table}: last running balance of {account}/{ledger}"
        );
    }
}

/// Decides `command` on `state` with the real aggregate and folds the events in.
pub fn decide(state: &mut Account, command: &AccountCommand) -> Vec<AccountEvent> {
    let events = state.decide(command).expect("valid command");
    for e in &events {
        state.fold(e);
    }
    events
}

/// Inserts one event row by hand on `conn` (inside whatever transaction it is in), with the
/// columns the store's append writes; returns its global position.
pub async fn insert_event(
    conn: &mut PgConnection,
    account: AccountId,
    sequence: i64,
    event: &AccountEvent,
    occurred_at: chrono::DateTime<chrono::Utc>,
) -> i64 {
    let stamp = occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, occurred_at)
         VALUES ('Account', $1, $2, $3, '1', $4::text::json, $5::text::json, $6)
         RETURNING global_position",
    )
    .bind(account.to_string())
    .bind(sequence)
    .bind(event.name())
    .bind(serde_json::to_string(event).unwrap())
    .bind(serde_json::json!({ "occurred_at": stamp, "command": "test" }).to_string())
    .bind(occurred_at)
    .fetch_one(&mut *conn)
    .await
    .expect("insert event")
}

/// The checkpoint of `projection` version `version`, as a plain position.
pub async fn position(pool: &PgPool, projection: &str, version: i32) -> Position {
    runner::checkpoint(pool, projection, version)
        .await
        .expect("checkpoint")
}
