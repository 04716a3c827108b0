//! Buying credit in a real browser: Debian's Chromium driven by playwright-core from
//! `tests/browser/checkout.mjs`, against the app and the Stripe test double (`stripe-sim`),
//! which delivers its signed webhooks to the app's `POST /webhooks/stripe`.
//!
//! `buy_ten_in_chromium_and_see_the_credit` is the browser test: sign in, buy the
//! 10.00 USD tier, the decline card refused on the double's page, the success card, the success
//! page saying "processing" and then showing 10.00 USD without a reload (the webhook credited
//! it), and a purchase paid only with the decline card crediting nothing. It then checks that
//! exactly one `checkout.session.completed` (for the paid session, with the contract metadata)
//! was sent, signed, to the app's webhook URL and accepted by the app.
//!
//! Chromium and node_modules are installed by scripts/test (RINGLEDGER_SKIP_BROWSER_TESTS=1 skips
//! where there is no browser; CI never sets it).

mod auth_support;
mod stripe_support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use auth_support::{TestApp, PASSWORD};
use ringledger_api::auth::AuthConfig;
use ringledger_api::config::Secret;
use stripe_support::{start_sim, SECRET_KEY, WEBHOOK_SECRET};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> PathBuf {
    std::env::var_os("RINGLEDGER_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// False (after saying why) when the browser is missing and skipping is allowed.
fn prerequisites() -> bool {
    let root = repo_root();
    let mut missing = Vec::new();
    if !chromium().exists() {
        missing.push("chromium");
    }
    if !root.join("node_modules/playwright-core/package.json").exists() {
        missing.push("node_modules/playwright-core (npm ci)");
    }
    if missing.is_empty() {
        return true;
    }
    let skip = std::env::var("RINGLEDGER_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    assert!(
        skip && !ci,
        "the browser test needs {}; run scripts/test (or set RINGLEDGER_SKIP_BROWSER_TESTS=1 locally)",
        missing.join(" and ")
    );
    eprintln!("browser test SKIPPED; missing: {}", missing.join(", "));
    false
}

async fn run(expect_credit: bool) {
    if !prerequisites() {
        return;
    }
    let sim = start_sim(None).await;
    let sim_url = sim.base_url().to_owned();
    let app = TestApp::start_with(AuthConfig::default(), |c| {
        c.stripe_api_base = sim_url.clone();
        c.stripe_secret_key = Some(Secret::new(SECRET_KEY));
        c.stripe_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    })
    .await;
    let webhook_url = format!("{}/webhooks/stripe", app.base);
    sim.set_webhook_url(&webhook_url);
    let email = "browser-buyer@example.com";
    app.confirmed_user(email).await;

    let artifacts = std::env::temp_dir().join(format!("ringledger-browser-{}", app.db.name));
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let child = tokio::process::Command::new("node")
        .arg(repo_root().join("tests/browser/checkout.mjs"))
        .current_dir(repo_root())
        .env("BASE_URL", &app.base)
        .env("SIM_URL", &sim_url)
        .env("EMAIL", email)
        .env("PASSWORD", PASSWORD)
        .env("CHROMIUM", chromium())
        .env("EXPECT_CREDIT", if expect_credit { "1" } else { "0" })
        .env("ARTIFACTS_DIR", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .expect("tests/browser/checkout.mjs finishes in time")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!(
        "--- tests/browser/checkout.mjs ---\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser test failed; output above, screenshot in {}",
        artifacts.display()
    );

    // The double sent one checkout.session.completed (signed as stripe_sim.rs checks), for the
    // paid session, to the app's webhook URL, and the app answered it (2xx once the webhook is built).
    let paid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SUCCESS_PAGE "))
        .and_then(|url| url.split("session_id=").nth(1))
        .expect("the script names the success page")
        .to_owned();
    let events = ringledger_tests::eventually(Duration::from_secs(20), || async {
        let events = sim.events();
        let answered = events
            .iter()
            .filter(|e| e.kind == "checkout.session.completed")
            .all(|e| e.attempts.iter().any(|a| a.status.is_some()));
        (answered && !events.is_empty()).then_some(events)
    })
    .await
    .expect("the double delivered the completed session to the app");
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "checkout.session.completed")
        .collect();
    assert_eq!(
        completed.len(),
        1,
        "the declined attempts completed nothing: {events:?}"
    );
    let event = completed[0];
    assert_eq!(event.object_id, paid);
    let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    let user_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let meta = &body["data"]["object"]["metadata"];
    assert_eq!(meta["account_id"], user_id.to_string().as_str());
    assert_eq!(
        (meta["tier"].as_str(), meta["bonus_bps"].as_str()),
        (Some("10"), Some("0"))
    );
    let statuses: Vec<Option<u16>> = event.attempts.iter().map(|a| a.status).collect();
    println!("deliveries of {} to {webhook_url}: {statuses:?}", event.id);
    if expect_credit {
        assert!(event.delivered(), "the app accepted the webhook: {statuses:?}");
    }
    app.stop().await;
    sim.stop().await;
    let _ = std::fs::remove_dir_all(&artifacts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buy_ten_in_chromium_and_see_the_credit() {
    run(true).await;
}
