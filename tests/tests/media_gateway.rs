//! The media gateway against the real api (real JWTs, real Postgres) and its simulated trunk:
//! an answered call is charged exactly the tariff's cost of its billed seconds, once; a busy
//! call is not charged; a denied start never reaches the trunk.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::Utc;
use ringledger_api::calls::CallsConfig;
use ringledger_api::rates::{QuoteOutcome, QuoteRequest};
use ringledger_domain::{AccountId, CallId, Money, E164};
use ringledger_media::call::machine::Notice;
use ringledger_media::config::{MediaConfig, Secret};
use ringledger_media::driver::{Node, NodeEvent, NodeHandle, Place};
use ringledger_media::metering::MeteringClient;
use ringledger_media::rtp::session::Source;
use ringledger_media::trunk_sim::{SimArgs, TrunkSim};
use ringledger_tests::metering::{call_events, funded_account, start_app, Metering, MEDIA_SECRET, NODE};
use ringledger_tests::{eventually, TestDb};
use serde_json::Value;
use tokio::sync::mpsc;

async fn gateway(app: &Metering, rtp_base: u16) -> NodeHandle {
    let sim = TrunkSim::bind(SimArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ring_ms: 200,
        audio: "echo".into(),
        media_ip: [127, 0, 0, 1].into(),
        rtp_port_min: rtp_base + 20,
        rtp_port_max: rtp_base + 40,
    })
    .await
    .expect("trunk-sim");
    let trunk_addr = sim.local_addr().expect("addr");
    tokio::spawn(sim.run());
    let cfg = MediaConfig {
        node_id: NODE.into(),
        sip_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        trunk_addr,
        rtp_port_min: rtp_base,
        rtp_port_max: rtp_base + 20,
        api_url: app.base.clone(),
        media_secret: Some(Secret::new(MEDIA_SECRET)),
        sip_t1_ms: 100,
        ..MediaConfig::default()
    }
    .validated()
    .expect("config");
    let client = MeteringClient::new(&cfg.api_url, NODE, MEDIA_SECRET.as_bytes()).expect("client");
    let mut node = Node::bind(cfg, client).await.expect("bind");
    let local = node.sip_addr().expect("addr");
    node.set_public_addr(local);
    let handle = node.handle();
    tokio::spawn(node.run());
    handle
}

/// Places a call to `number` and returns its notices once it is over and forgotten.
async fn place(
    app: &Metering,
    node: &NodeHandle,
    account: AccountId,
    number: &str,
    talk_ms: u64,
) -> (Vec<Notice>, CallId) {
    let request = QuoteRequest {
        account_id: account,
        number: number.into(),
        region: None,
    };
    let quote = match app.rates.quote(&request, Utc::now()).await.expect("quote") {
        QuoteOutcome::Quoted { quote, .. } => quote,
        other => panic!("no quote: {other:?}"),
    };
    let (call_token, call_id) = app.call_token(account).expect("token");
    let (tx, mut rx) = mpsc::channel(64);
    let key = node
        .place(Place {
            destination: E164::parse(number, None).expect("number"),
            call_token,
            quote_id: quote.id.to_string(),
            source: Source::Tone(1000.0),
            notices: Some(tx),
        })
        .await
        .expect("placed");
    let mut notices = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if n == Notice::Answered {
            let h = node.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(talk_ms)).await;
                let _ = h.tx.send(NodeEvent::CallerHangup(key)).await;
            });
        }
        let last = matches!(
            n,
            Notice::Ended { .. } | Notice::Failed { .. } | Notice::Denied { .. }
        );
        notices.push(n);
        if last {
            break;
        }
    }
    (notices, call_id)
}

async fn ended_event(db: &TestDb, call: CallId) -> Value {
    eventually(Duration::from_secs(20), || async {
        sqlx::query_scalar::<_, Value>(
            "SELECT payload FROM events WHERE aggregate_type = 'Call' AND aggregate_id = $1 AND event_type = 'CallEnded'",
        )
        .bind(call.to_string())
        .fetch_optional(&db.pool)
        .await
        .ok()
        .flatten()
    })
    .await
    .expect("the call ended in the log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_is_charged_exactly_its_billed_seconds_once() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 1_000_000).await.expect("account");
    let node = gateway(&app, 48000).await;
    let (notices, call) = place(&app, &node, account, "+447712345678", 2_200).await;
    assert!(notices.contains(&Notice::Answered), "{notices:?}");
    let ended = ended_event(&db, call).await;
    let body = ended.get("CallEnded").unwrap_or(&ended);
    assert_eq!(body["cause"], "caller_hangup", "{ended}");
    let talk_ms = body["talk_ms"].as_u64().expect("talk_ms");
    assert!((2_200..3_500).contains(&talk_ms), "{talk_ms}");
    let billed = body["billed_seconds"].as_u64().expect("billed");
    assert_eq!(billed, talk_ms.div_ceil(1000), "billed per second on this rate");
    let tariff = app.quote(account).await.expect("quote").price.selling;
    let charged: Money = serde_json::from_value(body["charged"].clone()).expect("money");
    assert_eq!(charged, tariff.cost(billed).expect("cost"));
    let events = call_events(&db, call).await.expect("events");
    assert_eq!(
        events.iter().filter(|e| *e == "CallEnded").count(),
        1,
        "{events:?}"
    );
    assert!(events.contains(&"CallRinging".to_string()) && events.contains(&"CallAnswered".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_call_is_failed_and_not_charged() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 1_000_000).await.expect("account");
    let node = gateway(&app, 48100).await;
    let (notices, call) = place(&app, &node, account, "+447712345486", 0).await;
    assert!(
        matches!(
            notices.last(),
            Some(Notice::Failed {
                sip_status: Some(486),
                ..
            })
        ),
        "{notices:?}"
    );
    let events = eventually(Duration::from_secs(20), || async {
        let e = call_events(&db, call).await.ok()?;
        e.contains(&"CallFailed".to_string()).then_some(e)
    })
    .await
    .expect("the failure reached the log");
    assert!(!events.contains(&"CallEnded".to_string()) && !events.contains(&"CallAnswered".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_start_never_rings_the_trunk() {
    let db = TestDb::create().await.expect("db");
    let app = start_app(&db, CallsConfig::default()).await.expect("app");
    let account = funded_account(&db, 1).await.expect("account"); // one micro-dollar
    let node = gateway(&app, 48200).await;
    let (notices, _) = place(&app, &node, account, "+447712345678", 0).await;
    assert!(
        matches!(notices.last(), Some(Notice::Denied { .. })),
        "the api refuses a call the credit cannot pay for: {notices:?}"
    );
    assert!(!notices
        .iter()
        .any(|n| matches!(n, Notice::Ringing | Notice::Answered)));
}
