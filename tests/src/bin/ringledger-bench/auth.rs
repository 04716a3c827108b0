//! `ringledger-bench auth`: sign-ins per second through the whole web stack (GET the sign-in
//! form for a session and its CSRF token, POST the form: CSRF check, argon2id verification at
//! the documented parameters, session rotation written to Postgres, 303) with `clients`
//! concurrent clients and rate limits off, against a baseline measured in the same run: bare
//! argon2id verifications per second on as many OS threads. Argon2 is meant to dominate a
//! sign-in; the ratio says how much the rest of the stack costs on top.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ringledger_api::auth::passwords::{self, Password};
use ringledger_api::auth::rate_limit::RateLimitConfig;
use ringledger_api::auth::AuthConfig;
use ringledger_api::config::{Config, Secret};
use ringledger_api::startup::Application;
use serde_json::json;

const PASSWORD: &str = "benchmark passphrase 2026";

pub async fn run(url: &str, duration: Duration, clients: usize) -> anyhow::Result<()> {
    let hash = passwords::hash_blocking(&Password::new(PASSWORD))?;
    let argon2_per_s = argon2_baseline(&hash, duration, clients)?;
    println!(
        "argon2id verify (m={} KiB, t={}, p={}), {clients} threads: {argon2_per_s:.1}/s",
        passwords::MEMORY_KIB,
        passwords::ITERATIONS,
        passwords::PARALLELISM
    );

    let config = Config {
        http_addr: "127.0.0.1:0".parse()?,
        database_url: Some(Secret::new(url.to_owned())),
        database_max_connections: 48,
        auth: AuthConfig {
            max_failed_attempts: i32::MAX,
            rate_limit: RateLimitConfig {
                enabled: false,
                ..RateLimitConfig::default()
            },
            ..AuthConfig::default()
        },
        ..Config::default()
    };
    let app = Application::build(config).await?;
    let base = format!("http://{}", app.local_addr());
    let pool = app.state().pool.clone();
    for i in 0..clients {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash, confirmed_at, account_opened_at)
             VALUES ($1, $2, $3, now(), now())",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(format!("bench{i}@example.com"))
        .bind(&hash)
        .execute(&pool)
        .await?;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));

    // Warm-up: one sign-in per client, not counted.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(clients)
        .build()?;
    for i in 0..clients {
        sign_in(&client, &base, i).await.context("warm-up sign-in")?;
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let (client, base, stop, done, failed) = (
            client.clone(),
            base.clone(),
            stop.clone(),
            done.clone(),
            failed.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match sign_in(&client, &base, i).await {
                    Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let signins = done.load(Ordering::Relaxed);
    let signins_per_s = signins as f64 / elapsed;
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    let ratio = signins_per_s / argon2_per_s;
    println!(
        "sign-ins over HTTP, {clients} clients: {signins} in {elapsed:.1} s = {signins_per_s:.1}/s ({} failed)",
        failed.load(Ordering::Relaxed)
    );
    println!("ratio: {ratio:.3} (target >= 0.8)");
    println!(
        "{}",
        json!({
            "suite": "auth",
            "clients": clients,
            "seconds": duration.as_secs(),
            "argon2": {"m_kib": passwords::MEMORY_KIB, "t": passwords::ITERATIONS, "p": passwords::PARALLELISM},
            "failed": failed.load(Ordering::Relaxed),
            "signins_per_s": (signins_per_s * 10.0).round() / 10.0,
            "argon2_per_s": (argon2_per_s * 10.0).round() / 10.0,
            "ratio": (ratio * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// Bare argon2id verifications per second on `threads` OS threads for `duration`.
fn argon2_baseline(hash: &str, duration: Duration, threads: usize) -> anyhow::Result<f64> {
    let count = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (count, hash) = (count.clone(), hash.to_owned());
            std::thread::spawn(move || {
                let password = Password::new(PASSWORD);
                while started.elapsed() < duration {
                    assert!(passwords::verify_blocking(&hash, &password));
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("a baseline thread panicked"))?;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// One full sign-in: GET the form (new session, CSRF token), POST it, expect 303 to /account.
async fn sign_in(client: &reqwest::Client, base: &str, i: usize) -> anyhow::Result<()> {
    let form = client.get(format!("{base}/signin")).send().await?;
    let cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
        .context("no session cookie")?;
    let body = form.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let at = body.find(marker).context("no CSRF token")? + marker.len();
    let token: String = body[at..].chars().take_while(|c| *c != '"').collect();
    let email = format!("bench{i}@example.com");
    let res = client
        .post(format!("{base}/signin"))
        .header("cookie", cookie)
        .form(&[
            ("csrf_token", token.as_str()),
            ("email", &email),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        res.status() == 303 && res.headers().get("location").is_some_and(|l| l == "/account"),
        "sign-in answered {}",
        res.status()
    );
    Ok(())
}
