//! The call pages over HTTP with real sessions: a customer's own call history (masked numbers,
//! cause, cost), the admin's live calls with "End call" (a hangup reaches the media node and
//! the call ends with cause `admin`), the global call log's filters, freeze and ban from the
//! account page — and a signed-in customer gets 403 on every admin route, GET and POST.

#[path = "auth_support/mod.rs"]
mod auth_support;

use std::time::Duration;

use auth_support::{csrf_in, testid, Browser, PASSWORD};
use reqwest::StatusCode;
use ringledger_api::auth::passwords::Password;
use ringledger_api::auth::{totp, Email};
use ringledger_api::calls::CallsConfig;
use ringledger_api::ledger::Envelope;
use ringledger_domain::account::AccountCommand;
use ringledger_domain::{AccountId, CallId, GrantId};
use ringledger_tests::metering::{logged_end, start_app, usd, FakeNode, Metering};
use ringledger_tests::TestDb;
use serde_json::json;

fn browser(app: &Metering) -> Browser {
    Browser {
        base: app.base.clone(),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        cookie: None,
    }
}

/// Signs up, confirms and signs in `email`; returns the browser and the user's account.
async fn customer(app: &Metering, db: &TestDb, email: &str) -> (Browser, AccountId) {
    let mut b = browser(app);
    let res = b
        .submit("/signup", "/signup", &[("email", email), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let token = ringledger_tests::eventually(Duration::from_secs(10), || async {
        let payloads: Vec<String> =
            sqlx::query_scalar("SELECT payload::text FROM jobs WHERE queue = 'mail' ORDER BY id DESC")
                .fetch_all(&db.pool)
                .await
                .ok()?;
        payloads.into_iter().filter(|p| p.contains(email)).find_map(|p| {
            let start = p.find("/confirm?token=")? + "/confirm?token=".len();
            let token: String = p[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            (!token.is_empty()).then_some(token)
        })
    })
    .await
    .expect("confirmation email");
    assert_eq!(
        b.get(&format!("/confirm?token={token}")).await.location(),
        Some("/signin")
    );
    assert_eq!(b.sign_in(email, PASSWORD).await.location(), Some("/account"));
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(&db.pool)
        .await
        .expect("user");
    (b, AccountId(id))
}

/// An admin signed in with TOTP enrolled.
async fn admin(app: &Metering) -> Browser {
    let email = Email::parse("root@example.com").expect("email");
    app.auth
        .create_admin(&email, Password::new(PASSWORD))
        .await
        .expect("admin");
    let mut b = browser(app);
    b.sign_in("root@example.com", PASSWORD).await;
    let page = b.get("/account/two-factor").await;
    let secret_b32 = testid(&page.body, "totp-secret").expect("the secret is shown");
    let secret = totp_rs::Secret::Encoded(secret_b32).to_bytes().expect("base32");
    let code = totp::current_code(&secret);
    let res = b
        .submit("/account/two-factor", "/account/two-factor", &[("code", &code)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(b.get("/admin").await.status, StatusCode::OK);
    b
}

/// Gives `account` credit through the app's own account service (the app opened the
/// account, so its cache holds it) and waits until quotes see it.
async fn fund(app: &Metering, db: &TestDb, account: AccountId, micros: i64) {
    let accounts = &app.accounts;
    let grant = AccountCommand::GrantCredit {
        grant_id: GrantId::new_v7(),
        amount: usd(micros),
        promotion: "test".into(),
    };
    accounts
        .execute(account, Envelope::new(grant))
        .await
        .expect("credit");
    ringledger_tests::eventually(Duration::from_secs(30), || async {
        let seen: Option<i64> =
            sqlx::query_scalar("SELECT available_micros FROM balances WHERE account_id = $1")
                .bind(account.0)
                .fetch_optional(&db.pool)
                .await
                .ok()?;
        seen.filter(|a| *a >= micros)
    })
    .await
    .expect("balance projected");
}

async fn stop(app: &Metering, call: CallId, talk_ms: u64, cause: &str) {
    let body = json!({"call_id": call.to_string(), "seq": 5, "talk_ms": talk_ms, "cause": cause});
    let (status, ended) = app.post("stop", &body).await.expect("stop");
    assert_eq!(status, 200, "{ended}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_see_their_own_calls_masked_admins_end_and_filter_calls_and_nobody_else_gets_in() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let node = FakeNode::start().await.expect("node");
    app.register(&node.url).await.expect("register");
    let (mut cust, account) = customer(&app, &db, "carol@example.com").await;
    fund(&app, &db, account, 2_000_000).await;

    // A finished call shows on the customer's page, number masked.
    let (done, _) = app.answered_call(account).await.expect("call");
    stop(&app, done, 61_000, "callee_hangup").await;
    logged_end(&db, done).await.expect("logged");
    let page = cust.get("/account/calls").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(
        page.body.contains(&format!("data-call-id=\"{done}\"")),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("+4477••••••78"),
        "masked number: {}",
        page.body
    );
    assert!(!page.body.contains("447712345678"), "never the full number");
    assert_eq!(testid(&page.body, "call-cause").as_deref(), Some("callee hangup"));
    assert_eq!(
        testid(&page.body, "call-cost").map(|c| c.ends_with(" USD")),
        Some(true)
    );

    // Every admin route is closed to a customer, GET and POST (with a valid CSRF token).
    let token = csrf_in(&cust.get("/account").await.body).expect("csrf");
    for path in [
        "/admin/calls".to_owned(),
        "/admin/calls/log".to_owned(),
        format!("/admin/calls/log?account={account}"),
        format!("/admin/accounts/{account}"),
    ] {
        assert_eq!(cust.get(&path).await.status, StatusCode::FORBIDDEN, "GET {path}");
    }
    for path in [
        format!("/admin/calls/{done}/end"),
        format!("/admin/accounts/{account}/freeze"),
        format!("/admin/accounts/{account}/unfreeze"),
        format!("/admin/accounts/{account}/ban"),
    ] {
        let res = cust
            .post(
                &path,
                &[("csrf_token", &token), ("reason", "admin"), ("note", "x")],
            )
            .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "POST {path}");
    }
    let anonymous = browser(&app).get("/admin/calls").await;
    assert_eq!(anonymous.location(), Some("/signin"));

    // The admin sees the live call and ends it: the node gets the hangup, the call ends `admin`.
    let mut root = admin(&app).await;
    let (live, _) = app.answered_call(account).await.expect("live call");
    // The list reads the active-calls read model: poll until it has the call.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let page = loop {
        let page = browser_get(&mut root, "/admin/calls").await;
        if page.contains(&format!("data-call-id=\"{live}\"")) {
            break page;
        }
        assert!(std::time::Instant::now() < deadline, "the live call is listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(page.contains("+4477••••••78") && !page.contains("447712345678"));
    let token = csrf_in(&page).expect("csrf");
    let res = root
        .post(&format!("/admin/calls/{live}/end"), &[("csrf_token", &token)])
        .await;
    assert_eq!(res.location(), Some("/admin/calls"), "{}", res.body);
    let seen = node
        .hangup(live, Duration::from_secs(10))
        .await
        .expect("hangup at the node");
    assert_eq!(seen.body["reason"], "admin");
    // Without the CSRF token the button does nothing.
    let res = root.post(&format!("/admin/calls/{live}/end"), &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    stop(&app, live, 12_000, "hangup_requested").await;
    let (_, cause, _) = logged_end(&db, live).await.expect("logged");
    assert_eq!(cause, "admin");

    // The global log filters by cause, account and day.
    let by_cause = browser_get(&mut root, "/admin/calls/log?cause=admin").await;
    assert!(by_cause.contains(&format!("data-call-id=\"{live}\"")));
    assert!(!by_cause.contains(&format!("data-call-id=\"{done}\"")));
    let by_account = browser_get(&mut root, &format!("/admin/calls/log?account={account}")).await;
    assert!(
        by_account.contains(&format!("data-call-id=\"{live}\""))
            && by_account.contains(&format!("data-call-id=\"{done}\""))
    );
    let other = browser_get(
        &mut root,
        &format!("/admin/calls/log?account={}", uuid::Uuid::new_v4()),
    )
    .await;
    assert!(other.contains("data-testid=\"no-calls\""));
    let future = browser_get(&mut root, "/admin/calls/log?from=2999-01-01").await;
    assert!(future.contains("data-testid=\"no-calls\""));
    let bad = root.get("/admin/calls/log?account=not-a-uuid").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(testid(&bad.body, "filter-error").is_some_and(|e| e.contains("UUID")));

    // Freeze and ban from the account page.
    let page = browser_get(&mut root, &format!("/admin/accounts/{account}")).await;
    assert_eq!(testid(&page, "standing").as_deref(), Some("open"));
    let token = csrf_in(&page).expect("csrf");
    let res = root
        .post(
            &format!("/admin/accounts/{account}/freeze"),
            &[("csrf_token", &token), ("note", "checking")],
        )
        .await;
    assert_eq!(
        res.location(),
        Some(format!("/admin/accounts/{account}").as_str())
    );
    let page = browser_get(&mut root, &format!("/admin/accounts/{account}")).await;
    assert_eq!(testid(&page, "standing").as_deref(), Some("frozen (admin)"));
    let token = csrf_in(&page).expect("csrf");
    root.post(
        &format!("/admin/accounts/{account}/ban"),
        &[("csrf_token", &token), ("reason", "abuse")],
    )
    .await;
    let page = browser_get(&mut root, &format!("/admin/accounts/{account}")).await;
    assert_eq!(testid(&page, "standing").as_deref(), Some("banned"));
    let (_, status, denial) = app.start_call(account).await.expect("start");
    assert_eq!(
        (status, denial["code"].as_str()),
        (403, Some("account_banned")),
        "{denial}"
    );
}

async fn browser_get(b: &mut Browser, path: &str) -> String {
    let res = b.get(path).await;
    assert_eq!(res.status, StatusCode::OK, "GET {path}: {}", res.body);
    res.body
}
