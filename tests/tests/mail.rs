//! Mail end to end over real TCP: lettre delivering to the development mail catcher (a real
//! SMTP server) which stores the message in `dev_mailbox`; the `mail` job queue delivering
//! through it; a failing SMTP server making a job retry and then land on the dead-letter list;
//! `/dev/mailbox` served in development and a 404 in production.

use std::time::Duration;

use ringledger_api::config::{Config, Mode, Secret};
use ringledger_api::mail::catcher::{CatcherLimits, MailCatcher};
use ringledger_api::mail::{self, mailbox, MailQueueSettings, Mailer, OutgoingEmail};
use ringledger_api::startup::Application;
use ringledger_projections::jobs::{Backoff, JobQueue};
use ringledger_tests::{eventually, TestDb};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const FROM: &str = "RingLedger <no-reply@ringledger.test>";

fn email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.to_owned(),
        subject: "Confirm your email — café".to_owned(),
        // A line starting with a dot exercises dot-stuffing on both sides.
        text: "Open https://app.test/confirm?token=abc123 to confirm.\n.a line with a leading dot\n"
            .to_owned(),
        html: "<p><a href=\"https://app.test/confirm?token=abc123\">Confirm</a></p>".to_owned(),
    }
}

async fn catcher(db: &TestDb) -> MailCatcher {
    MailCatcher::start(
        db.pool.clone(),
        "127.0.0.1:0".parse().unwrap(),
        CatcherLimits::default(),
    )
    .await
    .expect("catcher starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catcher_receives_what_lettre_sends() {
    let db = TestDb::create().await.expect("test database");
    let catcher = catcher(&db).await;
    let mailer = Mailer::new(&catcher.smtp_url(), None, FROM).unwrap();
    mailer.send(&email("alice@example.com")).await.expect("sent");

    let got = mailbox::latest_to(&db.pool, "alice@example.com")
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(got.subject, "Confirm your email — café");
    assert_eq!(got.mail_from, "no-reply@ringledger.test");
    let text = got.text_body.expect("text part");
    assert!(text.contains("https://app.test/confirm?token=abc123"), "{text}");
    assert!(
        text.contains("\n.a line with a leading dot"),
        "dot-unstuffed once: {text:?}"
    );
    assert!(got
        .html_body
        .expect("html part")
        .contains("href=\"https://app.test/confirm?token=abc123\""));
    catcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catcher_refuses_a_message_over_its_size_limit() {
    let db = TestDb::create().await.expect("test database");
    let limits = CatcherLimits {
        max_message_bytes: 2_000,
        ..CatcherLimits::default()
    };
    let catcher = MailCatcher::start(db.pool.clone(), "127.0.0.1:0".parse().unwrap(), limits)
        .await
        .unwrap();
    let mailer = Mailer::new(&catcher.smtp_url(), None, FROM).unwrap();
    let mut big = email("bob@example.com");
    big.text = "x".repeat(5_000);
    let err = mailer.send(&big).await.expect_err("refused");
    assert!(err.is_permanent(), "552 is permanent: {err}");
    assert!(mailbox::latest_to(&db.pool, "bob@example.com")
        .await
        .unwrap()
        .is_none());
    mailer
        .send(&email("bob@example.com"))
        .await
        .expect("a small one still goes through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_job_is_delivered_to_the_catcher() {
    let db = TestDb::create().await.expect("test database");
    let catcher = catcher(&db).await;
    let mailer = Mailer::new(&catcher.smtp_url(), None, FROM).unwrap();
    let jobs = JobQueue::new(db.pool.clone());
    let pool = mail::mail_worker_pool(jobs, mailer, MailQueueSettings::default()).unwrap();

    mail::enqueue(&db.pool, &email("carol@example.com"))
        .await
        .unwrap();
    let mut tx = db.pool.begin().await.unwrap();
    mail::enqueue_in_tx(&mut tx, &email("dave@example.com"))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    for to in ["carol@example.com", "dave@example.com"] {
        let arrived = eventually(Duration::from_secs(20), || async {
            mailbox::latest_to(&db.pool, to).await.ok().flatten()
        })
        .await;
        assert!(arrived.is_ok(), "mail to {to} arrived");
    }
    let done = eventually(Duration::from_secs(10), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE queue = 'mail' AND status = 'done'")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (n == 2).then_some(n)
    })
    .await;
    assert!(done.is_ok(), "both jobs are done");
    pool.shutdown(Duration::from_secs(5)).await;
    catcher.stop().await;
}

/// An SMTP server that is always "temporarily unavailable" (421 on connect), counting connections.
async fn failing_smtp_server() -> (String, tokio::sync::mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (seen, connections) = tokio::sync::mpsc::channel(100);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = seen.try_send(());
            let (read, mut write) = stream.into_split();
            let _ = write
                .write_all(b"421 4.3.2 service not available, try later\r\n")
                .await;
            let mut line = String::new();
            let _ = BufReader::new(read).read_line(&mut line).await;
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_smtp_server_means_retries_then_a_dead_letter() {
    let db = TestDb::create().await.expect("test database");
    let (url, mut connections) = failing_smtp_server().await;
    let mailer = Mailer::new(&url, None, FROM).unwrap();
    let settings = MailQueueSettings {
        concurrency: 1,
        backoff: Backoff {
            base_ms: 100,
            cap_ms: 200,
            jitter_percent: 0,
        },
        poll_ms: 50,
    };
    let jobs = JobQueue::new(db.pool.clone());
    let job = mail::mail_job(&email("erin@example.com"))
        .unwrap()
        .with_max_attempts(3);
    let id = jobs.enqueue(&job).await.unwrap().id;
    let pool = mail::mail_worker_pool(jobs.clone(), mailer, settings).unwrap();

    let dead = eventually(Duration::from_secs(30), || async {
        let snap = jobs.snapshot(id).await.ok()??;
        (snap.status.as_str() == "dead").then_some(snap)
    })
    .await
    .expect("the job is dead-lettered");
    assert_eq!(dead.attempts, 3, "tried max_attempts times");
    let error = dead.last_error.unwrap_or_default();
    assert!(error.contains("SMTP") || error.contains("421"), "{error}");
    assert!(!error.contains("erin@"), "no address in the error: {error}");
    let mut seen = 0;
    while connections.try_recv().is_ok() {
        seen += 1;
    }
    assert!(seen >= 3, "one connection per attempt at least, saw {seen}");
    let letters = jobs.dead_letters(10).await.unwrap();
    assert!(letters.iter().any(|d| d.id == id));
    pool.shutdown(Duration::from_secs(5)).await;
}

async fn start_app(db: &TestDb, mode: Mode) -> (String, tokio::sync::oneshot::Sender<()>) {
    let config = Config {
        mode,
        http_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(Secret::new(db.url.clone())),
        database_max_connections: 4,
        // Production insists on an SMTP server; nothing is sent in this test.
        smtp_url: (mode == Mode::Production).then(|| "smtp://127.0.0.1:9".to_owned()),
        totp_encryption_key: (mode == Mode::Production)
            .then(|| Secret::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
        ..Config::default()
    };
    let app = Application::build(config).await.expect("application builds");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_mailbox_is_served_in_development_only() {
    let db = TestDb::create().await.expect("test database");
    let catcher = catcher(&db).await;
    Mailer::new(&catcher.smtp_url(), None, FROM)
        .unwrap()
        .send(&email("frank@example.com"))
        .await
        .unwrap();
    let id = mailbox::latest_to(&db.pool, "frank@example.com")
        .await
        .unwrap()
        .unwrap()
        .id;
    let client = reqwest::Client::new();

    let (base, stop) = start_app(&db, Mode::Development).await;
    let list = client.get(format!("{base}/dev/mailbox")).send().await.unwrap();
    assert_eq!(list.status(), 200);
    let list = list.text().await.unwrap();
    assert!(
        list.contains("frank@example.com") && list.contains("Confirm your email"),
        "{list}"
    );
    let one = client
        .get(format!("{base}/dev/mailbox/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        one.contains("<a href=\"https://app.test/confirm?token=abc123\" data-testid=\"mail-link\">"),
        "the text part's link is clickable: {one}"
    );
    assert!(
        !one.contains("<p><a href"),
        "the HTML part is shown as text, never rendered"
    );
    let missing = client
        .get(format!("{base}/dev/mailbox/999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let css = client.get(format!("{base}/assets/app.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let etag = css.headers()["etag"].clone();
    let again = client
        .get(format!("{base}/assets/app.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    for bad in [
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
    ] {
        let res = client.get(format!("{base}{bad}")).send().await.unwrap();
        assert_eq!(res.status(), 404, "{bad}");
    }
    let _ = stop.send(());

    let (base, stop) = start_app(&db, Mode::Production).await;
    let res = client.get(format!("{base}/dev/mailbox")).send().await.unwrap();
    assert_eq!(res.status(), 404, "no mailbox in production");
    let res = client
        .get(format!("{base}/dev/mailbox/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let _ = stop.send(());
    catcher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mailbox_keeps_only_the_newest_messages() {
    let db = TestDb::create().await.expect("test database");
    let extra = 5;
    let rcpt = vec!["gina@example.com".to_owned()];
    let mut last = 0;
    for n in 0..mailbox::KEEP_MESSAGES + extra {
        let raw = format!("Subject: message {n}\r\n\r\nbody {n}\r\n");
        last = mailbox::store(&db.pool, "app@example.com", &rcpt, raw.as_bytes())
            .await
            .unwrap();
    }
    let (count, oldest): (i64, i64) = sqlx::query_as("SELECT count(*), min(id) FROM dev_mailbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(count, mailbox::KEEP_MESSAGES);
    assert_eq!(
        oldest,
        last - mailbox::KEEP_MESSAGES + 1,
        "the oldest were deleted"
    );
    let newest = mailbox::latest_to(&db.pool, "gina@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        newest.subject,
        format!("message {}", mailbox::KEEP_MESSAGES + extra - 1)
    );
}

/// An SMTP server that accepts the session but refuses every recipient with a 550.
async fn refusing_smtp_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 refuser ESMTP\r\n").await;
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250 refuser\r\n",
                        "RCPT" => b"550 5.1.1 <henry@example.com>: no such user\r\n",
                        "QUIT" => b"221 bye\r\n",
                        _ => b"250 OK\r\n",
                    };
                    if write.write_all(reply).await.is_err() || verb == "QUIT" {
                        break;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_dead_lettered_without_retries() {
    let db = TestDb::create().await.expect("test database");
    let mailer = Mailer::new(&refusing_smtp_server().await, None, FROM).unwrap();
    let jobs = JobQueue::new(db.pool.clone());
    let id = jobs
        .enqueue(&mail::mail_job(&email("henry@example.com")).unwrap())
        .await
        .unwrap()
        .id;
    let settings = MailQueueSettings {
        poll_ms: 50,
        ..MailQueueSettings::default()
    };
    let pool = mail::mail_worker_pool(jobs.clone(), mailer, settings).unwrap();
    let dead = eventually(Duration::from_secs(20), || async {
        let snap = jobs.snapshot(id).await.ok()??;
        (snap.status.as_str() == "dead").then_some(snap)
    })
    .await
    .expect("dead-lettered");
    assert_eq!(dead.attempts, 1, "a 5xx is not retried");
    let error = dead.last_error.unwrap_or_default();
    assert!(error.contains("refused") && error.contains("550"), "{error}");
    assert!(
        error.contains("h***@example.com") && !error.contains("henry@"),
        "masked: {error}"
    );
    pool.shutdown(Duration::from_secs(5)).await;
}
