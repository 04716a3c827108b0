//! Stripe webhooks end to end (issue 8): signed, Stripe-shaped events posted to the running
//! app, processed by its `stripe` queue, checked on the Account stream as stored and in the
//! read models. Each test has its own database.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, TestRunner};
use ringledger_api::ledger::Envelope;
use ringledger_domain::account::{AccountCommand, AccountEvent, FreezeReason};
use ringledger_domain::{AccountId, ActorId};
use ringledger_tests::accounts::{fold_stream, open};
use ringledger_tests::payments::{charge, dispute, event, processed, session, PaymentsApp};
use ringledger_tests::TestDb;
use sqlx::PgPool;

const WAIT: Duration = Duration::from_secs(30);

async fn app() -> (TestDb, PaymentsApp) {
    let db = TestDb::create().await.expect("test database");
    let app = PaymentsApp::start(&db.url, 24).await.expect("app starts");
    (db, app)
}

/// Every posting on the account's stream, summed per ledger account (house accounts too).
async fn ledger(pool: &PgPool, account: AccountId) -> BTreeMap<&'static str, i64> {
    let (_, events) = fold_stream(pool, account).await.expect("stream folds");
    let mut sums = BTreeMap::new();
    for e in &events {
        for line in e.postings().map(|p| p.lines().to_vec()).unwrap_or_default() {
            *sums.entry(line.account.as_str()).or_insert(0) += line.amount.micros();
        }
    }
    sums.retain(|_, v| *v != 0);
    sums
}

async fn purchases(pool: &PgPool, account: AccountId) -> usize {
    let (_, events) = fold_stream(pool, account).await.unwrap();
    events
        .iter()
        .filter(|e| matches!(e, AccountEvent::CreditPurchased { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_completed_event_delivered_100_times_concurrently_is_credited_once() {
    let (db, app) = app().await;
    let account = AccountId::new_v7();
    open(&app.app_state.accounts, account).await.unwrap();
    let body = event(
        "evt_dup_1",
        "checkout.session.completed",
        session("cs_dup", "pi_dup", account, 1_000, 1_000, "paid"),
    );
    let deliveries = (0..100).map(|_| app.deliver(&body));
    let answers = futures::future::join_all(deliveries).await;
    let mut duplicates = 0;
    for a in answers {
        let (status, json) = a.expect("answered");
        assert_eq!(status, 200, "{json}");
        if json["duplicate"] == true {
            duplicates += 1;
        }
    }
    assert_eq!(duplicates, 99, "exactly one delivery is recorded");
    processed(&db.pool, &["evt_dup_1".to_owned()], WAIT)
        .await
        .unwrap();
    // A late repeat after processing changes nothing either.
    assert_eq!(app.deliver(&body).await.unwrap().1["duplicate"], true);
    assert_eq!(purchases(&db.pool, account).await, 1);
    let sums = ledger(&db.pool, account).await;
    let expected = BTreeMap::from([
        ("available", 11_000_000),
        ("stripe_clearing", -10_000_000),
        ("promotions", -1_000_000),
    ]);
    assert_eq!(sums, expected);
    let jobs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE queue = 'stripe' AND kind = 'stripe.webhook'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(jobs, 1);
    // The balance read model shows it, and the statement line names the Stripe ids.
    let pool = db.pool.clone();
    let available = ringledger_tests::eventually(WAIT, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT available_micros FROM balances WHERE account_id = $1")
                .bind(account.0)
                .fetch_optional(&pool)
                .await
                .ok()
                .flatten()
                .filter(|a| *a > 0)
        }
    })
    .await
    .unwrap();
    assert_eq!(available, 11_000_000);
    app.stop().await;
}

/// One payment's Stripe reports for the order property: completed, up to two partial refunds
/// (cumulative), and a dispute that is created then closed won or lost.
#[derive(Debug, Clone)]
struct Case {
    cents: i64,
    refunds: Vec<i64>,
    dispute: Option<(i64, bool)>,
    order: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        500i64..20_000,
        prop::collection::vec(1i64..=100, 0..3),
        prop::option::of((1i64..=100, any::<bool>())),
    )
        .prop_flat_map(|(cents, refund_pcts, dispute)| {
            let mut refunds: Vec<i64> = refund_pcts
                .iter()
                .map(|p| cents * p / 100)
                .filter(|r| *r > 0)
                .collect();
            refunds.sort_unstable();
            refunds.dedup();
            let left = cents - refunds.last().copied().unwrap_or(0);
            let dispute = dispute
                .map(|(pct, won)| (left * pct / 100, won))
                .filter(|(a, _)| *a > 0);
            let reports = 1 + refunds.len() + if dispute.is_some() { 2 } else { 0 };
            let order = Just((0..reports).collect::<Vec<_>>())
                .prop_shuffle()
                .prop_flat_map(move |o| {
                    prop::collection::vec(0..reports, 0..4).prop_map(move |extra| {
                        let mut all = o.clone();
                        all.extend(extra);
                        all
                    })
                });
            (Just(cents), Just(refunds), Just(dispute), order)
        })
        .prop_map(|(cents, refunds, dispute, order)| Case {
            cents,
            refunds,
            dispute,
            order,
        })
}

impl Case {
    fn bodies(&self, n: usize, account: AccountId) -> Vec<(String, String)> {
        let pi = format!("pi_case{n}");
        let ch = format!("ch_case{n}");
        let mut out = vec![(
            format!("evt_c{n}_paid"),
            "checkout.session.completed",
            session(&format!("cs_case{n}"), &pi, account, self.cents, 500, "paid"),
        )];
        for (i, r) in self.refunds.iter().enumerate() {
            out.push((
                format!("evt_c{n}_r{i}"),
                "charge.refunded",
                charge(&ch, &pi, self.cents, *r),
            ));
        }
        if let Some((amount, won)) = self.dispute {
            let dp = format!("dp_case{n}");
            out.push((
                format!("evt_c{n}_dc"),
                "charge.dispute.created",
                dispute(&dp, &ch, &pi, amount, "needs_response"),
            ));
            let status = if won { "won" } else { "lost" };
            out.push((
                format!("evt_c{n}_dx"),
                "charge.dispute.closed",
                dispute(&dp, &ch, &pi, amount, status),
            ));
        }
        out.into_iter()
            .map(|(id, t, o)| (id.clone(), event(&id, t, o)))
            .collect()
    }

    /// The ledger worked out by hand, in micro-units: paid + 5 % bonus (rounded down), less the
    /// largest cumulative refund and the same share of the bonus, less a lost dispute.
    fn expected(&self) -> BTreeMap<&'static str, i64> {
        let paid = self.cents * 10_000;
        let bonus = paid * 500 / 10_000;
        let refunded = self.refunds.last().copied().unwrap_or(0) * 10_000;
        let bonus_back = i64::try_from(i128::from(bonus) * i128::from(refunded) / i128::from(paid)).unwrap();
        let lost = self
            .dispute
            .filter(|(_, won)| !won)
            .map_or(0, |(a, _)| a * 10_000);
        let mut m = BTreeMap::from([
            ("available", paid + bonus - refunded - bonus_back - lost),
            ("stripe_clearing", -paid + refunded + lost),
            ("promotions", -bonus + bonus_back),
        ]);
        m.retain(|_, v| *v != 0);
        m
    }
}

#[test]
fn refunds_and_disputes_in_any_order_with_repeats_give_the_expected_ledger() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (db, app) = rt.block_on(app());
    let mut runner = TestRunner::new(PropConfig {
        cases: 12,
        failure_persistence: None,
        ..PropConfig::default()
    });
    let counter = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&case(), |c| {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let account = AccountId::new_v7();
        let bodies = c.bodies(n, account);
        let ledger_now = rt.block_on(async {
            open(&app.app_state.accounts, account).await.unwrap();
            for &i in &c.order {
                let (status, json) = app.deliver(&bodies[i].1).await.unwrap();
                assert_eq!(status, 200, "{json}");
            }
            let ids: Vec<String> = bodies.iter().map(|(id, _)| id.clone()).collect();
            processed(&db.pool, &ids, WAIT).await.unwrap();
            ledger(&db.pool, account).await
        });
        prop_assert_eq!(ledger_now, c.expected(), "order {:?}", c.order);
        let (state, _) = rt.block_on(fold_stream(&db.pool, account)).unwrap();
        let lost = c.dispute.is_some_and(|(_, won)| !won);
        prop_assert_eq!(state.frozen_reasons().contains(&FreezeReason::Dispute), lost);
        prop_assert_eq!(state.balances().disputed, 0);
        Ok(())
    });
    rt.block_on(app.stop());
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_larger_than_what_is_left_is_owed_and_freezes_the_account() {
    let (db, app) = app().await;
    let account = AccountId::new_v7();
    open(&app.app_state.accounts, account).await.unwrap();
    let paid = event(
        "evt_rf_paid",
        "checkout.session.completed",
        session("cs_rf", "pi_rf", account, 1_000, 0, "paid"),
    );
    app.deliver(&paid).await.unwrap();
    processed(&db.pool, &["evt_rf_paid".to_owned()], WAIT)
        .await
        .unwrap();
    // Spend 7 of the 10 (an operator's adjustment stands in for calls).
    let spend = AccountCommand::AdjustCredit {
        amount: ringledger_domain::Money::from_micros(-7_000_000, ringledger_domain::Currency::USD),
        reason: "test spend".to_owned(),
        actor: ActorId::new_v7(),
        call_id: None,
        correction: None,
    };
    app.app_state
        .accounts
        .execute(account, Envelope::new(spend))
        .await
        .unwrap();
    let refund = event(
        "evt_rf_1",
        "charge.refunded",
        charge("ch_rf", "pi_rf", 1_000, 1_000),
    );
    app.deliver(&refund).await.unwrap();
    processed(&db.pool, &["evt_rf_1".to_owned()], WAIT).await.unwrap();
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    let b = state.balances();
    assert_eq!((b.available, b.receivable), (0, -7_000_000));
    assert!(state.frozen_reasons().contains(&FreezeReason::Receivable));
    // A new purchase pays the debt first and lifts the receivable freeze at zero.
    let again = event(
        "evt_rf_paid2",
        "checkout.session.completed",
        session("cs_rf2", "pi_rf2", account, 1_000, 0, "paid"),
    );
    app.deliver(&again).await.unwrap();
    processed(&db.pool, &["evt_rf_paid2".to_owned()], WAIT)
        .await
        .unwrap();
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(
        (state.balances().available, state.balances().receivable),
        (3_000_000, 0)
    );
    assert!(state.frozen_reasons().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_won_dispute_lifts_only_the_dispute_reason_and_a_fraud_freeze_stays() {
    let (db, app) = app().await;
    let account = AccountId::new_v7();
    open(&app.app_state.accounts, account).await.unwrap();
    let ids = ["evt_dw_paid", "evt_dw_open"].map(str::to_owned);
    app.deliver(&event(
        &ids[0],
        "checkout.session.completed",
        session("cs_dw", "pi_dw", account, 2_000, 0, "paid"),
    ))
    .await
    .unwrap();
    app.deliver(&event(
        &ids[1],
        "charge.dispute.created",
        dispute("dp_dw", "ch_dw", "pi_dw", 2_000, "needs_response"),
    ))
    .await
    .unwrap();
    processed(&db.pool, &ids, WAIT).await.unwrap();
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(
        (state.balances().available, state.balances().disputed),
        (0, 20_000_000)
    );
    assert!(state.frozen_reasons().contains(&FreezeReason::Dispute));
    let fraud = AccountCommand::Freeze {
        reason: FreezeReason::Fraud,
        actor: Some(ActorId::new_v7()),
        note: "review".to_owned(),
    };
    app.app_state
        .accounts
        .execute(account, Envelope::new(fraud))
        .await
        .unwrap();
    let won = event(
        "evt_dw_won",
        "charge.dispute.closed",
        dispute("dp_dw", "ch_dw", "pi_dw", 2_000, "won"),
    );
    app.deliver(&won).await.unwrap();
    processed(&db.pool, &["evt_dw_won".to_owned()], WAIT)
        .await
        .unwrap();
    let (state, _) = fold_stream(&db.pool, account).await.unwrap();
    assert_eq!(
        (state.balances().available, state.balances().disputed),
        (20_000_000, 0)
    );
    assert_eq!(
        state.frozen_reasons().iter().copied().collect::<Vec<_>>(),
        vec![FreezeReason::Fraud]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_payments_credit_on_success_only_and_receipts_and_statements_carry_stripe_ids() {
    let (db, app) = app().await;
    let account = AccountId::new_v7();
    open(&app.app_state.accounts, account).await.unwrap();
    sqlx::query("INSERT INTO users (id, email, account_opened_at) VALUES ($1, 'payer@example.com', now())")
        .bind(account.0)
        .execute(&db.pool)
        .await
        .unwrap();
    let unpaid = session("cs_as", "pi_as", account, 2_500, 1_000, "unpaid");
    let mut paid = unpaid.clone();
    paid["payment_status"] = "paid".into();
    let failed = session("cs_af", "pi_af", account, 2_500, 0, "unpaid");
    let ids = ["evt_as_1", "evt_as_2", "evt_af_1", "evt_af_2", "evt_exp"].map(str::to_owned);
    let mut expired = session("cs_exp", "pi_x", account, 2_500, 0, "unpaid");
    expired["payment_intent"] = serde_json::Value::Null;
    for (id, t, o) in [
        (&ids[0], "checkout.session.completed", unpaid),
        (&ids[1], "checkout.session.async_payment_succeeded", paid),
        (&ids[2], "checkout.session.completed", failed.clone()),
        (&ids[3], "checkout.session.async_payment_failed", failed),
        (&ids[4], "checkout.session.expired", expired),
    ] {
        assert_eq!(app.deliver(&event(id, t, o)).await.unwrap().0, 200);
    }
    processed(&db.pool, &ids, WAIT).await.unwrap();
    assert_eq!(ledger(&db.pool, account).await["available"], 27_500_000);
    assert_eq!(purchases(&db.pool, account).await, 1);
    let mail: Vec<String> = sqlx::query_scalar(
        "SELECT payload::text FROM jobs WHERE queue = 'mail' AND idempotency_key = 'receipt:pi_as'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(mail.len(), 1);
    assert!(
        mail[0].contains("pi_as") && mail[0].contains("cs_as") && mail[0].contains("25.00 USD"),
        "{}",
        mail[0]
    );
    let pool = db.pool.clone();
    let reference = ringledger_tests::eventually(WAIT, || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT reference FROM statement_lines WHERE account_id = $1 AND kind = 'CreditPurchased' LIMIT 1",
            )
            .bind(account.0)
            .fetch_optional(&pool)
            .await
            .ok()
            .flatten()
        }
    })
    .await
    .unwrap();
    assert_eq!(reference, "payment pi_as (checkout cs_as)");
    app.stop().await;
}
