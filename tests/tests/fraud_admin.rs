//! `/admin/fraud`: a customer gets 403 on every fraud page and action; an admin (with TOTP)
//! sees flags with their evidence and edits the high-risk list — seeded from the starter file,
//! changes only with the session's CSRF token, each change audited with its actor.

mod auth_support;

use auth_support::{testid, TestApp, PASSWORD};
use reqwest::StatusCode;
use ringledger_api::auth::passwords::Password;
use ringledger_api::auth::{totp, AuthConfig, Email};
use ringledger_tests::eventually;

async fn admin_browser(app: &TestApp) -> auth_support::Browser {
    let email = Email::parse("root@example.com").expect("email");
    app.auth
        .create_admin(&email, Password::new(PASSWORD))
        .await
        .expect("admin");
    let mut admin = app.browser();
    admin.sign_in("root@example.com", PASSWORD).await;
    let page = admin.get("/account/two-factor").await;
    let secret_b32 = testid(&page.body, "totp-secret").expect("the secret is shown");
    let secret = totp_rs::Secret::Encoded(secret_b32).to_bytes().expect("secret");
    let code = totp::current_code(&secret);
    let res = admin
        .submit("/account/two-factor", "/account/two-factor", &[("code", &code)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    admin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_see_flags_and_edit_the_high_risk_list() {
    let app = TestApp::start(AuthConfig::default()).await;
    let mut customer = app.confirmed_user("hal@example.com").await;
    customer.sign_in("hal@example.com", PASSWORD).await;
    for path in ["/admin/fraud", "/admin/fraud/ranges"] {
        assert_eq!(customer.get(path).await.status, StatusCode::FORBIDDEN, "{path}");
    }
    let page = customer.get("/account").await;
    let token = auth_support::csrf_in(&page.body).expect("csrf");
    let res = customer
        .post(
            "/admin/fraud/ranges",
            &[("csrf_token", &token), ("prefix", "882"), ("label", "x")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);

    let mut admin = admin_browser(&app).await;
    // The starter list is seeded when the app starts its background work.
    eventually(std::time::Duration::from_secs(30), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM fraud_risk_ranges")
            .fetch_one(&app.pool)
            .await
            .ok()?;
        (n > 0).then_some(())
    })
    .await
    .expect("the starter list is seeded");
    let page = admin.get("/admin/fraud/ranges").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("+979"), "{}", page.body);
    assert!(page.body.contains("International Premium Rate Service"));
    assert!(
        page.body.contains("ITU-T E.164 assigned country codes"),
        "its source is shown"
    );

    // Without the CSRF token: refused, nothing changes.
    let res = admin
        .post("/admin/fraud/ranges", &[("prefix", "+4477"), ("label", "test")])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Bad input: a clear error, the form kept.
    let res = admin
        .submit(
            "/admin/fraud/ranges",
            "/admin/fraud/ranges",
            &[("prefix", "44x"), ("label", "test")],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.body.contains("is not 1-15 digits"), "{}", res.body);
    let res = admin
        .submit(
            "/admin/fraud/ranges",
            "/admin/fraud/ranges",
            &[("prefix", "+44 77"), ("label", "test: Vodafone UK")],
        )
        .await;
    assert_eq!(res.location(), Some("/admin/fraud/ranges"), "{}", res.body);
    assert!(admin.get("/admin/fraud/ranges").await.body.contains("+4477"));
    let res = admin
        .submit(
            "/admin/fraud/ranges",
            "/admin/fraud/ranges/remove",
            &[("prefix", "979")],
        )
        .await;
    assert_eq!(res.location(), Some("/admin/fraud/ranges"));
    let body = admin.get("/admin/fraud/ranges").await.body;
    let list = body
        .split("data-testid=\"fraud-ranges\"")
        .nth(1)
        .and_then(|rest| rest.split("</table>").next())
        .expect("the list");
    assert!(!list.contains("+979") && list.contains("+4477"), "{list}");
    let audit: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT action, prefix, actor IS NOT NULL FROM fraud_risk_range_audit WHERE action <> 'seed' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("audit");
    assert_eq!(
        audit,
        vec![
            ("add".into(), "4477".into(), true),
            ("remove".into(), "979".into(), true)
        ]
    );

    // A flag as the signals projection records it is shown with its evidence and account.
    let version: i32 =
        sqlx::query_scalar("SELECT live_version FROM projection_versions WHERE projection = 'fraud_signals'")
            .fetch_one(&app.pool)
            .await
            .expect("signals version");
    let (call, account) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    sqlx::query(&format!(
        "INSERT INTO fraud_flags_v{version} (call_id, rule, account_id, placed_at, score, evidence, flagged_at, sequence)
         VALUES ($1, 'high_risk_range', $2, now(), 600, 'priced under prefix 4477 (GB), inside high-risk range +4477: test', now(), 9)"
    ))
    .bind(call)
    .bind(account)
    .execute(&app.pool)
    .await
    .expect("flag row");
    let page = admin.get("/admin/fraud").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("inside high-risk range +4477: test"),
        "{}",
        page.body
    );
    assert!(page.body.contains(&account.to_string()));
    let one = admin.get(&format!("/admin/fraud?account={account}")).await;
    assert!(one.body.contains(&call.to_string()));
    let none = admin
        .get(&format!("/admin/fraud?account={}", uuid::Uuid::now_v7()))
        .await;
    assert!(none.body.contains("No flagged call"));
    assert_eq!(
        admin.get("/admin/fraud?account=nope").await.status,
        StatusCode::BAD_REQUEST
    );
    app.stop().await;
}
