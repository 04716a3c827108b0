//! Rate corrections and re-rating end to end on a real Postgres: calls placed and ended
//! through the real call service, corrections recorded through the rate service, re-rating by
//! the process manager. A correction changes exactly the calls it covers, by the right amount,
//! once (re-run, or killed between the Call's event and the Account's credit and run again);
//! an upward one leaves every balance alone and changes only margins; what-if writes nothing
//! and predicts the correction's totals; `verify` passes afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ringledger_api::calls::{CallService, CallsConfig, Report, StartCall};
use ringledger_api::ledger::{AccountService, LedgerConfig};
use ringledger_api::rates::{CorrectionRequest, QuoteOutcome, QuoteRequest, RateService};
use ringledger_api::rerate::{what_if, DraftDeck, ReRater, RerateError, RunOptions, Summary};
use ringledger_api::store::PostgresStore;
use ringledger_domain::call::{our_cost, Call, EndCause, NodeId, Progress};
use ringledger_domain::rates::correction::RatesCorrected;
use ringledger_domain::{AccountId, ActorId, CallId, Currency, Money, Tariff, E164};
use ringledger_projections::{versions, Runner, RunnerConfig};
use ringledger_tests::accounts::fold_stream;
use ringledger_tests::metering::funded_account;
use ringledger_tests::TestDb;
use uuid::Uuid;

const DECK: &[u8] = include_bytes!("../fixtures/rates/twilio-voice.csv");
/// Matched on deck prefix 4477 (Vodafone UK).
const MOBILE: &str = "+447712345678";
/// Matched on deck prefix 442 (UK landline).
const LANDLINE: &str = "+442079460958";
const NODE: &str = "media-1";

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).single().expect("time")
}

fn corrector() -> ActorId {
    ActorId(Uuid::from_u128(0xC0_44EC7))
}

struct World {
    db: TestDb,
    rates: RateService,
    calls: CallService,
}

struct Placed {
    id: CallId,
    account: AccountId,
}

impl World {
    async fn new() -> World {
        let db = TestDb::create().await.expect("db");
        let rates = ringledger_tests::rates::service(db.pool.clone());
        let status = ringledger_tests::rates::import(
            &rates,
            DECK,
            &ringledger_tests::rates::request("deck.csv", None),
        )
        .await
        .expect("import");
        ringledger_tests::rates::activate(&rates, &status, false)
            .await
            .expect("activate");
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
        World { db, rates, calls }
    }

    /// Quotes, starts, answers and stops a call through the call service, placed at `at`.
    async fn call(&self, account: AccountId, number: &str, at: DateTime<Utc>, talk_ms: u64) -> Placed {
        let request = QuoteRequest {
            account_id: account,
            number: number.into(),
            region: None,
        };
        let quote = match self.rates.quote(&request, at).await.expect("quote") {
            QuoteOutcome::Quoted { quote, .. } => quote,
            other => panic!("no quote: {other:?}"),
        };
        let id = CallId(Uuid::new_v4());
        let start = StartCall {
            call_id: id,
            account_id: account,
            node_id: NodeId::parse(NODE).expect("node"),
            quote_id: quote.id,
            number: E164::parse(number, None).expect("number"),
        };
        self.calls.start(&start, at).await.expect("start");
        let answered = at + Duration::seconds(2);
        self.calls
            .report(NODE, id, 1, Report::Progress(Progress::Answered), answered)
            .await
            .expect("answered");
        let stop = Report::Stop {
            talk_ms,
            cause: EndCause::CallerHangup,
            quality: None,
        };
        let ended = answered + Duration::milliseconds(i64::try_from(talk_ms).expect("ms"));
        self.calls
            .report(NODE, id, 2, stop, ended)
            .await
            .expect("stopped");
        Placed { id, account }
    }

    async fn call_state(&self, id: CallId) -> Call {
        self.calls.ledger().load(&id.to_string()).await.expect("call")
    }

    /// Every projection caught up to the end of the log.
    async fn catch_up(&self) {
        for p in ringledger_projections::all() {
            let version = versions::ensure_live(&self.db.pool, p.as_ref())
                .await
                .expect("live");
            let runner = Runner::new(self.db.pool.clone(), p, version, RunnerConfig::default());
            runner.catch_up(None, |_| {}).await.expect("caught up");
        }
    }

    async fn correct(&self, cost: i64, selling: Option<i64>) -> RatesCorrected {
        let request = CorrectionRequest {
            prefix: "4477".into(),
            cost_per_minute: usd(cost),
            selling_per_minute: selling.map(usd),
            effective_from: day(10),
            effective_to: Some(day(20)),
            reason: "the provider's deck had Vodafone wrong".into(),
            actor: corrector(),
            idempotency_key: None,
        };
        self.rates.correct(&request).await.expect("corrected")
    }

    async fn rerate(&self, number: u64) -> Summary {
        self.catch_up().await;
        ReRater::standalone(self.db.pool.clone())
            .run(number, RunOptions::default(), |_| {})
            .await
            .expect("re-rated")
    }

    async fn available(&self, account: AccountId) -> i64 {
        fold_stream(&self.db.pool, account)
            .await
            .expect("fold")
            .0
            .balances()
            .available
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }

    /// `ringledger-replay verify`: every projection rebuilt from position 0 equals the live one.
    async fn verify(&self) {
        self.catch_up().await;
        for p in ringledger_projections::all() {
            let diffs = ringledger_projections::verify::verify(&self.db.pool, &p, 5, |_| {})
                .await
                .expect("verify ran");
            assert!(
                diffs.iter().all(|d| d.is_empty()),
                "{} differs: {diffs:?}",
                p.name()
            );
        }
    }
}

/// Two accounts; calls on 4477 inside the range (three), before it (one), and a landline call
/// inside it (one). Returns (covered calls, other calls).
async fn seed(world: &World) -> (Vec<Placed>, Vec<Placed>) {
    let a = funded_account(&world.db, 5_000_000).await.expect("a");
    let b = funded_account(&world.db, 5_000_000).await.expect("b");
    let covered = vec![
        world.call(a, MOBILE, day(11), 45_500).await,
        world.call(a, MOBILE, day(12), 30_000).await,
        world.call(b, MOBILE, day(15), 12_300).await,
    ];
    let others = vec![
        world.call(a, MOBILE, day(5), 40_000).await,
        world.call(b, LANDLINE, day(12), 50_000).await,
    ];
    (covered, others)
}

/// What the customer should pay after a correction to `selling`: never more than before.
async fn expected_charge(world: &World, call: &Placed, selling: i64) -> (i64, i64) {
    let state = world.call_state(call.id).await;
    let plan = state.terms().expect("terms").tariff.plan;
    let tariff = Tariff::new(usd(selling), plan).expect("tariff");
    let priced = tariff.cost(state.talk_seconds()).expect("cost").micros();
    let before = state.charged().micros();
    (before, before.min(priced.min(state.reserved().micros())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_refunds_exactly_the_covered_calls_once_and_quotes_use_it() {
    let world = World::new().await;
    let (covered, others) = seed(&world).await;
    let mut expected: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut charges = Vec::new();
    for call in &covered {
        let (before, after) = expected_charge(&world, call, 20_000).await;
        assert!(after < before, "the correction must lower this call's price");
        *expected.entry(call.account.0).or_default() += before - after;
        charges.push(after);
    }
    let untouched: Vec<i64> = futures_charges(&world, &others).await;
    let balances: BTreeMap<Uuid, i64> = balances(&world, &covered).await;

    let correction = world.correct(10_000, Some(20_000)).await;
    assert_eq!(correction.id(), "rc-1");
    assert_eq!(
        correction.old.cost_per_minute,
        usd(38_000),
        "the deck's Vodafone cost"
    );
    let summary = world.rerate(1).await;
    assert_eq!(summary.calls_rerated, 3);
    assert_eq!(summary.accounts_credited, 2);
    assert_eq!(summary.refunded_micros, expected.values().sum::<i64>());
    for (call, after) in covered.iter().zip(&charges) {
        assert_eq!(world.call_state(call.id).await.charged().micros(), *after);
    }
    assert_eq!(
        futures_charges(&world, &others).await,
        untouched,
        "other calls unchanged"
    );
    for (account, before) in &balances {
        let refund = expected.get(account).copied().unwrap_or(0);
        assert_eq!(world.available(AccountId(*account)).await, before + refund);
    }

    // Running it again changes nothing.
    let events = world.count("SELECT count(*) FROM events").await;
    let again = world.rerate(1).await;
    assert_eq!(
        (again.calls_rerated, again.refunded_micros),
        (3, summary.refunded_micros)
    );
    assert_eq!(world.count("SELECT count(*) FROM events").await, events);
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CreditAdjusted'")
            .await,
        3
    );

    // Quotes inside the range use the corrected price; outside it, the deck's.
    world.rates.book().refresh(&world.db.pool).await.expect("book");
    let quote_at = |at| {
        let request = QuoteRequest {
            account_id: covered[0].account,
            number: MOBILE.into(),
            region: None,
        };
        let rates = world.rates.clone();
        async move {
            match rates.quote(&request, at).await.expect("quote") {
                QuoteOutcome::Quoted { quote, .. } => quote.price,
                other => panic!("{other:?}"),
            }
        }
    };
    let inside = quote_at(day(15)).await;
    assert_eq!(
        (inside.selling.rate_per_minute, inside.cost_per_minute),
        (usd(20_000), usd(10_000))
    );
    assert_ne!(quote_at(day(25)).await.selling.rate_per_minute, usd(20_000));

    // The audit trail: each re-rated call names the correction and who made it.
    world.catch_up().await;
    let trail: Vec<(Uuid, String, Uuid)> =
        sqlx::query_as("SELECT call_id, correction, actor FROM call_rerates ORDER BY call_id")
            .fetch_all(&world.db.pool)
            .await
            .expect("trail");
    assert_eq!(trail.len(), 3);
    assert!(trail.iter().all(|(_, c, a)| c == "rc-1" && *a == corrector().0));
    world.verify().await;
}

async fn futures_charges(world: &World, calls: &[Placed]) -> Vec<i64> {
    let mut out = Vec::new();
    for c in calls {
        out.push(world.call_state(c.id).await.charged().micros());
    }
    out
}

async fn balances(world: &World, calls: &[Placed]) -> BTreeMap<Uuid, i64> {
    let mut out = BTreeMap::new();
    for c in calls {
        out.insert(c.account.0, world.available(c.account).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_the_call_event_and_the_credit_then_run_again_credits_once() {
    let world = World::new().await;
    let (covered, _) = seed(&world).await;
    let before = balances(&world, &covered).await;
    let mut expected: BTreeMap<Uuid, i64> = BTreeMap::new();
    for call in &covered {
        let (was, now) = expected_charge(&world, call, 20_000).await;
        *expected.entry(call.account.0).or_default() += was - now;
    }
    world.correct(10_000, Some(20_000)).await;
    world.catch_up().await;
    let rerater = ReRater::standalone(world.db.pool.clone());
    let halted = rerater
        .run(
            1,
            RunOptions {
                halt_before_credits: true,
            },
            |_| {},
        )
        .await;
    assert!(matches!(halted, Err(RerateError::Halted)), "{halted:?}");
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CallReRated'")
            .await,
        3
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CreditAdjusted'")
            .await,
        0
    );
    assert_eq!(balances(&world, &covered).await, before, "no refund yet");

    // A fresh process (new caches) runs it again: the Call side answers from its keys.
    let summary = ReRater::standalone(world.db.pool.clone())
        .run(1, RunOptions::default(), |_| {})
        .await
        .expect("resumed");
    assert_eq!(summary.calls_rerated, 3);
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CallReRated'")
            .await,
        3
    );
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CreditAdjusted'")
            .await,
        3
    );
    for (account, was) in &before {
        assert_eq!(
            world.available(AccountId(*account)).await,
            was + expected[account]
        );
    }
    // And once more: the same ledger.
    world.rerate(1).await;
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CreditAdjusted'")
            .await,
        3
    );
    world.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_corrections_refund_only_the_total_difference() {
    let world = World::new().await;
    let (covered, _) = seed(&world).await;
    let before = balances(&world, &covered).await;
    let mut expected: BTreeMap<Uuid, i64> = BTreeMap::new();
    for call in &covered {
        let (was, now) = expected_charge(&world, call, 15_000).await;
        *expected.entry(call.account.0).or_default() += was - now;
    }
    world.correct(10_000, Some(25_000)).await;
    world.rerate(1).await;
    world.correct(8_000, Some(15_000)).await;
    world.rerate(2).await;
    for (account, was) in &before {
        assert_eq!(
            world.available(AccountId(*account)).await,
            was + expected[account]
        );
    }
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CallReRated'")
            .await,
        6
    );
    world.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upward_correction_leaves_balances_alone_and_changes_margins() {
    let world = World::new().await;
    let (covered, _) = seed(&world).await;
    let before = balances(&world, &covered).await;
    world.catch_up().await;
    let margins_before: Vec<(Uuid, i64, i64)> =
        sqlx::query_as("SELECT call_id, our_cost_micros, margin_micros FROM call_margins ORDER BY call_id")
            .fetch_all(&world.db.pool)
            .await
            .expect("margins");
    world.correct(60_000, Some(90_000)).await;
    let summary = world.rerate(1).await;
    assert_eq!(
        (
            summary.calls_rerated,
            summary.accounts_credited,
            summary.refunded_micros
        ),
        (3, 0, 0)
    );
    assert!(summary.our_cost_delta_micros > 0);
    assert_eq!(balances(&world, &covered).await, before);
    assert_eq!(
        world
            .count("SELECT count(*) FROM events WHERE event_type = 'CreditAdjusted'")
            .await,
        0
    );
    world.catch_up().await;
    for call in &covered {
        let state = world.call_state(call.id).await;
        let plan = state.terms().expect("terms").tariff.plan;
        let ours = our_cost(usd(60_000), &plan, state.talk_seconds())
            .expect("cost")
            .micros();
        let (cost, margin, revenue): (i64, i64, i64) = sqlx::query_as(
            "SELECT our_cost_micros, margin_micros, revenue_micros FROM call_margins WHERE call_id = $1",
        )
        .bind(call.id.0)
        .fetch_one(&world.db.pool)
        .await
        .expect("margin row");
        assert_eq!((cost, margin), (ours, revenue - ours));
        let old = margins_before
            .iter()
            .find(|m| m.0 == call.id.0)
            .expect("was there");
        assert!(margin < old.2, "a dearer cost lowers the margin");
        assert_eq!(revenue, state.charged().micros(), "revenue unchanged");
    }
    world.verify().await;
}

/// Everything a what-if could have written: the log and every read model, as digests.
async fn fingerprint(world: &World) -> Vec<(String, String)> {
    let mut out = vec![(
        "events".to_owned(),
        world.count("SELECT count(*) FROM events").await.to_string(),
    )];
    let mut tables: Vec<&str> = vec!["rerate_runs", "rerate_calls", "jobs", "quotes"];
    let projections = ringledger_projections::all();
    for p in &projections {
        tables.extend(p.tables());
    }
    for table in tables {
        let digest: Option<String> = sqlx::query_scalar(&format!(
            "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
        ))
        .fetch_one(&world.db.pool)
        .await
        .expect("digest");
        out.push((table.to_owned(), digest.unwrap_or_default()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_writes_nothing_and_predicts_the_correction() {
    let world = World::new().await;
    seed(&world).await;
    world.catch_up().await;
    let text = String::from_utf8(DECK.to_vec()).expect("utf-8");
    let old_row = "United Kingdom - Mobile - Vodafone,0.0380,";
    assert!(text.contains(old_row));
    let draft = text.replace(old_row, "United Kingdom - Mobile - Vodafone,0.0200,");
    let draft = DraftDeck::read(draft.as_bytes(), Currency::USD).expect("draft");
    let before = fingerprint(&world).await;
    let pricing = world.rates.book().get().pricing.clone();
    let predicted = what_if(&world.db.pool, &draft, &pricing, None, day(10), day(20))
        .await
        .expect("what-if");
    assert_eq!(fingerprint(&world).await, before, "what-if wrote something");
    assert_eq!(
        predicted.total.calls, 4,
        "every ended call of the range is priced"
    );
    assert_eq!(predicted.total.changed_calls, 3, "only the Vodafone calls change");
    assert!(predicted.total.refund_micros > 0);
    let gb = predicted
        .countries
        .iter()
        .find(|l| l.key == "GB")
        .expect("GB line");
    assert_eq!(gb.refund_micros, predicted.total.refund_micros);

    // The real correction to the draft's cost (selling price from the same pricing rules).
    world.correct(20_000, None).await;
    let summary = world.rerate(1).await;
    assert_eq!(summary.refunded_micros, predicted.total.refund_micros);
    assert_eq!(
        summary.our_cost_delta_micros,
        predicted.total.our_cost_after_micros - predicted.total.our_cost_before_micros
    );
    assert_eq!(summary.calls_rerated, predicted.total.changed_calls);
    let refunded_accounts = predicted.accounts.iter().filter(|l| l.refund_micros > 0).count();
    assert_eq!(summary.accounts_credited, refunded_accounts as u64);
    world.verify().await;
}
