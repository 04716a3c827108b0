//! The gateway against its own simulated trunk (`ringledger-media trunk-sim`), as the README's
//! run command wires them: the number's last digits pick the trunk's behaviour.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use ringledger_domain::E164;
use ringledger_media::call::machine::Notice;
use ringledger_media::config::{MediaConfig, Secret};
use ringledger_media::driver::{Node, NodeEvent, Place};
use ringledger_media::metering::MeteringClient;
use ringledger_media::rtp::session::Source;
use ringledger_media::trunk_sim::{SimArgs, TrunkSim};
use serde_json::Value;
use tokio::sync::mpsc;

mod common;
use common::{fake_api, opts, SECRET};

static NEXT_RANGE: AtomicU16 = AtomicU16::new(46000);

async fn dial(number: &str, hang_up_after_ms: Option<u64>) -> (Vec<Notice>, Vec<(String, Value)>) {
    let (api_url, api) = fake_api(opts(60, false)).await;
    let range = NEXT_RANGE.fetch_add(40, Ordering::SeqCst);
    let sim = TrunkSim::bind(SimArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ring_ms: 300,
        audio: "echo".into(),
        media_ip: [127, 0, 0, 1].into(),
        rtp_port_min: range + 20,
        rtp_port_max: range + 40,
    })
    .await
    .expect("trunk-sim binds");
    let trunk_addr = sim.local_addr().expect("addr");
    tokio::spawn(sim.run());
    let cfg = MediaConfig {
        node_id: "media-test".into(),
        sip_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        trunk_addr,
        rtp_port_min: range,
        rtp_port_max: range + 20,
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
    let (tx, mut rx) = mpsc::channel(64);
    let key = handle
        .place(Place {
            destination: E164::parse(number, None).expect("number"),
            call_token: "token".into(),
            quote_id: "quote".into(),
            source: Source::Tone(1000.0),
            notices: Some(tx),
        })
        .await
        .expect("placed");
    let mut notices = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if let (Notice::Answered, Some(ms)) = (&n, hang_up_after_ms) {
            let h = handle.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = h.tx.send(NodeEvent::CallerHangup(key)).await;
            });
        }
        let last = matches!(n, Notice::Ended { .. } | Notice::Failed { .. });
        notices.push(n);
        if last {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while handle.active_calls().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never finished: {notices:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reports = api.reports.lock().expect("lock").clone();
        let done = reports
            .iter()
            .any(|(k, v)| k == "stop" || (k == "progress" && v["state"] == "failed"));
        if done {
            return (notices, reports);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no final report: {reports:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn last_report(reports: &[(String, Value)]) -> Value {
    reports.last().map(|(_, v)| v.clone()).expect("a report")
}

#[tokio::test]
async fn the_simulated_trunk_answers_and_echoes() {
    let (notices, reports) = dial("+442079460958", Some(2000)).await;
    let media = notices.iter().find_map(|n| match n {
        Notice::Media {
            sent_packets,
            received_packets,
        } => Some((*sent_packets, *received_packets)),
        _ => None,
    });
    let (sent, received) = media.expect("media counts");
    assert!(
        sent > 50 && received > 50,
        "echoed: sent {sent}, received {received}"
    );
    assert_eq!(last_report(&reports)["cause"], "caller_hangup");
    assert_eq!(reports.iter().filter(|(k, _)| k == "stop").count(), 1);
}

#[tokio::test]
async fn the_simulated_trunk_is_busy_for_486_numbers() {
    let (_, reports) = dial("+442079460486", None).await;
    let r = last_report(&reports);
    assert_eq!(
        (r["cause"].as_str(), r["sip_status"].as_u64()),
        (Some("busy"), Some(486))
    );
}

#[tokio::test]
async fn the_simulated_trunk_rings_then_gives_no_answer_for_480_numbers() {
    let (notices, reports) = dial("+442079460480", None).await;
    assert!(notices.contains(&Notice::Ringing));
    let r = last_report(&reports);
    assert_eq!(
        (r["cause"].as_str(), r["sip_status"].as_u64()),
        (Some("no_answer"), Some(480))
    );
}

#[tokio::test]
async fn the_simulated_trunk_refuses_404_numbers_as_rejected() {
    let (_, reports) = dial("+442079460404", None).await;
    let r = last_report(&reports);
    assert_eq!(
        (r["cause"].as_str(), r["sip_status"].as_u64()),
        (Some("rejected"), Some(404))
    );
}

#[tokio::test]
async fn the_simulated_trunk_hangs_up_after_nn_seconds() {
    let (_, reports) = dial("+442079469902", None).await;
    let stop = last_report(&reports);
    assert_eq!(stop["cause"], "callee_hangup");
    assert!(
        (2000..3000).contains(&stop["talk_ms"].as_u64().unwrap_or(0)),
        "{stop}"
    );
}

#[tokio::test]
async fn draining_refuses_new_calls_and_ends_live_ones_after_drain_seconds() {
    let (api_url, api) = fake_api(opts(60, false)).await;
    let range = NEXT_RANGE.fetch_add(40, Ordering::SeqCst);
    let sim = TrunkSim::bind(SimArgs {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ring_ms: 100,
        audio: "echo".into(),
        media_ip: [127, 0, 0, 1].into(),
        rtp_port_min: range + 20,
        rtp_port_max: range + 40,
    })
    .await
    .expect("trunk-sim binds");
    let trunk_addr = sim.local_addr().expect("addr");
    tokio::spawn(sim.run());
    let cfg = MediaConfig {
        node_id: "media-test".into(),
        sip_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        trunk_addr,
        rtp_port_min: range,
        rtp_port_max: range + 20,
        api_url,
        media_secret: Some(Secret::new(SECRET)),
        sip_t1_ms: 100,
        drain_seconds: 1,
        ..MediaConfig::default()
    }
    .validated()
    .expect("config");
    let client = MeteringClient::new(&cfg.api_url, &cfg.node_id, SECRET.as_bytes()).expect("client");
    let mut node = Node::bind(cfg, client).await.expect("bind");
    let local = node.sip_addr().expect("addr");
    node.set_public_addr(local);
    let handle = node.handle();
    let running = tokio::spawn(node.run());
    let (tx, mut rx) = mpsc::channel(64);
    let place = |notices| Place {
        destination: E164::parse("+442079460958", None).expect("number"),
        call_token: "token".into(),
        quote_id: "quote".into(),
        source: Source::Tone(1000.0),
        notices,
    };
    handle.place(place(Some(tx))).await.expect("placed");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        if n == Notice::Answered {
            break;
        }
    }
    handle.tx.send(NodeEvent::Drain).await.expect("drain");
    let refused = handle.place(place(None)).await;
    assert!(refused.is_err_and(|e| e.contains("draining")));
    // The node's task ends once the live call is over (after drain_seconds).
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("drained")
        .expect("task");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reports = api.reports.lock().expect("lock").clone();
        if let Some((_, stop)) = reports.iter().find(|(k, _)| k == "stop") {
            assert_eq!(stop["cause"], "hangup_requested");
            let talk = stop["talk_ms"].as_u64().unwrap_or(0);
            assert!((1000..2500).contains(&talk), "{talk}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stop: {reports:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
