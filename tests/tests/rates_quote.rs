//! Quotes end to end: an activated deck and the admin's pricing rules give each number its
//! matched prefix, selling rate and the exact longest call the available credit buys; blocked
//! and unrated numbers are refused with the notice; a stored quote is honoured only for its
//! account, its number and until it expires; the public price list is served over HTTP.

use std::time::Duration;

use chrono::Utc;
use ringledger_api::config::{Config, Secret};
use ringledger_api::ledger::Envelope;
use ringledger_api::rates::{QuoteOutcome, QuoteRequest, RateService, RatesConfig};
use ringledger_api::startup::Application;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::rates::policy::{BlockRule, PolicyCommand};
use ringledger_domain::rates::pricing::{PriceOverride, PricingRules};
use ringledger_domain::rates::quote::Quote;
use ringledger_domain::{AccountId, Currency, GrantId, Money, E164};
use ringledger_projections::{versions, Runner, RunnerConfig};
use ringledger_tests::rates::{activate, admin, catch_up, import, import_by_app, request, service_with};
use ringledger_tests::TestDb;

const CLEAN: &[u8] = include_bytes!("../fixtures/rates/twilio-voice.csv");

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

/// A deck activated, pricing 50% markup with a $0.005 minimum margin on a $0.0001 step, and
/// an account with $1.00 available.
async fn priced(db: &TestDb, config: RatesConfig) -> (RateService, AccountId) {
    let svc = service_with(db.pool.clone(), config);
    let status = import(&svc, CLEAN, &request("twilio-voice.csv", None))
        .await
        .expect("import");
    let mut rules = PricingRules {
        markup_bp: 5_000,
        min_margin_per_minute_micros: 5_000,
        rounding_step_micros: 100,
        ..PricingRules::default()
    };
    rules.countries.insert(
        "DE".into(),
        PriceOverride {
            rate_per_minute_micros: Some(20_000),
            ..PriceOverride::default()
        },
    );
    svc.set_policy(PolicyCommand::SetPricingRules {
        rules,
        actor: admin(),
    })
    .await
    .expect("pricing");
    svc.set_policy(PolicyCommand::SetBlockList {
        rules: vec![BlockRule {
            country: Some("FR".into()),
            prefix: None,
            reason: "calls to France are paused".into(),
        }],
        actor: admin(),
    })
    .await
    .expect("block list");
    activate(&svc, &status, false).await.expect("activate");

    let accounts = ringledger_tests::accounts::service(db.pool.clone());
    let account = AccountId::new_v7();
    ringledger_tests::accounts::open(&accounts, account)
        .await
        .expect("open");
    let grant = AccountCommand::GrantCredit {
        grant_id: GrantId::new_v7(),
        amount: usd(1_000_000),
        promotion: "welcome".into(),
    };
    accounts
        .execute(account, Envelope::new(grant))
        .await
        .expect("grant");
    let balances = ringledger_projections::by_name("balances").expect("balances");
    let version = versions::ensure_live(&db.pool, balances.as_ref())
        .await
        .expect("live");
    Runner::new(db.pool.clone(), balances, version, RunnerConfig::default())
        .catch_up(None, |_| {})
        .await
        .expect("balances caught up");
    (svc, account)
}

async fn quote(svc: &RateService, account: AccountId, number: &str, region: Option<&str>) -> QuoteOutcome {
    let request = QuoteRequest {
        account_id: account,
        number: number.into(),
        region: region.map(str::to_owned),
    };
    svc.quote(&request, Utc::now()).await.expect("quote answers")
}

fn quoted(outcome: QuoteOutcome) -> (E164, Quote) {
    match outcome {
        QuoteOutcome::Quoted { number, quote } => (number, quote),
        other => panic!("expected a quote, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_names_the_longest_prefix_the_selling_rate_and_the_exact_longest_call() {
    let db = TestDb::create().await.expect("db");
    let (svc, account) = priced(&db, RatesConfig::default()).await;

    // Vodafone's 4477 is longer than the generic mobile 447.
    let (number, q) = quoted(quote(&svc, account, "+44 7712 345678", None).await);
    assert_eq!(number.digits(), "447712345678");
    assert_eq!(
        (q.destination.iso.as_str(), q.destination.prefix.as_str()),
        ("GB", "4477")
    );
    assert_eq!(q.destination.description, "United Kingdom - Mobile - Vodafone");
    // cost 0.038 * 1.5 = 0.057 (margin 0.019 > 0.005); plan: per second.
    assert_eq!(q.price.cost_per_minute, usd(38_000));
    assert_eq!(q.price.selling.rate_per_minute, usd(57_000));
    assert_eq!(q.price.margin_per_minute, usd(19_000));
    assert_eq!(q.available, usd(1_000_000));
    // $1.00 at $0.057/min per second: cost(t) = ceil(57000 * t / 60) <= 1_000_000 -> t = 1052.
    assert_eq!(q.max_seconds, 1_052);
    assert!(q.price.selling.cost(q.max_seconds).expect("cost") <= usd(1_000_000));
    assert!(q.price.selling.cost(q.max_seconds + 1).expect("cost") > usd(1_000_000));
    assert_eq!((q.expires_at - q.issued_at).num_seconds(), 600);

    // A country override sets a fixed rate; the margin shows even when thin.
    let (_, de) = quoted(quote(&svc, account, "030 1234567", Some("DE")).await);
    assert_eq!(de.destination.prefix, "49");
    assert_eq!(de.price.selling.rate_per_minute, usd(20_000));
    assert_eq!(de.price.margin_per_minute, usd(10_000));

    // Italian numbers keep their leading zero and still match the landline prefix.
    let (it_number, it) = quoted(quote(&svc, account, "+39 06 1234 5678", None).await);
    assert_eq!(it_number.digits(), "390612345678");
    assert_eq!(it.destination.prefix, "39");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_priced_by_caller_origin_apply_to_our_caller_id() {
    let db = TestDb::create().await.expect("db");
    let config = RatesConfig {
        origination_number: Some("14155550100".into()),
        ..RatesConfig::default()
    };
    let (svc, account) = priced(&db, config).await;
    let (_, q) = quoted(quote(&svc, account, "+44 7911 123456", None).await);
    assert_eq!(q.destination.prefix, "447");
    assert_eq!(
        q.price.cost_per_minute,
        usd(30_000),
        "the row for callers from +1"
    );

    let plain = service_with(db.pool.clone(), RatesConfig::default());
    plain.book().refresh(&db.pool).await.expect("book");
    let (_, q) = quoted(quote(&plain, account, "+44 7911 123456", None).await);
    assert_eq!(
        q.price.cost_per_minute,
        usd(40_000),
        "any-origin row without a caller id"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_and_unrated_numbers_are_refused_with_the_reason() {
    let db = TestDb::create().await.expect("db");
    let (svc, account) = priced(&db, RatesConfig::default()).await;
    for (typed, region) in [("911", "US"), ("112", "DE"), ("999", "GB"), ("+1 911", "US")] {
        match quote(&svc, account, typed, Some(region)).await {
            QuoteOutcome::Blocked { reason } => {
                assert!(
                    reason.contains("cannot place emergency calls"),
                    "{typed}: {reason}"
                )
            }
            other => panic!("{typed} in {region} must be refused: {other:?}"),
        }
    }
    match quote(&svc, account, "+33 1 23 45 67 89", None).await {
        QuoteOutcome::Blocked { reason } => assert_eq!(reason, "calls to France are paused"),
        other => panic!("France is on the admin's list: {other:?}"),
    }
    match quote(&svc, account, "+81 3 1234 5678", None).await {
        QuoteOutcome::NoRate { number } => assert_eq!(number.digits(), "81312345678"),
        other => panic!("Japan is not in the deck: {other:?}"),
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM quotes")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "refusals store no quote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_quote_holds_only_for_its_account_its_number_and_its_time() {
    let db = TestDb::create().await.expect("db");
    let (svc, account) = priced(&db, RatesConfig::default()).await;
    let (number, q) = quoted(quote(&svc, account, "+1 212 555 0100", None).await);
    let now = Utc::now();
    let found = svc
        .quote_for_call(q.id, account, &number, now)
        .await
        .expect("honoured");
    assert_eq!(found, q);
    let other = E164::parse("+1 212 555 0199", None).expect("number");
    let err = svc
        .quote_for_call(q.id, account, &other, now)
        .await
        .expect_err("other number");
    assert!(err.to_string().contains("another number"), "{err}");
    let err = svc
        .quote_for_call(q.id, AccountId::new_v7(), &number, now)
        .await
        .expect_err("other account");
    assert!(err.to_string().contains("another account"), "{err}");
    let later = now + chrono::Duration::seconds(601);
    let err = svc
        .quote_for_call(q.id, account, &number, later)
        .await
        .expect_err("expired");
    assert!(err.to_string().contains("expired"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_price_list_is_served_and_follows_activation() {
    let db = TestDb::create().await.expect("db");
    let config = Config {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        database_url: Some(Secret::new(db.url.clone())),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    let rates = app.state().rates.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let before = client
        .get(format!("{base}/api/rates?country=GB"))
        .send()
        .await
        .expect("answers");
    assert_eq!(before.status(), 503, "no deck yet");

    let status = import_by_app(&rates, CLEAN, &request("twilio-voice.csv", None))
        .await
        .expect("the app's job imports the deck");
    rates
        .activate(status.deck_id, admin(), false)
        .await
        .expect("activate");
    // serve's own runner and rate book pick the activation up.
    let body = ringledger_tests::eventually(Duration::from_secs(20), || async {
        let r = client
            .get(format!("{base}/api/rates?country=gb"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())?;
        r.json::<serde_json::Value>().await.ok()
    })
    .await
    .expect("price list after activation");
    let prefixes: Vec<&str> = body["rates"]
        .as_array()
        .expect("rates")
        .iter()
        .map(|r| r["prefix"].as_str().expect("prefix"))
        .collect();
    assert_eq!(prefixes, vec!["441", "442", "443", "447", "4477", "4478"]);
    // Default pricing: 0.014 * 1.3 = 0.0182 vs 0.014 + 0.002 = 0.016 -> 0.0182.
    assert_eq!(
        body["rates"][0]["rate_per_minute"],
        serde_json::json!({"amount": "0.018200", "currency": "USD"})
    );
    assert!(
        body["rates"][0].get("margin_per_minute").is_none(),
        "no margin in the public list"
    );

    let bad = client
        .get(format!("{base}/api/rates?country=GBR"))
        .send()
        .await
        .expect("answers");
    assert_eq!(bad.status(), 422);
    catch_up(&db.pool).await.expect("idempotent catch-up");
    stop_tx.send(()).expect("stop");
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
}
