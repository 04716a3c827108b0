//! The buy pages over HTTP with a real session, against the app and the Stripe test double:
//! CSRF on the buy form, a 303 to the session's payment page, one session per form however
//! often it is submitted, the contract metadata, terms versions kept per purchase, and the
//! success page's "processing" until the webhook side has credited the payment.

mod auth_support;
mod stripe_support;

use std::collections::BTreeMap;

use auth_support::*;
use reqwest::StatusCode;
use ringledger_api::auth::AuthConfig;
use ringledger_api::config::Secret;
use ringledger_api::stripe::client::StripeClient;
use ringledger_domain::topup::{Offers, OffersError};
use ringledger_domain::{ActorId, Currency, Money};
use stripe_support::*;

async fn app_with_sim() -> (TestApp, ringledger_api::stripe::sim::StripeSim, Endpoint) {
    let endpoint = Endpoint::start(vec![]).await;
    let sim = start_sim(Some(endpoint.url.clone())).await;
    let base = sim.base_url().to_owned();
    let app = TestApp::start_with(AuthConfig::default(), |c| {
        c.stripe_api_base = base;
        c.stripe_secret_key = Some(Secret::new(SECRET_KEY));
        c.stripe_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    })
    .await;
    (app, sim, endpoint)
}

fn nonce_in(body: &str) -> String {
    let at = body
        .find("name=\"nonce\" value=\"")
        .expect("the form has a nonce")
        + 20;
    body[at..].chars().take_while(|c| *c != '"').collect()
}

#[tokio::test]
async fn the_buy_form_needs_csrf_and_a_double_submit_makes_one_session() {
    let (app, sim, _endpoint) = app_with_sim().await;
    let mut b = app.confirmed_user("buyer@example.com").await;
    assert_eq!(
        b.sign_in("buyer@example.com", PASSWORD).await.location(),
        Some("/account")
    );
    let account = b.get("/account").await;
    assert!(
        account.body.contains("href=\"/account/credit\""),
        "the account page links the buy page"
    );

    let page = b.get("/account/credit").await;
    assert_eq!(page.status, StatusCode::OK);
    for price in ["5.00 USD", "10.00 USD", "25.00 USD", "50.00 USD"] {
        assert!(page.body.contains(&format!("Buy {price}")), "{price} is offered");
    }
    assert!(page.body.contains("1.25 USD bonus credit") && page.body.contains("5.00 USD bonus credit"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("form-action 'self' {}", sim.base_url())),
        "{csp}"
    );
    let nonce = nonce_in(&page.body);
    let csrf = csrf_in(&page.body).unwrap();

    let forged = b
        .post("/account/credit", &[("nonce", &nonce), ("tier", "10")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token, no session");
    let fields = [
        ("csrf_token", csrf.as_str()),
        ("nonce", nonce.as_str()),
        ("tier", "10"),
    ];
    let first = b.post("/account/credit", &fields).await;
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
    let url = first.location().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("{}/c/pay/cs_test_", sim.base_url())),
        "{url}"
    );
    let second = b.post("/account/credit", &fields).await;
    assert_eq!(
        second.location(),
        Some(url.as_str()),
        "a double submit reuses the session"
    );

    // The session carries the contract metadata and the tier's price in cents.
    let id = url.rsplit('/').next().unwrap();
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();
    let s = client.retrieve_checkout_session(id).await.unwrap();
    let user_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM users WHERE email = 'buyer@example.com'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        s.client_reference_id.as_deref(),
        Some(user_id.to_string().as_str())
    );
    assert_eq!(
        (s.amount_total, s.currency.as_deref()),
        (Some(1_000), Some("usd"))
    );
    let expected = [
        ("account_id", user_id.to_string()),
        ("tier", "10".to_owned()),
        ("terms_version", "1".to_owned()),
        ("bonus_bps", "0".to_owned()),
    ];
    for (k, v) in &expected {
        assert_eq!(s.metadata.get(*k), Some(v), "metadata[{k}]");
    }
    let intent_meta: BTreeMap<String, String> =
        expected.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert_eq!(
        sim_intent_metadata_after_paying(&url, &client, id).await,
        intent_meta
    );

    // A custom amount outside the range is refused on the page; inside it, a session.
    let page = b.get("/account/credit").await;
    let (csrf, nonce) = (csrf_in(&page.body).unwrap(), nonce_in(&page.body));
    let too_big = b
        .post(
            "/account/credit",
            &[
                ("csrf_token", &csrf),
                ("nonce", &nonce),
                ("tier", "custom"),
                ("amount", "900"),
            ],
        )
        .await;
    assert_eq!(too_big.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        too_big.body.contains("between 5.00 USD and 500.00 USD"),
        "{}",
        too_big.body
    );
    let custom = b
        .post(
            "/account/credit",
            &[
                ("csrf_token", &csrf),
                ("nonce", &nonce),
                ("tier", "custom"),
                ("amount", "12.34"),
            ],
        )
        .await;
    assert_eq!(custom.status, StatusCode::SEE_OTHER, "{}", custom.body);
    let s = client
        .retrieve_checkout_session(custom.location().unwrap().rsplit('/').next().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (s.amount_total, s.metadata["tier"].as_str()),
        (Some(1_234), "custom")
    );
    app.stop().await;
    sim.stop().await;
}

/// Pays the session by card and reads its payment intent's metadata from the double.
async fn sim_intent_metadata_after_paying(
    url: &str,
    client: &StripeClient,
    id: &str,
) -> BTreeMap<String, String> {
    let (status, _, _) = pay_by_card(url, "4242424242424242").await;
    assert_eq!(status, 303);
    let pi = client
        .retrieve_checkout_session(id)
        .await
        .unwrap()
        .payment_intent
        .unwrap();
    let base = client.base_url();
    let intent: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/v1/payment_intents/{pi}"))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(intent["metadata"].clone()).unwrap()
}

#[tokio::test]
async fn purchases_keep_the_terms_version_they_were_bought_under() {
    let (app, sim, _endpoint) = app_with_sim().await;
    let mut b = app.confirmed_user("terms@example.com").await;
    b.sign_in("terms@example.com", PASSWORD).await;
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();
    let before = buy_tier(&mut b, "25", &client).await;
    assert_eq!((before.0.as_str(), before.1.as_str()), ("1", "500"));

    // An admin drops the 25's bonus: a new version; the earlier session keeps version 1.
    let mut offers = Offers::defaults(Currency::USD).unwrap();
    offers.tiers[2].bonus_bps = 0;
    let admin = ActorId(uuid::Uuid::from_u128(0xAD));
    assert_eq!(app.checkout.set_offers(offers.clone(), admin).await.unwrap(), 2);
    let again = app.checkout.set_offers(offers, admin).await;
    assert!(matches!(
        again,
        Err(ringledger_api::checkout::CheckoutError::Offers(
            OffersError::Unchanged
        ))
    ));
    let after = buy_tier(&mut b, "25", &client).await;
    assert_eq!((after.0.as_str(), after.1.as_str()), ("2", "0"));
    let first = client.retrieve_checkout_session(&before.2).await.unwrap();
    assert_eq!(first.metadata["terms_version"], "1");
    assert_eq!(first.metadata["bonus_bps"], "500");
    assert_eq!(
        app.checkout.offers().await.unwrap().offers().unwrap().tiers[2].price,
        Money::from_units(25, Currency::USD).unwrap()
    );
    app.stop().await;
    sim.stop().await;
}

/// Buys `tier` from a fresh buy page; returns (terms_version, bonus_bps, session id).
async fn buy_tier(b: &mut Browser, tier: &str, client: &StripeClient) -> (String, String, String) {
    let page = b.get("/account/credit").await;
    let (csrf, nonce) = (csrf_in(&page.body).unwrap(), nonce_in(&page.body));
    let res = b
        .post(
            "/account/credit",
            &[("csrf_token", &csrf), ("nonce", &nonce), ("tier", tier)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let id = res.location().unwrap().rsplit('/').next().unwrap().to_owned();
    let s = client.retrieve_checkout_session(&id).await.unwrap();
    (
        s.metadata["terms_version"].clone(),
        s.metadata["bonus_bps"].clone(),
        id,
    )
}

#[tokio::test]
async fn the_success_page_shows_processing_and_only_its_owner_sees_it() {
    let (app, sim, endpoint) = app_with_sim().await;
    let mut b = app.confirmed_user("paid@example.com").await;
    b.sign_in("paid@example.com", PASSWORD).await;
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();
    let (_, _, id) = buy_tier(&mut b, "10", &client).await;
    let (status, location, _) =
        pay_by_card(&format!("{}/c/pay/{id}", sim.base_url()), "4242 4242 4242 4242").await;
    assert_eq!(status, 303);
    let location = location.unwrap();
    let path = location.strip_prefix(&app.base).expect("back to the app");
    assert_eq!(path, format!("/account/credit/success?session_id={id}"));

    let page = b.get(path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        testid(&page.body, "payment-status").as_deref(),
        Some("Payment received. Adding the credit to your balance…")
    );
    let pi = client
        .retrieve_checkout_session(&id)
        .await
        .unwrap()
        .payment_intent
        .unwrap();
    assert!(page.body.contains(&format!(
        "data-balance-poll-url-value=\"/account/balance.json?payment={pi}\""
    )));
    let json: serde_json::Value =
        serde_json::from_str(&b.get(&format!("/account/balance.json?payment={pi}")).await.body).unwrap();
    assert_eq!(
        json["payment"]["credited"], false,
        "nothing credits here but the webhook side"
    );

    // The signed checkout.session.completed went to the webhook endpoint.
    let got = endpoint.wait_for(1).await;
    assert!(got[0].verified);
    assert_eq!(got[0].event["data"]["object"]["id"], id.as_str());

    // Someone else's session is not found; the JSON needs a session.
    let mut other = app.confirmed_user("other@example.com").await;
    other.sign_in("other@example.com", PASSWORD).await;
    assert_eq!(other.get(path).await.status, StatusCode::NOT_FOUND);
    let anonymous = app.browser().get("/account/balance.json").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(b.get("/account/credit/cancel").await.status, StatusCode::OK);
    // The offers' admin page is for admins only.
    assert_eq!(b.get("/admin/top-up").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.browser().get("/admin/top-up").await.location(),
        Some("/signin")
    );
    app.stop().await;
    sim.stop().await;
}

#[tokio::test]
async fn admins_change_the_offers_as_a_new_version_on_a_csrf_protected_form() {
    use ringledger_api::auth::passwords::Password;
    use ringledger_api::auth::{totp, Email};

    let (app, sim, _endpoint) = app_with_sim().await;
    app.auth
        .create_admin(
            &Email::parse("boss@example.com").unwrap(),
            Password::new(PASSWORD),
        )
        .await
        .unwrap();
    let mut admin = app.browser();
    admin.sign_in("boss@example.com", PASSWORD).await;
    assert_eq!(
        admin.get("/admin/top-up").await.location(),
        Some("/account/two-factor")
    );
    let page = admin.get("/account/two-factor").await;
    let secret = totp_rs::Secret::Encoded(testid(&page.body, "totp-secret").unwrap())
        .to_bytes()
        .unwrap();
    let code = totp::current_code(&secret);
    let res = admin
        .submit("/account/two-factor", "/account/two-factor", &[("code", &code)])
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);

    let page = admin.get("/admin/top-up").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(testid(&page.body, "offers-version").as_deref(), Some("version 1"));
    assert!(
        page.body.contains("25 25 5\n50 50 10"),
        "the form shows the offers in force"
    );
    let fields = |tiers: &'static str| {
        vec![
            ("currency", "USD"),
            ("tiers", tiers),
            ("custom_min", "5"),
            ("custom_max", "200"),
        ]
    };
    let forged = admin.post("/admin/top-up", &fields("10 10 0")).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "no CSRF token");
    let bad = admin
        .submit("/admin/top-up", "/admin/top-up", &fields("10 ten 0"))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(testid(&bad.body, "offers-error")
        .unwrap()
        .starts_with("tier line 1:"));
    let saved = admin
        .submit("/admin/top-up", "/admin/top-up", &fields("10 10 0\n30 30 7.5"))
        .await;
    assert_eq!(saved.location(), Some("/admin/top-up"), "{}", saved.body);
    let page = admin.get("/admin/top-up").await;
    assert_eq!(testid(&page.body, "offers-version").as_deref(), Some("version 2"));
    let offers = app.checkout.offers().await.unwrap();
    let tiers: Vec<(&str, u32)> = offers
        .offers()
        .unwrap()
        .tiers
        .iter()
        .map(|t| (t.id.as_str(), t.bonus_bps))
        .collect();
    assert_eq!(tiers, vec![("10", 0), ("30", 750)]);

    // Customers see the new tiers.
    let mut customer = app.confirmed_user("shopper@example.com").await;
    customer.sign_in("shopper@example.com", PASSWORD).await;
    let buy = customer.get("/account/credit").await;
    assert!(buy.body.contains("Buy 30.00 USD") && !buy.body.contains("Buy 5.00 USD"));
    assert!(buy.body.contains("+ 2.25 USD bonus credit"));
    assert!(buy.body.contains("Between 5.00 USD and 200.00 USD."));
    app.stop().await;
    sim.stop().await;
}
