//! The control server the api calls: `POST /v1/hangup` ends a live call (then `stop` with
//! `hangup_requested`); a bad or replayed token is refused; an unknown call is a 404.

use std::net::SocketAddr;
use std::time::Duration;

use ringledger_domain::E164;
use ringledger_media::call::machine::Notice;
use ringledger_media::config::{MediaConfig, Secret};
use ringledger_media::control::{self, ControlState};
use ringledger_media::driver::{Node, Place};
use ringledger_media::metering::MeteringClient;
use ringledger_media::rtp::session::Source;
use ringledger_media::trunk_sim::{SimArgs, TrunkSim};
use serde_json::{json, Value};
use tokio::sync::mpsc;

mod common;
use common::{fake_api, opts, SECRET};

fn api_token(aud: &str, jti: &str, secret: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims =
        json!({"iss": "ringledger-api", "sub": "api", "aud": aud, "iat": now, "exp": now + 30, "jti": jti});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

#[tokio::test]
async fn the_api_hangs_up_a_live_call() {
    let (api_url, api) = fake_api(opts(60, false)).await;
    let sim = TrunkSim::bind(SimArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ring_ms: 200,
        audio: "tone".into(),
        media_ip: [127, 0, 0, 1].into(),
        rtp_port_min: 47020,
        rtp_port_max: 47040,
    })
    .await
    .expect("trunk-sim");
    let trunk_addr = sim.local_addr().expect("addr");
    tokio::spawn(sim.run());
    let cfg = MediaConfig {
        node_id: "media-test".into(),
        sip_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        trunk_addr,
        rtp_port_min: 47000,
        rtp_port_max: 47020,
        api_url,
        media_secret: Some(Secret::new(SECRET)),
        sip_t1_ms: 100,
        ..MediaConfig::default()
    }
    .validated()
    .expect("config");
    let client = MeteringClient::new(&cfg.api_url, &cfg.node_id, SECRET.as_bytes()).expect("client");
    let mut node = Node::bind(cfg, client).await.expect("bind");
    let local = node.sip_addr().expect("addr");
    node.set_public_addr(local);
    let handle = node.handle();
    tokio::spawn(node.run());
    let state = ControlState::new(
        handle.clone(),
        "media-test".into(),
        Some(SECRET.as_bytes().to_vec()),
        None,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind control");
    let control_url = format!("http://{}/v1/hangup", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, control::router(state)).await });

    let (tx, mut rx) = mpsc::channel(64);
    handle
        .place(Place {
            destination: E164::parse("+442079460958", None).expect("number"),
            call_token: "token".into(),
            quote_id: "quote".into(),
            source: Source::Tone(1000.0),
            notices: Some(tx),
        })
        .await
        .expect("placed");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(Notice::Answered)) => break,
            Ok(Some(_)) => continue,
            other => panic!("the call was not answered: {other:?}"),
        }
    }
    let call_id = "6f2b0e4c-1d7a-4c39-9b0e-2f0c3b7d9a11"; // the fake api's
    let http = reqwest::Client::new();
    let body = json!({"call_id": call_id, "reason": "account_frozen", "message": "frozen (fraud)"});
    let post = |token: String, body: Value| {
        let http = http.clone();
        let url = control_url.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(
            api_token("media-test", "j1", "another secret entirely, 32+ bytes"),
            body.clone()
        )
        .await,
        401
    );
    assert_eq!(
        post(api_token("media-other", "j2", SECRET), body.clone()).await,
        401,
        "for another node"
    );
    let unknown = json!({"call_id": "00000000-0000-0000-0000-000000000001", "reason": "admin"});
    assert_eq!(post(api_token("media-test", "j3", SECRET), unknown).await, 404);
    assert_eq!(
        post(api_token("media-test", "j4", SECRET), body.clone()).await,
        202
    );
    assert_eq!(
        post(api_token("media-test", "j4", SECRET), body).await,
        401,
        "a replayed jti"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let stop = loop {
        let reports = api.reports.lock().expect("lock").clone();
        if let Some((_, v)) = reports.iter().find(|(k, _)| k == "stop") {
            break v.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no stop: {reports:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stop["cause"], "hangup_requested");
}
