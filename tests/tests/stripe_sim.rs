//! Our Stripe client against the test double (`ringledger stripe-sim`), and the double's
//! webhooks: signed so that `signature::verify` accepts them, in Stripe's envelope, retried with
//! backoff while the endpoint fails, and re-sent on demand.

mod stripe_support;

use std::collections::BTreeMap;

use ringledger_api::config::Secret;
use ringledger_api::stripe::client::{NewCheckoutSession, NewRefund, StripeClient, StripeError};
use stripe_support::*;

fn session(amount_minor: i64, tier: &str) -> NewCheckoutSession {
    NewCheckoutSession {
        amount_minor,
        currency: "USD".into(),
        product_name: "RingLedger calling credit".into(),
        client_reference_id: "0191d1c8-0000-7000-8000-000000000001".into(),
        success_url: "http://app.test/account/credit/success?session_id={CHECKOUT_SESSION_ID}".into(),
        cancel_url: "http://app.test/account/credit/cancel".into(),
        metadata: BTreeMap::from([
            (
                "account_id".to_owned(),
                "0191d1c8-0000-7000-8000-000000000001".to_owned(),
            ),
            ("tier".to_owned(), tier.to_owned()),
            ("terms_version".to_owned(), "1".to_owned()),
            ("bonus_bps".to_owned(), "0".to_owned()),
        ]),
    }
}

#[tokio::test]
async fn sessions_are_created_idempotently_retrieved_and_refused_without_the_key() {
    let sim = start_sim(None).await;
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();

    let created = client
        .create_checkout_session(&session(1_000, "10"), "key-1")
        .await
        .unwrap();
    assert!(created.id.starts_with("cs_test_"), "{}", created.id);
    assert_eq!(created.amount_total, Some(1_000));
    assert_eq!(created.currency.as_deref(), Some("usd"));
    assert_eq!(created.payment_status, "unpaid");
    assert_eq!(created.metadata["tier"], "10");
    let url = created.url.clone().expect("an open session has a payment page");
    assert!(url.starts_with(sim.base_url()), "{url}");

    // A double submit: same key, same parameters -> the same session.
    let again = client
        .create_checkout_session(&session(1_000, "10"), "key-1")
        .await
        .unwrap();
    assert_eq!(again.id, created.id);
    // Same key, other parameters -> Stripe's idempotency error.
    let clash = client
        .create_checkout_session(&session(2_500, "25"), "key-1")
        .await;
    assert!(matches!(clash, Err(StripeError::Idempotency { .. })), "{clash:?}");
    // Another key -> another session.
    let other = client
        .create_checkout_session(&session(1_000, "10"), "key-2")
        .await
        .unwrap();
    assert_ne!(other.id, created.id);

    let fetched = client.retrieve_checkout_session(&created.id).await.unwrap();
    assert_eq!(fetched, created);
    let missing = client.retrieve_checkout_session("cs_test_nothere").await;
    assert!(
        matches!(missing, Err(StripeError::InvalidRequest { status: 404, .. })),
        "{missing:?}"
    );

    let wrong = StripeClient::new(sim.base_url(), Secret::new("sk_test_wrong_key_123")).unwrap();
    let refused = wrong
        .create_checkout_session(&session(1_000, "10"), "key-3")
        .await;
    match refused {
        Err(StripeError::Authentication { message }) => {
            assert!(
                !message.contains("sk_test_wrong_key_123"),
                "the key is masked: {message}"
            )
        }
        other => panic!("expected an authentication error, got {other:?}"),
    }
    let bad = client.create_checkout_session(&session(0, "10"), "key-4").await;
    assert!(
        matches!(bad, Err(StripeError::InvalidRequest { status: 400, .. })),
        "{bad:?}"
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_paid_session_is_delivered_signed_and_refunds_are_cumulative() {
    let endpoint = Endpoint::start(vec![]).await;
    let sim = start_sim(Some(endpoint.url.clone())).await;
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();
    let created = client
        .create_checkout_session(&session(1_000, "10"), "pay-1")
        .await
        .unwrap();
    let page = created.url.unwrap();

    // The decline card: shown on the page, nothing completed, nothing sent.
    let (status, location, body) = pay_by_card(&page, "4000 0000 0000 0002").await;
    assert_eq!((status, location), (402, None));
    assert!(body.contains("Your card was declined"), "{body}");
    assert_eq!(
        client
            .retrieve_checkout_session(&created.id)
            .await
            .unwrap()
            .status
            .as_deref(),
        Some("open")
    );
    // The success card: back to success_url with the session id.
    let (status, location, _) = pay_by_card(&page, "4242 4242 4242 4242").await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("http://app.test/account/credit/success?session_id={}", created.id).as_str())
    );
    let paid = client.retrieve_checkout_session(&created.id).await.unwrap();
    assert_eq!(
        (paid.payment_status.as_str(), paid.status.as_deref()),
        ("paid", Some("complete"))
    );
    let pi = paid
        .payment_intent
        .clone()
        .expect("a paid session names its payment intent");

    let got = endpoint.wait_for(1).await;
    assert!(
        got[0].verified,
        "signature::verify accepts the double's Stripe-Signature"
    );
    let event = &got[0].event;
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["object"], "event");
    assert_eq!(event["type"], "checkout.session.completed");
    assert_eq!(event["livemode"], false);
    assert!(event["created"].as_i64().is_some() && event["api_version"].as_str().is_some());
    let object = &event["data"]["object"];
    assert_eq!(object["object"], "checkout.session");
    assert_eq!(object["id"], created.id.as_str());
    assert_eq!(object["payment_intent"], pi.as_str());
    assert_eq!(object["payment_status"], "paid");
    assert_eq!(object["amount_total"], 1_000);
    assert_eq!(
        object["client_reference_id"],
        "0191d1c8-0000-7000-8000-000000000001"
    );
    assert_eq!(object["metadata"]["bonus_bps"], "0");

    // Partial then full refund: amount_refunded is cumulative, `refunded` only at the end.
    let refund = NewRefund {
        payment_intent: pi.clone(),
        amount_minor: Some(300),
        metadata: BTreeMap::new(),
    };
    let r1 = client.create_refund(&refund, "refund-1").await.unwrap();
    assert_eq!(
        (r1.amount, r1.payment_intent.as_deref()),
        (300, Some(pi.as_str()))
    );
    assert_eq!(
        client.create_refund(&refund, "refund-1").await.unwrap().id,
        r1.id,
        "idempotent"
    );
    let too_much = NewRefund {
        amount_minor: Some(800),
        ..refund.clone()
    };
    assert!(matches!(
        client.create_refund(&too_much, "refund-2").await,
        Err(StripeError::InvalidRequest { status: 400, .. })
    ));
    let rest = NewRefund {
        amount_minor: None,
        ..refund
    };
    assert_eq!(client.create_refund(&rest, "refund-3").await.unwrap().amount, 700);
    let got = endpoint.wait_for(3).await;
    let mut charges: Vec<&serde_json::Value> = got
        .iter()
        .filter(|r| r.event["type"] == "charge.refunded")
        .map(|r| &r.event["data"]["object"])
        .collect();
    charges.sort_by_key(|c| c["amount_refunded"].as_i64());
    assert_eq!(charges.len(), 2);
    assert_eq!(
        (
            charges[0]["amount_refunded"].as_i64(),
            charges[0]["refunded"].as_bool()
        ),
        (Some(300), Some(false))
    );
    assert_eq!(
        (
            charges[1]["amount_refunded"].as_i64(),
            charges[1]["refunded"].as_bool()
        ),
        (Some(1_000), Some(true))
    );
    assert_eq!(charges[1]["payment_intent"], pi.as_str());
    assert!(got.iter().all(|r| r.verified));
    sim.stop().await;
}

#[tokio::test]
async fn failing_endpoints_get_retries_and_admins_trigger_disputes_and_duplicates() {
    // The endpoint fails twice (a 500, then a 503) before it accepts.
    let endpoint = Endpoint::start(vec![500, 503]).await;
    let sim = start_sim(Some(endpoint.url.clone())).await;
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();
    let created = client
        .create_checkout_session(&session(5_000, "50"), "retry-1")
        .await
        .unwrap();
    pay_by_card(&created.url.unwrap(), "4242424242424242").await;
    let got = endpoint.wait_for(3).await;
    assert!(got.iter().all(|r| r.verified));
    let ids: Vec<&str> = got.iter().map(|r| r.event["id"].as_str().unwrap()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same event, three attempts: {ids:?}"
    );
    let attempts = ringledger_tests::eventually(std::time::Duration::from_secs(5), || async {
        let e = sim.events().into_iter().next()?;
        e.delivered().then_some(e.attempts)
    })
    .await
    .unwrap();
    let statuses: Vec<Option<u16>> = attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(503), Some(200)]);

    // Admin endpoints: a dispute, its close, a re-delivery (a duplicate of the same event).
    let admin = reqwest::Client::new();
    let pi = client
        .retrieve_checkout_session(&created.id)
        .await
        .unwrap()
        .payment_intent
        .unwrap();
    let post = |path: String| {
        admin
            .post(format!("{}{path}", sim.base_url()))
            .bearer_auth(SECRET_KEY)
            .send()
    };
    let opened: serde_json::Value = post(format!("/sim/payment_intents/{pi}/dispute?reason=fraudulent"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let dispute = opened["object"]["id"].as_str().unwrap().to_owned();
    assert_eq!(opened["object"]["status"], "needs_response");
    let closed = post(format!("/sim/disputes/{dispute}/close?outcome=lost"))
        .await
        .unwrap();
    assert_eq!(closed.status(), 200);
    let first_event = sim.events()[0].id.clone();
    let res = post(format!("/sim/events/{first_event}/redeliver?times=2"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let unauthorised = admin
        .post(format!("{}/sim/events/{first_event}/redeliver", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorised.status(), 401);

    let got = endpoint.wait_for(7).await;
    let kinds: Vec<&str> = got.iter().filter_map(|r| r.event["type"].as_str()).collect();
    assert!(kinds.contains(&"charge.dispute.created"), "{kinds:?}");
    let closed: Vec<&serde_json::Value> = got
        .iter()
        .filter(|r| r.event["type"] == "charge.dispute.closed")
        .map(|r| &r.event["data"]["object"])
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(
        (closed[0]["status"].as_str(), closed[0]["payment_intent"].as_str()),
        (Some("lost"), Some(pi.as_str()))
    );
    let copies = got
        .iter()
        .filter(|r| r.event["id"] == first_event.as_str())
        .count();
    assert_eq!(
        copies, 5,
        "three attempts, then two re-deliveries of the same event"
    );
    sim.stop().await;
}

#[tokio::test]
async fn pay_later_completes_unpaid_then_settles_and_open_sessions_expire() {
    let endpoint = Endpoint::start(vec![]).await;
    let sim = start_sim(Some(endpoint.url.clone())).await;
    let client = StripeClient::new(sim.base_url(), Secret::new(SECRET_KEY)).unwrap();
    let later = client
        .create_checkout_session(&session(1_000, "10"), "later-1")
        .await
        .unwrap();
    let (status, _, _) = submit(
        &later.url.unwrap(),
        &[("method", "bank_transfer"), ("outcome", "failed")],
    )
    .await;
    assert_eq!(status, 303);
    let got = endpoint.wait_for(2).await;
    let by_type = |t: &str| {
        got.iter()
            .find(|r| r.event["type"] == t)
            .map(|r| r.event["data"]["object"].clone())
    };
    let completed = by_type("checkout.session.completed").expect("completed is sent");
    assert_eq!(completed["payment_status"], "unpaid");
    let failed = by_type("checkout.session.async_payment_failed").expect("then the transfer fails");
    assert_eq!(failed["id"], later.id.as_str());

    let open = client
        .create_checkout_session(&session(1_000, "10"), "expire-1")
        .await
        .unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/sim/checkout/sessions/{}/expire",
            sim.base_url(),
            open.id
        ))
        .bearer_auth(SECRET_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = endpoint.wait_for(3).await;
    assert!(got.iter().any(|r| r.event["type"] == "checkout.session.expired"));
    let expired = client.retrieve_checkout_session(&open.id).await.unwrap();
    assert_eq!((expired.status.as_deref(), expired.url), (Some("expired"), None));
    sim.stop().await;
}
