//! Bounded loading: on an account with 100,000 events, a command run in a fresh process (cold
//! cache) reads the aggregate's snapshot and the few events after it, never the whole stream.
//! Asserted by counting the rows the command reads, not by timing.
//!
//! The fresh process is this test binary run again, for the one `cold_process_probe` test,
//! with the database and account in its environment.

use std::process::Command;

use chrono::Utc;
use ringledger_api::ledger::{CommandError, Envelope, LedgerConfig};
use ringledger_api::store::{Append, EventStore, NewEvent, PostgresStore};
use ringledger_domain::account::{Account, AccountCommand, AccountError, ReleaseReason};
use ringledger_domain::{AccountId, CallId, Currency, GrantId, Money, PaymentId, ReservationId};
use ringledger_tests::accounts::{fold_stream, service, usd};
use ringledger_tests::TestDb;
use serde_json::json;

const EVENTS: u64 = 100_000;
const PROBE_DB: &str = "RINGLEDGER_PROBE_DATABASE_URL";
const PROBE_ACCOUNT: &str = "RINGLEDGER_PROBE_ACCOUNT";

fn grant() -> AccountCommand {
    AccountCommand::GrantCredit {
        grant_id: GrantId::new_v7(),
        amount: usd(1),
        promotion: "loyal".into(),
    }
}

/// Appends `EVENTS` valid events (decided by the real aggregate) through the real store.
async fn seed(store: &PostgresStore, account: AccountId) {
    let id = account.to_string();
    let stamp = Utc::now();
    let mut state = Account::default();
    let mut pending: Vec<NewEvent> = Vec::new();
    let mut sequence = 0u64;
    let mut run = |cmd: AccountCommand, pending: &mut Vec<NewEvent>| {
        for event in state.decide(&cmd).expect("valid seed command") {
            state.fold(&event);
            sequence += 1;
            pending.push(NewEvent {
                sequence,
                event_type: event.name().into(),
                event_version: "1".into(),
                payload: serde_json::to_value(&event).expect("event serialises"),
                metadata: json!({ "occurred_at": stamp.to_rfc3339() }),
            });
        }
        sequence
    };
    run(
        AccountCommand::OpenAccount {
            account_id: account,
            currency: Currency::USD,
        },
        &mut pending,
    );
    let pi = PaymentId::parse("pi_big").expect("valid id");
    run(
        AccountCommand::PurchaseCredit {
            checkout_session_id: None,
            payment_id: pi,
            paid: usd(100),
            bonus: usd(0),
        },
        &mut pending,
    );
    loop {
        let reservation = ReservationId::new_v7();
        let reserve = AccountCommand::ReserveCredit {
            reservation_id: reservation,
            call_id: CallId::new_v7(),
            amount: usd(1),
        };
        run(reserve, &mut pending);
        let done = run(
            AccountCommand::ReleaseReservation {
                reservation_id: reservation,
                reason: ReleaseReason::Unused,
            },
            &mut pending,
        );
        if pending.len() >= 5_000 || done >= EVENTS {
            let batch = Append {
                aggregate_type: "Account",
                aggregate_id: &id,
                occurred_at: stamp,
                events: &pending,
                keys: &[],
            };
            store.append(batch).await.expect("seed chunk");
            pending.clear();
        }
        if done >= EVENTS {
            assert_eq!(done, EVENTS);
            return;
        }
    }
}

/// Runs one grant in a fresh process and returns the rows that process read to load the account.
fn grant_in_a_fresh_process(db: &TestDb, account: AccountId) -> u64 {
    let out = Command::new(std::env::current_exe().expect("test binary path"))
        .args([
            "cold_process_probe",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE_DB, &db.url)
        .env(PROBE_ACCOUNT, account.to_string())
        .output()
        .expect("the probe process runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "probe failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split("rows_loaded=").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the probe reported no row count:\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_stays_bounded_on_an_account_with_100000_events() {
    let db = TestDb::create().await.expect("test database");
    let account = AccountId::new_v7();
    seed(&PostgresStore::new(db.pool.clone()), account).await;

    // No snapshot yet: the first load reads the stream once, and leaves a snapshot behind.
    let warm = service(db.pool.clone());
    let out = warm
        .execute(account, Envelope::new(grant()))
        .await
        .expect("grant");
    assert_eq!(
        out.rows_loaded, EVENTS,
        "without a snapshot the first load reads the stream once"
    );

    // A fresh process reads the snapshot row and nothing else.
    assert_eq!(grant_in_a_fresh_process(&db, account), 1, "snapshot only");

    // 150 more events: a fresh process reads the snapshot and at most `snapshot_every` after it.
    for _ in 0..150 {
        warm.execute(account, Envelope::new(grant()))
            .await
            .expect("grant");
    }
    let rows = grant_in_a_fresh_process(&db, account);
    let bound = 1 + LedgerConfig::default().snapshot_every;
    assert!(rows <= bound, "read {rows} rows; the bound is {bound}");

    // The state the cold load decided on is exactly the full fold of the stream.
    let (folded, events) = fold_stream(&db.pool, account).await.expect("stream folds");
    assert_eq!(events.len() as u64, EVENTS + 153);
    assert_eq!(folded.balances().available, usd(100 + 153).micros());
    let available = folded.balances().available;
    let too_much = Money::from_micros(available + 1, Currency::USD);
    let check = AccountCommand::ReserveCredit {
        reservation_id: ReservationId::new_v7(),
        call_id: CallId::new_v7(),
        amount: too_much,
    };
    let refused = service(db.second_pool(2).await.expect("pool"))
        .execute(account, Envelope::new(check))
        .await;
    assert!(
        matches!(&refused, Err(CommandError::Rejected(AccountError::InsufficientFunds { available: a, .. })) if a.micros() == available),
        "{refused:?}"
    );
}

/// Run only by the test above, in a process of its own.
#[tokio::test]
#[ignore = "run by loading_stays_bounded_on_an_account_with_100000_events in a fresh process"]
async fn cold_process_probe() {
    let (Ok(url), Ok(account)) = (std::env::var(PROBE_DB), std::env::var(PROBE_ACCOUNT)) else {
        panic!("{PROBE_DB} and {PROBE_ACCOUNT} must be set: this probe is started by another test");
    };
    let account = AccountId::parse(&account).expect("account id");
    let pool = sqlx::PgPool::connect(&url).await.expect("probe connects");
    let out = service(pool)
        .execute(account, Envelope::new(grant()))
        .await
        .expect("grant in the probe");
    println!("rows_loaded={}", out.rows_loaded);
}
