//! The gateway against sipp as the trunk (Debian `sip-tester`) and a fake metering api that
//! checks our JWTs and records every report: each call must end with the right cause, and an
//! answered call must send exactly one `stop`; an unanswered one none. The gateway runs
//! in-process (the same `Node` that `serve` and `dial` run); sipp is a separate process.

use std::net::{SocketAddr, UdpSocket as StdUdp};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ringledger_domain::E164;
use ringledger_media::call::machine::Notice;
use ringledger_media::config::{MediaConfig, Secret};
use ringledger_media::driver::{Node, NodeEvent, Place};
use ringledger_media::metering::MeteringClient;
use ringledger_media::rtp::session::Source;
use serde_json::Value;
use tokio::sync::mpsc;

mod common;
use common::{fake_api, opts, ApiOpts, SECRET};

fn free_udp_port() -> u16 {
    StdUdp::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Distinct RTP ranges for tests running at once.
static NEXT_RANGE: AtomicU16 = AtomicU16::new(42000);

#[derive(Clone, Copy, PartialEq)]
enum Caller {
    /// Hang up this long after the answer.
    HangUpAfter(u64),
    /// Hang up as soon as it rings.
    CancelOnRinging,
    /// Never hang up: the trunk or the grant ends the call.
    Wait,
}

struct Outcome {
    notices: Vec<Notice>,
    reports: Vec<(String, Value)>,
}

impl Outcome {
    fn of(&self, kind: &str) -> Vec<Value> {
        self.reports
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn states(&self) -> Vec<String> {
        self.of("progress")
            .iter()
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
            .collect()
    }

    fn one_stop(&self) -> Value {
        let stops = self.of("stop");
        assert_eq!(stops.len(), 1, "exactly one stop: {:?}", self.reports);
        stops[0].clone()
    }

    fn rtp(&self) -> (u32, u32) {
        self.notices
            .iter()
            .find_map(|n| match n {
                Notice::Media {
                    sent_packets,
                    received_packets,
                } => Some((*sent_packets, *received_packets)),
                _ => None,
            })
            .unwrap_or((0, 0))
    }
}

/// A UDP relay between the gateway and sipp that drops the gateway's first ACK (as a lossy
/// network would) and counts the ACKs it saw.
async fn lossy_relay(sipp: SocketAddr) -> (SocketAddr, Arc<AtomicU16>) {
    let front = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let back = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
    let addr = front.local_addr().expect("addr");
    let acks = Arc::new(AtomicU16::new(0));
    let gateway: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let (f, b, g, a) = (front.clone(), back.clone(), gateway.clone(), acks.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, from)) = f.recv_from(&mut buf).await {
            *g.lock().expect("lock") = Some(from);
            if buf[..n].starts_with(b"ACK ") && a.fetch_add(1, Ordering::SeqCst) == 0 {
                continue; // the first ACK is lost
            }
            let _ = b.send_to(&buf[..n], sipp).await;
        }
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok((n, _)) = back.recv_from(&mut buf).await {
            let to = *gateway.lock().expect("lock");
            if let Some(to) = to {
                let _ = front.send_to(&buf[..n], to).await;
            }
        }
    });
    (addr, acks)
}

async fn call(scenario: &str, caller: Caller, granted_seconds: u64, final_unit: bool) -> Outcome {
    call_via(scenario, caller, opts(granted_seconds, final_unit), false)
        .await
        .0
}

async fn call_via(scenario: &str, caller: Caller, opts: ApiOpts, drop_first_ack: bool) -> (Outcome, u16) {
    let (api_url, api) = fake_api(opts).await;
    let sipp_port = free_udp_port();
    let (trunk_addr, acks) = if drop_first_ack {
        lossy_relay(SocketAddr::from(([127, 0, 0, 1], sipp_port))).await
    } else {
        (SocketAddr::from(([127, 0, 0, 1], sipp_port)), Arc::default())
    };
    let media_port = free_udp_port() & !1;
    let file: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "sipp", scenario]
        .iter()
        .collect();
    let mut sipp = tokio::process::Command::new("sipp")
        .args([
            "-sf",
            file.to_str().expect("path"),
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
        ])
        .args(["-p", &sipp_port.to_string(), "-mp", &media_port.to_string()])
        .args([
            "-m",
            "1",
            "-rtp_echo",
            "-timeout",
            "40s",
            "-timeout_error",
            "-nostdin",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)");
    let range = NEXT_RANGE.fetch_add(20, Ordering::SeqCst);
    let cfg = MediaConfig {
        node_id: "media-test".into(),
        sip_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        trunk_addr,
        rtp_port_min: range,
        rtp_port_max: range + 20,
        api_url,
        media_secret: Some(Secret::new(SECRET)),
        trunk_username: Some("alice".into()),
        trunk_password: Some(Secret::new("s3cret")),
        sip_t1_ms: 100,
        ..MediaConfig::default()
    }
    .validated()
    .expect("config");
    let client = MeteringClient::new(&cfg.api_url, &cfg.node_id, SECRET.as_bytes()).expect("client");
    let mut node = Node::bind(cfg.clone(), client).await.expect("bind");
    let local = node.sip_addr().expect("addr");
    node.set_public_addr(local);
    let handle = node.handle();
    tokio::spawn(node.run());
    // sipp needs a moment to bind; a first INVITE lost is retransmitted by timer A anyway.
    let (tx, mut rx) = mpsc::channel(64);
    let key = handle
        .place(Place {
            destination: E164::parse("+442079460958", None).expect("number"),
            call_token: "token".into(),
            quote_id: "quote".into(),
            source: Source::Tone(1000.0),
            notices: Some(tx),
        })
        .await
        .expect("placed");
    let mut notices = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while let Ok(Some(n)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        match (&n, caller) {
            (Notice::Answered, Caller::HangUpAfter(ms)) => {
                let h = handle.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let _ = h.tx.send(NodeEvent::CallerHangup(key)).await;
                });
            }
            (Notice::Ringing, Caller::CancelOnRinging) => {
                let _ = handle.tx.send(NodeEvent::CallerHangup(key)).await;
            }
            _ => {}
        }
        let last = matches!(
            n,
            Notice::Ended { .. } | Notice::Failed { .. } | Notice::Denied { .. }
        );
        if last {
            api.dead.store(false, Ordering::SeqCst); // back up: the stop must now get through
        }
        notices.push(n);
        if last {
            break;
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(40), sipp.wait())
        .await
        .expect("sipp ends")
        .expect("sipp ran");
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = sipp.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = e.read_to_string(&mut err).await;
        }
        panic!("sipp's scenario {scenario} failed ({status}): {err}\nnotices: {notices:?}");
    }
    // The call is forgotten once its transactions are over; then nothing more can be sent.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while handle.active_calls().await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the call never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stops_expected = notices.iter().any(|n| matches!(n, Notice::Ended { .. }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let reports = api.reports.lock().expect("lock").clone();
        let have_stop = reports.iter().any(|(k, _)| k == "stop");
        let have_fail = reports
            .iter()
            .any(|(k, v)| k == "progress" && v["state"] == "failed");
        if (stops_expected && have_stop) || (!stops_expected && have_fail) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the last report never arrived: {reports:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reports = api.reports.lock().expect("lock").clone();
    (Outcome { notices, reports }, acks.load(Ordering::SeqCst))
}

fn ended(o: &Outcome) -> (String, u64) {
    o.notices
        .iter()
        .find_map(|n| match n {
            Notice::Ended { cause, talk_ms } => Some((
                serde_json::to_value(cause)
                    .expect("json")
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                *talk_ms,
            )),
            _ => None,
        })
        .expect("the call ended")
}

fn failed(o: &Outcome) -> Value {
    assert!(o.of("stop").is_empty(), "an unanswered call sends no stop");
    let fails: Vec<Value> = o
        .of("progress")
        .into_iter()
        .filter(|v| v["state"] == "failed")
        .collect();
    assert_eq!(fails.len(), 1, "{:?}", o.reports);
    fails[0].clone()
}

#[tokio::test]
async fn a_normal_call_has_rtp_echoed_and_one_stop() {
    let o = call("answer.xml", Caller::HangUpAfter(2500), 60, false).await;
    assert_eq!(o.states(), vec!["ringing", "answered"]);
    let stop = o.one_stop();
    assert_eq!(stop["cause"], "caller_hangup");
    assert!(stop["talk_ms"].as_u64().unwrap_or(0) >= 2500);
    assert!(stop["quality"]["trunk"]["loss_per_mille"].is_u64());
    assert!(!o.of("interim").is_empty(), "interims every second");
    let (sent, received) = o.rtp();
    assert!(sent > 50, "we sent the tone: {sent}");
    assert!(received > 50, "sipp echoed it back: {received}");
    // seq grows with every report
    let seqs: Vec<u64> = o
        .reports
        .iter()
        .skip(1)
        .map(|(_, v)| v["seq"].as_u64().unwrap_or(0))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
}

#[tokio::test]
async fn early_media_in_a_183_then_200() {
    let o = call("early.xml", Caller::HangUpAfter(1000), 60, false).await;
    assert_eq!(o.states(), vec!["ringing", "answered"]);
    assert_eq!(o.one_stop()["cause"], "caller_hangup");
}

#[tokio::test]
async fn busy_fails_with_486_and_no_stop() {
    let o = call("busy.xml", Caller::Wait, 60, false).await;
    let f = failed(&o);
    assert_eq!(
        (f["cause"].as_str(), f["sip_status"].as_u64()),
        (Some("busy"), Some(486))
    );
}

#[tokio::test]
async fn ringing_then_cancel_gets_487() {
    let o = call("cancel.xml", Caller::CancelOnRinging, 60, false).await;
    let f = failed(&o);
    assert_eq!(
        (f["cause"].as_str(), f["sip_status"].as_u64()),
        (Some("caller_cancelled"), Some(487))
    );
}

#[tokio::test]
async fn a_401_is_answered_with_digest_credentials() {
    let o = call("auth.xml", Caller::HangUpAfter(500), 60, false).await;
    assert!(
        o.notices.contains(&Notice::Answered),
        "sipp accepted our credentials: {:?}",
        o.notices
    );
    assert_eq!(o.one_stop()["cause"], "caller_hangup");
}

#[tokio::test]
async fn a_retransmitted_200_is_acked_again() {
    // Our first ACK is lost on the way: sipp retransmits its 200 and must get an ACK for it.
    let (o, acks) = call_via("answer.xml", Caller::HangUpAfter(2000), opts(60, false), true).await;
    assert!(acks >= 2, "the 200 was ACKed again ({acks} ACKs)");
    assert_eq!(o.states(), vec!["ringing", "answered"], "answered once");
    assert_eq!(o.one_stop()["cause"], "caller_hangup");
}

#[tokio::test]
async fn reinvite_holds_and_resumes_then_the_trunk_hangs_up() {
    let o = call("hold.xml", Caller::Wait, 60, false).await;
    let holds: Vec<bool> = o
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::Held(h) => Some(*h),
            _ => None,
        })
        .collect();
    assert_eq!(holds, vec![true, false]);
    assert_eq!(o.one_stop()["cause"], "callee_hangup");
}

#[tokio::test]
async fn bye_from_the_trunk_ends_the_call() {
    let o = call("trunk_bye.xml", Caller::Wait, 60, false).await;
    let (cause, talk_ms) = ended(&o);
    assert_eq!(cause, "callee_hangup");
    assert!(talk_ms >= 1500);
    assert_eq!(o.one_stop()["cause"], "callee_hangup");
}

#[tokio::test]
async fn final_unit_cuts_the_call_at_the_granted_seconds() {
    // A final grant of 2 s: the gateway plays the tone and sends BYE itself.
    let o = call("answer.xml", Caller::Wait, 2, true).await;
    let stop = o.one_stop();
    assert_eq!(stop["cause"], "final_unit");
    let talk = stop["talk_ms"].as_u64().unwrap_or(0);
    assert!((2000..3000).contains(&talk), "{talk}");
}

#[tokio::test]
async fn with_the_api_down_the_call_ends_when_the_grant_expires() {
    // The api answers `answered`, then goes down: interims fail; the grant (valid 3 s) expires.
    let api = ApiOpts {
        validity_seconds: 3,
        die_after_answer: true,
        ..opts(60, false)
    };
    let (o, _) = call_via("answer.xml", Caller::Wait, api, false).await;
    let (cause, talk_ms) = ended(&o);
    assert_eq!(cause, "grant_expired");
    assert!((2000..4000).contains(&talk_ms), "{talk_ms}");
    // Retried after the api came back: one stop.
    assert_eq!(o.one_stop()["cause"], "grant_expired");
    assert!(
        o.of("interim").is_empty(),
        "no interim got through while the api was down"
    );
}
