//! The api is killed with SIGKILL while calls are in progress, and restarted: the real
//! `ringledger serve` binary on a database of its own, two simulated media nodes with calls on
//! one-second ticks. While it is down the nodes retry and, once a grant expires, hang up and
//! keep retrying `stop`. After the restart each call either goes on (its reports are accepted)
//! or is swept; money is conserved (every Account event balances, each account holds what it
//! was given less what its calls were charged), no reservation stays open, every call is
//! over, and no call cost the house more than one grant.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringledger_tests::loadgen::{self, check, End, Options, Run, Secrets, Target};
use ringledger_tests::TestDb;

const DECK: &[u8] = include_bytes!("../fixtures/rates/twilio-voice.csv");

/// The `ringledger` binary of this build, built if needed (`cargo test -p ringledger-tests`
/// alone does not build another package's binaries). Built exactly as `scripts/dev` builds it
/// (both binaries, so one feature resolution and one build of the dependencies serve both).
fn ringledger_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "ringledger-api", "--bin", "ringledger"])
        .args(["-p", "ringledger-media", "--bin", "ringledger-media"])
        .args(if dir.ends_with("release") {
            vec!["--release"]
        } else {
            vec![]
        })
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("CARGO_TARGET_DIR", dir.parent().expect("target root"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the ringledger binary failed");
    let binary = dir.join("ringledger");
    assert!(binary.is_file(), "no {}", binary.display());
    binary
}

struct Serve {
    child: Child,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(
    binary: &std::path::Path,
    db: &TestDb,
    port: u16,
    secrets: &Secrets,
    var: &std::path::Path,
) -> Serve {
    let child = Command::new(binary)
        .arg("serve")
        .current_dir(var)
        .env_remove("RINGLEDGER_CONFIG")
        .env("DATABASE_URL", &db.url)
        .env("RINGLEDGER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("RINGLEDGER_VAR_DIR", var)
        .env("RINGLEDGER_MEDIA_SECRET", secrets.media.as_ref())
        .env("RINGLEDGER_CALL_TOKEN_SECRET", secrets.call_token.as_ref())
        .env("RINGLEDGER_CALLS__POLICY__INTERIM_SECONDS", "1")
        .env("RINGLEDGER_CALLS__POLICY__GRANT_SECONDS", "8")
        .env("RINGLEDGER_CALLS__POLICY__REGRANT_LEAD_SECONDS", "3")
        .env("RINGLEDGER_CALLS__POLICY__VALIDITY_SECONDS", "3")
        .env("RINGLEDGER_CALLS__LIMITS__MAX_RING_SECONDS", "3")
        .env("RINGLEDGER_CALLS__LIMITS__MAX_CONCURRENT_CALLS", "20")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ringledger serve starts");
    Serve { child }
}

async fn ready(base: &str) {
    let http = reqwest::Client::new();
    ringledger_tests::eventually(Duration::from_secs(60), || async {
        let r = http.get(format!("{base}/readyz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await
    .expect("ringledger serve became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_continue_or_are_swept_after_the_api_is_killed() {
    let binary = ringledger_binary();
    let db = TestDb::create().await.expect("db");
    let rates = ringledger_tests::rates::service(db.pool.clone());
    let request = ringledger_tests::rates::request("twilio-voice.csv", None);
    let status = ringledger_tests::rates::import(&rates, DECK, &request)
        .await
        .expect("import");
    ringledger_tests::rates::activate(&rates, &status, false)
        .await
        .expect("activate");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let var = std::env::temp_dir().join(format!("rl-kill-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&var).expect("var dir");
    let secrets = Secrets::random();
    let base = format!("http://127.0.0.1:{port}");

    let mut api = serve(&binary, &db, port, &secrets, &var);
    ready(&base).await;
    let target = Arc::new(
        Target::remote(&base, &db.url, secrets.clone())
            .await
            .expect("target"),
    );
    let options = Options {
        nodes: 2,
        calls_per_node: 6,
        duration: 14,
        tick: 1,
        accounts: 4,
        dry_share: 0.0,
        dead_nodes: 0,
        seed: 5,
        run_seconds: 0,
        start_rate: 20,
        calm: false,
        validity_seconds: 3,
        grant_seconds: 8,
        regrant_lead_seconds: 3,
        max_ring_seconds: 3,
        pool_size: 16,
        no_verify: false,
        replay_bin: None,
    };
    let mut run = Run::prepare(target.clone(), options.clone())
        .await
        .expect("prepare");
    run.set_active(12);
    let stats = run.stats.clone();
    ringledger_tests::eventually(Duration::from_secs(60), || async {
        (stats.interims.get() >= 20 && stats.live() >= 6).then_some(())
    })
    .await
    .expect("calls in progress");

    // kill -9 with calls in progress; down long enough for some grants to expire.
    let live_at_kill = stats.live();
    api.child.kill().expect("SIGKILL ringledger serve");
    api.child.wait().expect("reaped");
    let interims_at_kill = stats.interims.get();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let _api = serve(&binary, &db, port, &secrets, &var);
    ready(&base).await;
    let restarted = Instant::now();
    // Reports are accepted again after the restart.
    ringledger_tests::eventually(Duration::from_secs(60), || async {
        (stats.interims.get() >= interims_at_kill + 10).then_some(())
    })
    .await
    .expect("reports accepted after the restart");
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(restarted.elapsed())).await;

    let (records, parts) = run.finish().await.expect("finish");
    let accounts: Vec<_> = parts.funded.keys().copied().collect();
    let live = loadgen::wait_until_over(&db.pool, &records, &accounts, Duration::from_secs(90))
        .await
        .expect("wait");
    assert_eq!(live, 0, "calls still live after the restart and the sweeper");
    let report = check::run(
        &db.pool,
        &db.url,
        &records,
        &parts.funded,
        &check::Verify::Library,
    )
    .await
    .expect("checks run");
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
    assert!(
        live_at_kill >= 6,
        "only {live_at_kill} calls were live at the kill"
    );
    for r in records.iter().filter(|r| r.started) {
        assert!(
            matches!(r.end, End::Stopped(_) | End::Over | End::Failed),
            "a call neither went on nor was swept: {r:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&var);
}
