//! Accounts and sign-in in a real browser: Debian's Chromium driven by playwright-core from
//! `tests/browser/auth.mjs`. This test starts what the script needs — its own database, its own
//! SMTP server (the mail catcher, storing into that database), and the app on port 0 pointed at
//! that SMTP server with a lockout after 3 bad passwords — then runs the script and fails with
//! its output if it fails. Chromium and node_modules are installed by scripts/test; without
//! them this test fails (set RINGLEDGER_SKIP_BROWSER_TESTS=1 to skip it on a machine without a
//! browser; CI never sets it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use ringledger_api::auth::AuthConfig;
use ringledger_api::config::{Config, Secret};
use ringledger_api::mail::catcher::{CatcherLimits, MailCatcher};
use ringledger_api::startup::Application;
use ringledger_tests::TestDb;

const LOCKOUT_THRESHOLD: i32 = 3;
/// The whole script: three flows and a phone check, each a few seconds in a warm browser.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn chromium() -> PathBuf {
    std::env::var_os("RINGLEDGER_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// What is missing to run the browser test, if anything.
fn missing_prerequisites(root: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !chromium().exists() {
        missing.push(format!("{} (the `chromium` package)", chromium().display()));
    }
    if !root.join("node_modules/playwright-core/package.json").exists() {
        missing.push("node_modules/playwright-core (`npm ci`)".to_owned());
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        missing.push("node (Node.js 20 or later)".to_owned());
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_totp_lockout_and_reset_in_chromium() {
    let root = repo_root();
    let missing = missing_prerequisites(&root);
    if !missing.is_empty() {
        let skip = std::env::var("RINGLEDGER_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1");
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        if skip && !ci {
            eprintln!(
                "browser test SKIPPED (RINGLEDGER_SKIP_BROWSER_TESTS=1); missing: {}",
                missing.join(", ")
            );
            return;
        }
        panic!(
            "the browser test needs {}; run scripts/test, which installs Chromium and runs npm ci \
             (or set RINGLEDGER_SKIP_BROWSER_TESTS=1 to skip it locally, never in CI)",
            missing.join(" and ")
        );
    }

    let db = TestDb::create().await.expect("test database");
    let catcher = MailCatcher::start(
        db.pool.clone(),
        "127.0.0.1:0".parse().unwrap(),
        CatcherLimits::default(),
    )
    .await
    .expect("the test's SMTP server starts");
    let config = Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(Secret::new(db.url.clone())),
        database_max_connections: 12,
        smtp_url: Some(catcher.smtp_url()),
        auth: AuthConfig {
            max_failed_attempts: LOCKOUT_THRESHOLD,
            ..AuthConfig::default()
        },
        ..Config::default()
    };
    let app = Application::build(config).await.expect("application builds");
    assert!(
        app.mail_catcher().is_none(),
        "the app sends to the test's SMTP server, not its own"
    );
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let artifacts = std::env::temp_dir().join(format!("ringledger-browser-{}", db.name));
    std::fs::create_dir_all(&artifacts).expect("artifacts dir");
    let started = Instant::now();
    let child = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/auth.mjs"))
        .current_dir(&root)
        .env("BASE_URL", &base)
        .env("CHROMIUM", chromium())
        .env("LOCKOUT_THRESHOLD", LOCKOUT_THRESHOLD.to_string())
        .env("ARTIFACTS_DIR", &artifacts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tests/browser/auth.mjs did not finish within {SCRIPT_TIMEOUT:?}"))
        .expect("node ran");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!(
        "--- tests/browser/auth.mjs ({:.1} s) ---\n{stdout}\n{stderr}",
        elapsed.as_secs_f64()
    );

    // The mail the script followed really went through SMTP into the test's catcher.
    let received: i64 = sqlx::query_scalar("SELECT count(*) FROM dev_mailbox")
        .fetch_one(&db.pool)
        .await
        .unwrap_or(0);
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    catcher.stop().await;

    assert!(
        output.status.success(),
        "the browser test failed ({}); output above, screenshot in {}",
        output.status,
        artifacts.display()
    );
    assert!(
        received >= 5,
        "3 confirmations, an unlock and a reset went through SMTP; got {received}"
    );
    let _ = std::fs::remove_dir_all(&artifacts);
}
