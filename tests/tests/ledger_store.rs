//! The Account command service against real Postgres: idempotency, concurrency across two
//! application instances, conflict retries, bounded loading and monotonic `occurred_at`.
//! Each test creates its own database and drops it afterwards.

use chrono::{Duration as ChronoDuration, Utc};
use futures::future::join_all;
use ringledger_api::ledger::{AccountService, CommandError, Envelope};
use ringledger_api::store::{Append, EventStore, NewEvent, PostgresStore};
use ringledger_domain::account::{AccountCommand, AccountError, AccountEvent};
use ringledger_domain::{AccountId, CallId, Currency, PaymentId, ReservationId};
use ringledger_tests::accounts::{fold_stream, open, service, usd};
use ringledger_tests::TestDb;
use serde_json::json;

async fn open_with(svc: &AccountService<PostgresStore>, account: AccountId, credit: i64) {
    open(svc, account).await.expect("open");
    let buy = AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: PaymentId::parse("pi_seed").unwrap(),
        paid: usd(credit),
        bonus: usd(0),
    };
    svc.execute(account, Envelope::with_key(buy, "pi_seed"))
        .await
        .expect("purchase");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_purchase_submitted_50_times_across_two_instances_credits_once() {
    let db = TestDb::create_with(16).await.expect("test database");
    let a = service(db.pool.clone());
    let b = service(db.second_pool(16).await.expect("second pool"));
    let account = AccountId::new_v7();
    open(&a, account).await.expect("open");

    let purchase = AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: PaymentId::parse("pi_once").unwrap(),
        paid: usd(25),
        bonus: usd(1),
    };
    let attempts = (0..50).map(|i| {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        let cmd = purchase.clone();
        tokio::spawn(async move { svc.execute(account, Envelope::with_key(cmd, "pi_once")).await })
    });
    let outcomes: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("every attempt is answered"))
        .collect();

    let first = outcomes.iter().filter(|o| !o.replayed).count();
    assert_eq!(first, 1, "exactly one attempt appends; the others get its answer");
    let sequences: Vec<u64> = outcomes.iter().map(|o| o.events[0].sequence).collect();
    assert!(
        sequences.iter().all(|s| *s == sequences[0]),
        "all answers name the same event: {sequences:?}"
    );
    let (state, events) = fold_stream(&db.pool, account).await.expect("stream folds");
    let purchases = events
        .iter()
        .filter(|e| matches!(e, AccountEvent::CreditPurchased { .. }))
        .count();
    assert_eq!(purchases, 1);
    assert_eq!(state.balances().available, usd(26).micros());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_reservations_never_exceed_the_balance() {
    let db = TestDb::create_with(16).await.expect("test database");
    let a = service(db.pool.clone());
    let b = service(db.second_pool(16).await.expect("second pool"));
    let account = AccountId::new_v7();
    open_with(&a, account, 10).await;

    let tasks = (0..32).map(|i| {
        let svc = if i % 2 == 0 { a.clone() } else { b.clone() };
        tokio::spawn(async move {
            let cmd = AccountCommand::ReserveCredit {
                reservation_id: ReservationId::new_v7(),
                call_id: CallId::new_v7(),
                amount: usd(1),
            };
            svc.execute(account, Envelope::new(cmd)).await
        })
    });
    let results: Vec<_> = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let granted = results.iter().filter(|r| r.is_ok()).count();
    for r in &results {
        if let Err(e) = r {
            assert!(
                matches!(e, CommandError::Rejected(AccountError::InsufficientFunds { .. })),
                "only refusals for funds: {e}"
            );
        }
    }
    assert_eq!(granted, 10, "a $10 balance covers exactly ten $1 reservations");
    let (state, events) = fold_stream(&db.pool, account).await.expect("stream folds");
    let reserved_events = events
        .iter()
        .filter(|e| matches!(e, AccountEvent::CreditReserved { .. }))
        .count();
    assert_eq!(
        reserved_events, granted,
        "no granted reservation was lost, none was invented"
    );
    assert_eq!(state.balances().reserved, usd(10).micros());
    assert_eq!(state.balances().available, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_instance_retries_on_conflict_and_decides_on_fresh_state() {
    let db = TestDb::create().await.expect("test database");
    let a = service(db.pool.clone());
    let b = service(db.second_pool(4).await.unwrap());
    let account = AccountId::new_v7();
    open_with(&a, account, 5).await; // `a` now caches the account at version 2

    // `b` spends it all; `a` does not know.
    let spend = AccountCommand::ReserveCredit {
        reservation_id: ReservationId::new_v7(),
        call_id: CallId::new_v7(),
        amount: usd(5),
    };
    b.execute(account, Envelope::new(spend))
        .await
        .expect("b reserves");

    let again = AccountCommand::ReserveCredit {
        reservation_id: ReservationId::new_v7(),
        call_id: CallId::new_v7(),
        amount: usd(5),
    };
    let stale = a.execute(account, Envelope::new(again)).await;
    assert!(
        matches!(
            stale,
            Err(CommandError::Rejected(AccountError::InsufficientFunds { .. }))
        ),
        "{stale:?}"
    );

    // Deciding on a stale cache would have granted it; the append conflict made `a` catch up.
    let grant = AccountCommand::GrantCredit {
        grant_id: ringledger_domain::GrantId::new_v7(),
        amount: usd(1),
        promotion: "welcome".into(),
    };
    let out = a.execute(account, Envelope::new(grant)).await.expect("grant");
    assert_eq!(out.events[0].sequence, 4);
    assert!(ringledger_api::ledger::LedgerStats::get(&a.ledger().stats().conflicts) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_key_returns_the_first_outcome_and_appends_nothing() {
    let db = TestDb::create().await.expect("test database");
    let svc = service(db.pool.clone());
    let account = AccountId::new_v7();
    open_with(&svc, account, 5).await;
    let call = CallId::new_v7();
    let reservation = ReservationId::new_v7();
    let reserve = AccountCommand::ReserveCredit {
        reservation_id: reservation,
        call_id: call,
        amount: usd(2),
    };
    let first = svc
        .execute(account, Envelope::with_key(reserve.clone(), "grant-1"))
        .await
        .unwrap();
    let settle = AccountCommand::SettleCall {
        call_id: call,
        cost: usd(1),
    };
    svc.execute(account, Envelope::with_key(settle.clone(), "settle-1"))
        .await
        .unwrap();

    let again = svc
        .execute(account, Envelope::with_key(reserve, "grant-1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.events, first.events);
    let settle_again = svc
        .execute(account, Envelope::with_key(settle, "settle-1"))
        .await
        .unwrap();
    assert!(settle_again.replayed);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        count, 4,
        "open, purchase, reserve, settle: the repeats appended nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn occurred_at_never_precedes_the_streams_last_event() {
    let db = TestDb::create().await.expect("test database");
    let store = PostgresStore::new(db.pool.clone());
    let account = AccountId::new_v7();
    let future = Utc::now() + ChronoDuration::hours(2);
    let opened = AccountEvent::AccountOpened {
        account_id: account,
        currency: Currency::USD,
    };
    let id = account.to_string();
    let new_event = NewEvent {
        sequence: 1,
        event_type: "AccountOpened".into(),
        event_version: "1".into(),
        payload: serde_json::to_value(&opened).unwrap(),
        metadata: json!({ "occurred_at": future.to_rfc3339() }),
    };
    let batch = Append {
        aggregate_type: "Account",
        aggregate_id: &id,
        occurred_at: future,
        events: &[new_event],
        keys: &[],
    };
    store
        .append(batch)
        .await
        .expect("seed an event stamped by a clock running ahead");

    let svc = service(db.pool.clone());
    let buy = AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: PaymentId::parse("pi_1").unwrap(),
        paid: usd(1),
        bonus: usd(0),
    };
    let out = svc.execute(account, Envelope::new(buy)).await.unwrap();
    assert!(
        out.events[0].occurred_at >= future,
        "{} < {}",
        out.events[0].occurred_at,
        future
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cannot_be_updated_or_deleted() {
    let db = TestDb::create().await.expect("test database");
    let svc = service(db.pool.clone());
    open_with(&svc, AccountId::new_v7(), 1).await;
    let update = sqlx::query("UPDATE events SET payload = '{}'::json")
        .execute(&db.pool)
        .await;
    assert!(update.unwrap_err().to_string().contains("immutable"));
    let delete = sqlx::query("DELETE FROM events").execute(&db.pool).await;
    assert!(delete.is_err());
}
