//! The admin audit trail: operator actions are recorded with their actor and reason; the
//! freeze the ledger takes by itself when money becomes owed is recorded with no actor.

mod projections_support;

use std::time::Duration;

use projections_support::*;
use ringledger_api::ledger::Envelope;
use ringledger_domain::account::{AccountCommand, FreezeReason};
use ringledger_domain::{AccountId, ActorId, CallId, PaymentId, ReservationId};
use ringledger_tests::accounts::{open, service, usd};
use ringledger_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_names_the_operator_and_reason_and_no_one_for_the_receivable_freeze() {
    let db = TestDb::create().await.expect("test database");
    let pool = &db.pool;
    ensure_all_live(pool).await;
    let svc = service(pool.clone());
    let account = AccountId::new_v7();
    let (adjuster, freezer) = (ActorId::new_v7(), ActorId::new_v7());
    let payment = PaymentId::parse("pi_audit").unwrap();
    let call = CallId::new_v7();
    open(&svc, account).await.unwrap();
    let run = |cmd: AccountCommand| {
        let svc = svc.clone();
        async move { svc.execute(account, Envelope::new(cmd)).await.expect("command") }
    };
    run(AccountCommand::PurchaseCredit {
        checkout_session_id: None,
        payment_id: payment.clone(),
        paid: usd(10),
        bonus: usd(0),
    })
    .await;
    run(AccountCommand::ReserveCredit {
        reservation_id: ReservationId::new_v7(),
        call_id: call,
        amount: usd(8),
    })
    .await;
    run(AccountCommand::SettleCall {
        call_id: call,
        cost: usd(8),
    })
    .await;
    run(AccountCommand::AdjustCredit {
        amount: usd(2),
        reason: "goodwill for a dropped call".into(),
        actor: adjuster,
        call_id: None,
        correction: None,
    })
    .await;
    run(AccountCommand::Freeze {
        reason: FreezeReason::Admin,
        actor: Some(freezer),
        note: "chargeback risk".into(),
    })
    .await;
    // The whole payment refunded after $8 was spent: $6 is owed, and the ledger freezes.
    let refunded = run(AccountCommand::RecordRefund {
        charge_id: None,
        payment_id: payment,
        refunded_total: usd(10),
    })
    .await;
    assert_eq!(
        refunded.events.len(),
        2,
        "refund and the receivable freeze: {refunded:?}"
    );

    let total = account_event_count(pool).await;
    catch_up_to(
        pool,
        &runner(pool, &fresh("audit_trail"), 1),
        total,
        Duration::from_secs(30),
    )
    .await;
    let rows: Vec<(Option<String>, String, String)> = sqlx::query_as(
        "SELECT actor, action, reason FROM audit_trail WHERE account_id = $1 ORDER BY global_position",
    )
    .bind(account.0)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        3,
        "adjustment, admin freeze, receivable freeze: {rows:#?}"
    );

    let (actor, action, reason) = &rows[0];
    assert_eq!(actor.as_deref(), Some(adjuster.to_string().as_str()));
    assert!(
        action.starts_with("adjusted credit by") && action.contains("2.000000 USD"),
        "{action}"
    );
    assert_eq!(reason, "goodwill for a dropped call");

    let (actor, action, reason) = &rows[1];
    assert_eq!(actor.as_deref(), Some(freezer.to_string().as_str()));
    assert_eq!(action, "froze the account (admin)");
    assert_eq!(reason, "chargeback risk");

    let (actor, action, reason) = &rows[2];
    assert_eq!(*actor, None, "the ledger froze the account itself");
    assert_eq!(action, "froze the account (receivable)");
    assert!(reason.contains("6.000000 USD owed"), "{reason}");
}
