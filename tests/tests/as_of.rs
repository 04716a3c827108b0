//! Balances "as of T", two ways that must agree: by folding each stream up to its last event
//! with `occurred_at ≤ T`, and from the running balances of the statement projection. Checked
//! over random histories of account commands run through the command service, at every
//! event's `occurred_at`, just before the first and just after the last.

mod projections_support;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use projections_support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use ringledger_api::ledger::{AccountService, CommandError, Envelope};
use ringledger_api::store::PostgresStore;
use ringledger_domain::account::{AccountCommand, ReleaseReason};
use ringledger_domain::{AccountId, ActorId, CallId, Currency, GrantId, Money, PaymentId, ReservationId};
use ringledger_projections::as_of;
use ringledger_tests::accounts::{open, service};
use ringledger_tests::TestDb;
use sqlx::PgPool;

const ACCOUNTS: usize = 2;

fn cents(c: i64) -> Money {
    Money::from_micros(c * 10_000, Currency::USD)
}

/// One step of a history; `pick` chooses among the account's open calls or payments.
#[derive(Debug, Clone)]
enum Op {
    Purchase {
        account: usize,
        paid_cents: i64,
        bonus_cents: i64,
    },
    Reserve {
        account: usize,
        cents: i64,
    },
    Settle {
        account: usize,
        pick: usize,
        cost_cents: i64,
    },
    Release {
        account: usize,
        pick: usize,
    },
    Grant {
        account: usize,
        cents: i64,
    },
    Adjust {
        account: usize,
        cents: i64,
    },
    Refund {
        account: usize,
        pick: usize,
        percent: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let account = 0..ACCOUNTS;
    prop_oneof![
        3 => (account.clone(), 100i64..5_000, 0i64..300)
            .prop_map(|(account, paid_cents, bonus_cents)| Op::Purchase { account, paid_cents, bonus_cents }),
        4 => (account.clone(), 1i64..3_000).prop_map(|(account, cents)| Op::Reserve { account, cents }),
        3 => (account.clone(), any::<usize>(), 0i64..4_000)
            .prop_map(|(account, pick, cost_cents)| Op::Settle { account, pick, cost_cents }),
        2 => (account.clone(), any::<usize>()).prop_map(|(account, pick)| Op::Release { account, pick }),
        1 => (account.clone(), 1i64..1_000).prop_map(|(account, cents)| Op::Grant { account, cents }),
        2 => (account.clone(), -2_000i64..2_000)
            .prop_filter("a zero adjustment is refused", |(_, c)| *c != 0)
            .prop_map(|(account, cents)| Op::Adjust { account, cents }),
        2 => (account, any::<usize>(), 1i64..=100)
            .prop_map(|(account, pick, percent)| Op::Refund { account, pick, percent }),
    ]
}

/// What the test remembers of an account to make commands that can succeed.
#[derive(Default)]
struct Known {
    calls: Vec<(CallId, ReservationId)>,
    payments: Vec<(PaymentId, i64)>,
}

fn command(op: &Op, known: &mut Known, n: usize) -> Option<AccountCommand> {
    let pick = |len: usize, p: usize| (len > 0).then(|| p % len);
    Some(match *op {
        Op::Purchase {
            paid_cents,
            bonus_cents,
            ..
        } => {
            let id = PaymentId::parse(&format!("pi_{n}")).unwrap();
            known.payments.push((id.clone(), paid_cents));
            AccountCommand::PurchaseCredit {
                checkout_session_id: None,
                payment_id: id,
                paid: cents(paid_cents),
                bonus: cents(bonus_cents),
            }
        }
        Op::Reserve { cents: c, .. } => {
            let call = (CallId::new_v7(), ReservationId::new_v7());
            known.calls.push(call);
            AccountCommand::ReserveCredit {
                reservation_id: call.1,
                call_id: call.0,
                amount: cents(c),
            }
        }
        Op::Settle {
            pick: p, cost_cents, ..
        } => {
            let (call, _) = known.calls.remove(pick(known.calls.len(), p)?);
            AccountCommand::SettleCall {
                call_id: call,
                cost: cents(cost_cents),
            }
        }
        Op::Release { pick: p, .. } => {
            let (_, reservation) = known.calls.remove(pick(known.calls.len(), p)?);
            AccountCommand::ReleaseReservation {
                reservation_id: reservation,
                reason: ReleaseReason::Unused,
            }
        }
        Op::Grant { cents: c, .. } => AccountCommand::GrantCredit {
            grant_id: GrantId::new_v7(),
            amount: cents(c),
            promotion: "as-of".into(),
        },
        Op::Adjust { cents: c, .. } => AccountCommand::AdjustCredit {
            amount: cents(c),
            reason: "as-of test".into(),
            actor: ActorId::new_v7(),
            call_id: None,
            correction: None,
        },
        Op::Refund { pick: p, percent, .. } => {
            let (id, paid) = known.payments[pick(known.payments.len(), p)?].clone();
            AccountCommand::RecordRefund {
                charge_id: None,
                payment_id: id,
                refunded_total: cents(paid * percent / 100),
            }
        }
    })
}

fn account_of(op: &Op) -> usize {
    match *op {
        Op::Purchase { account, .. }
        | Op::Reserve { account, .. }
        | Op::Settle { account, .. }
        | Op::Release { account, .. }
        | Op::Grant { account, .. }
        | Op::Adjust { account, .. }
        | Op::Refund { account, .. } => account,
    }
}

/// Runs the history on fresh accounts; returns them. Refusals (funds, frozen...) append
/// nothing and are part of the history.
async fn run_history(svc: &AccountService<PostgresStore>, ops: &[Op]) -> Vec<AccountId> {
    let accounts: Vec<AccountId> = (0..ACCOUNTS).map(|_| AccountId::new_v7()).collect();
    let mut known: Vec<Known> = (0..ACCOUNTS).map(|_| Known::default()).collect();
    for a in &accounts {
        open(svc, *a).await.expect("open");
    }
    for (n, op) in ops.iter().enumerate() {
        let i = account_of(op);
        let Some(cmd) = command(op, &mut known[i], n) else {
            continue;
        };
        match svc.execute(accounts[i], Envelope::new(cmd)).await {
            Ok(_) | Err(CommandError::Rejected(_)) => {}
            Err(e) => panic!("command service failed: {e}"),
        }
    }
    accounts
}

async fn occurred_ats(pool: &PgPool, accounts: &[AccountId]) -> BTreeSet<DateTime<Utc>> {
    let ids: Vec<String> = accounts.iter().map(|a| a.to_string()).collect();
    let stamps: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT occurred_at FROM events WHERE aggregate_type = 'Account' AND aggregate_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .expect("stamps");
    stamps.into_iter().collect()
}

async fn check(
    pool: &PgPool,
    svc: &AccountService<PostgresStore>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let accounts = run_history(svc, &ops).await;
    let statements = fresh("statements");
    let total = account_event_count(pool).await;
    catch_up_to(
        pool,
        &runner(pool, &statements, 1),
        total,
        Duration::from_secs(30),
    )
    .await;

    let stamps = occurred_ats(pool, &accounts).await;
    let (first, last) = (*stamps.first().unwrap(), *stamps.last().unwrap());
    let mut instants: Vec<DateTime<Utc>> = stamps.into_iter().collect();
    instants.push(first - ChronoDuration::microseconds(1));
    instants.push(last + ChronoDuration::microseconds(1));
    instants.sort();
    for account in &accounts {
        for at in &instants {
            let folded = as_of::by_fold(pool, account.0, *at).await.expect("by_fold");
            let projected = as_of::from_statements(pool, account.0, *at)
                .await
                .expect("from_statements");
            prop_assert_eq!(folded, projected, "account {} as of {}", account, at.to_rfc3339());
        }
        let end = as_of::by_fold(pool, account.0, last + ChronoDuration::microseconds(1))
            .await
            .unwrap();
        let whole = expected_balance(pool, *account).await;
        prop_assert_eq!(
            (
                end.available_micros,
                end.reserved_micros,
                end.receivable_micros,
                end.disputed_micros
            ),
            (whole.available, whole.reserved, whole.receivable, whole.disputed),
            "as of the end, the whole stream"
        );
    }
    let before = as_of::by_fold(pool, accounts[0].0, first - ChronoDuration::microseconds(1))
        .await
        .unwrap();
    prop_assert_eq!(
        before,
        as_of::Balances::default(),
        "before the first event, nothing"
    );
    Ok(())
}

#[test]
fn balances_as_of_any_instant_agree_by_fold_and_from_statements() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let db = rt.block_on(TestDb::create()).expect("test database");
    rt.block_on(ensure_all_live(&db.pool));
    let svc = rt.block_on(async { service(db.pool.clone()) });
    let mut runner = TestRunner::new(Config {
        cases: 12,
        max_shrink_iters: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let histories = proptest::collection::vec(op(), 0..40);
    let outcome = runner.run(&histories, |ops| rt.block_on(check(&db.pool, &svc, ops)));
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
