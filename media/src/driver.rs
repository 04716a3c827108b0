//! The thin IO shell around the sans-IO calls: one SIP UDP socket, a timer heap, an RTP
//! session per call and a metering reporter per call, all driven by one task so a call's
//! state is never shared. Messages are routed to calls by Call-ID; strays are answered
//! statelessly (481, or 403 for a new INVITE: this node only places calls).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringledger_domain::call::{CallQuality, HangupReason, LegQuality};
use ringledger_domain::{CallId, E164};
use rsip::SipMessage;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::call::machine::{Call, CallSetup, CallTimer, Input, MediaCommand, Notice, Output};
use crate::call::wire::{Grant, MeterError, Report, ReportAnswer};
use crate::config::MediaConfig;
use crate::metering::MeteringClient;
use crate::rtp::session::{self, MediaCmd, PortPool, RtpSession, Source};
use crate::sip::leg::LegConfig;
use crate::sip::msg;
use crate::sip::sdp::{Direction, LocalMedia};

/// Inbox capacity of the node task.
const INBOX: usize = 1024;

/// A request to place a call.
pub struct Place {
    pub destination: E164,
    pub call_token: String,
    pub quote_id: String,
    pub source: Source,
    /// Notices for whoever placed the call (the `dial` command prints them).
    pub notices: Option<mpsc::Sender<Notice>>,
}

pub enum NodeEvent {
    Place(Place, oneshot::Sender<Result<u64, String>>),
    Started(u64, Result<Grant, MeterError>),
    Answered(u64, u64, Result<ReportAnswer, MeterError>),
    /// The api's hangup; answers whether the call is known here.
    ApiHangup(CallId, HangupReason, oneshot::Sender<bool>),
    CallerHangup(u64),
    /// No new calls; end the active ones (cause `hangup_requested`) after the drain time.
    Drain,
    Count(oneshot::Sender<usize>),
    /// The drain time is over for this call.
    DrainOver(u64),
}

/// A handle to send events to the node task.
#[derive(Clone)]
pub struct NodeHandle {
    pub tx: mpsc::Sender<NodeEvent>,
}

impl NodeHandle {
    pub async fn place(&self, p: Place) -> Result<u64, String> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(NodeEvent::Place(p, tx))
            .await
            .map_err(|_| "the node has stopped".to_string())?;
        rx.await.map_err(|_| "the node has stopped".to_string())?
    }

    pub async fn active_calls(&self) -> usize {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(NodeEvent::Count(tx)).await.is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }
}

struct Entry {
    call: Call,
    /// Where the trunk's last request came from: our responses go back there (RFC 3261
    /// §18.2.2 with `rport`), requests go to `trunk_addr`.
    peer: Option<SocketAddr>,
    rtp: RtpSession,
    reporter: Option<watch::Sender<Option<Report>>>,
    notices: Option<mpsc::Sender<Notice>>,
}

pub struct Node {
    cfg: Arc<MediaConfig>,
    sip: Arc<UdpSocket>,
    metering: MeteringClient,
    ports: Arc<PortPool>,
    calls: HashMap<u64, Entry>,
    by_sip: HashMap<String, u64>,
    by_call: HashMap<CallId, u64>,
    heap: BinaryHeap<Reverse<(Instant, u64, CallTimer)>>,
    deadlines: HashMap<(u64, CallTimer), Instant>,
    epoch: Instant,
    next_key: u64,
    draining: bool,
    tx: mpsc::Sender<NodeEvent>,
    rx: mpsc::Receiver<NodeEvent>,
    answers_rx: mpsc::Receiver<(u64, u64, Result<ReportAnswer, MeterError>)>,
    answers_tx: mpsc::Sender<(u64, u64, Result<ReportAnswer, MeterError>)>,
}

impl Node {
    /// Binds the SIP socket. `cfg.sip_addr` port 0 picks a free port.
    pub async fn bind(cfg: MediaConfig, metering: MeteringClient) -> anyhow::Result<Node> {
        let sip = UdpSocket::bind(cfg.sip_addr).await?;
        let (tx, rx) = mpsc::channel(INBOX);
        let (answers_tx, answers_rx) = mpsc::channel(INBOX);
        Ok(Node {
            ports: PortPool::new(cfg.rtp_port_min, cfg.rtp_port_max),
            cfg: Arc::new(cfg),
            sip: Arc::new(sip),
            metering,
            calls: HashMap::new(),
            by_sip: HashMap::new(),
            by_call: HashMap::new(),
            heap: BinaryHeap::new(),
            deadlines: HashMap::new(),
            epoch: Instant::now(),
            next_key: 1,
            draining: false,
            tx,
            rx,
            answers_rx,
            answers_tx,
        })
    }

    pub fn sip_addr(&self) -> std::io::Result<SocketAddr> {
        self.sip.local_addr()
    }

    /// Our SIP address as the trunk sees it, when only known after binding (port 0).
    pub fn set_public_addr(&mut self, addr: SocketAddr) {
        let mut cfg = (*self.cfg).clone();
        cfg.sip_public_addr = Some(addr);
        self.cfg = Arc::new(cfg);
    }

    pub fn handle(&self) -> NodeHandle {
        NodeHandle { tx: self.tx.clone() }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Runs until drained (after `Drain`, once no call is left).
    pub async fn run(mut self) {
        let mut buf = vec![0u8; 65_535];
        let mut keepalive = self.keepalive_interval();
        loop {
            if self.draining && self.calls.is_empty() {
                return;
            }
            let next = self.heap.peek().map(|Reverse((at, _, _))| *at);
            let sleep_until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                got = self.sip.recv_from(&mut buf) => {
                    if let Ok((n, from)) = got {
                        let bytes = buf[..n].to_vec();
                        self.on_datagram(&bytes, from).await;
                    }
                }
                Some(ev) = self.rx.recv() => self.on_event(ev).await,
                Some((key, seq, result)) = self.answers_rx.recv() => {
                    self.feed(key, Input::Answered(seq, result)).await;
                }
                _ = tokio::time::sleep_until(sleep_until.into()) => self.fire_due().await,
                _ = tick(&mut keepalive) => self.send_keepalive().await,
            }
        }
    }

    fn keepalive_interval(&self) -> Option<tokio::time::Interval> {
        (self.cfg.options_keepalive_seconds > 0)
            .then(|| tokio::time::interval(Duration::from_secs(self.cfg.options_keepalive_seconds)))
    }

    async fn send_keepalive(&self) {
        let host = self.cfg.trunk_host();
        let h = vec![
            msg::header(
                "Via",
                format!(
                    "SIP/2.0/UDP {};branch=z9hG4bK{};rport",
                    self.cfg.sip_public(),
                    msg::token()
                ),
            ),
            msg::header("Max-Forwards", "70"),
            msg::header(
                "From",
                format!("<sip:{}@{host}>;tag={}", self.cfg.caller_id, msg::token()),
            ),
            msg::header("To", format!("<sip:{host}>")),
            msg::header("Call-ID", format!("{}@ringledger", msg::token())),
            msg::header("CSeq", "1 OPTIONS"),
        ];
        if let Ok(req) = msg::request(rsip::Method::Options, &format!("sip:{host}"), h, Vec::new()) {
            let _ = self
                .sip
                .send_to(req.to_string().as_bytes(), self.cfg.trunk_addr)
                .await;
            metrics::counter!("media_sip_keepalives_total").increment(1);
        }
    }

    async fn on_event(&mut self, ev: NodeEvent) {
        match ev {
            NodeEvent::Place(p, reply) => {
                let r = self.place(p).await;
                let _ = reply.send(r);
            }
            NodeEvent::Started(key, r) => self.feed(key, Input::Started(r)).await,
            NodeEvent::Answered(key, seq, r) => self.feed(key, Input::Answered(seq, r)).await,
            NodeEvent::ApiHangup(call_id, reason, reply) => {
                let key = self.by_call.get(&call_id).copied();
                let known = key.is_some_and(|k| self.calls.get(&k).is_some_and(|e| !e.call.is_ended()));
                let _ = reply.send(known);
                if let Some(k) = key {
                    self.feed(k, Input::ApiHangup(reason)).await;
                }
            }
            NodeEvent::CallerHangup(key) => self.feed(key, Input::CallerHangup).await,
            NodeEvent::Drain => {
                self.draining = true;
                let tx = self.tx.clone();
                let keys: Vec<u64> = self.calls.keys().copied().collect();
                let wait = Duration::from_secs(self.cfg.drain_seconds);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    for k in keys {
                        let _ = tx.send(NodeEvent::DrainOver(k)).await;
                    }
                });
            }
            NodeEvent::Count(reply) => {
                let _ = reply.send(self.calls.len());
            }
            NodeEvent::DrainOver(k) => self.feed(k, Input::ApiHangup(HangupReason::Admin)).await,
        }
    }

    async fn place(&mut self, p: Place) -> Result<u64, String> {
        if self.draining {
            return Err("this node is draining; place the call on another node".into());
        }
        if self.calls.len() >= self.cfg.max_calls as usize {
            return Err(format!("this node is at max_calls ({})", self.cfg.max_calls));
        }
        let rtp = session::open(self.cfg.media_ip, self.ports.clone(), p.source, None)
            .await
            .map_err(|e| e.to_string())?;
        let key = self.next_key;
        self.next_key += 1;
        let setup = CallSetup {
            destination: p.destination,
            call_token: p.call_token,
            quote_id: p.quote_id,
            leg_id: format!("{}-{key}", self.cfg.node_id),
            leg: LegConfig {
                local: self.cfg.sip_public(),
                trunk_host: self.cfg.trunk_host(),
                caller_id: self.cfg.caller_id.clone(),
                credentials: self
                    .cfg
                    .trunk_username
                    .clone()
                    .zip(self.cfg.trunk_password.as_ref().map(|s| s.expose().to_string())),
                timers: self.cfg.timers(),
                user_agent: format!("ringledger-media/{}", env!("CARGO_PKG_VERSION")),
            },
            media: LocalMedia {
                address: self.cfg.media_ip,
                rtp_port: rtp.rtp_port,
                codecs: self.cfg.codec_list(),
                telephone_event: Some(self.cfg.telephone_event_payload_type),
                direction: Direction::SendRecv,
                session_id: rand::random::<u32>().into(),
                version: 1,
            },
        };
        let sent_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (call, out) = Call::new(setup, sent_at);
        self.calls.insert(
            key,
            Entry {
                call,
                peer: None,
                rtp,
                reporter: None,
                notices: p.notices,
            },
        );
        metrics::counter!("media_calls_placed_total").increment(1);
        metrics::gauge!("media_active_calls").set(self.calls.len() as f64);
        self.apply(key, out).await;
        Ok(key)
    }

    async fn feed(&mut self, key: u64, input: Input) {
        let now = self.now_ms();
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        let out = entry.call.handle(now, input);
        self.apply(key, out).await;
    }

    async fn fire_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, key, timer))) = self.heap.peek().copied() {
            if at > now {
                break;
            }
            self.heap.pop();
            // A timer re-armed later has a newer deadline: this entry is stale.
            if self.deadlines.get(&(key, timer)) != Some(&at) {
                continue;
            }
            self.deadlines.remove(&(key, timer));
            self.feed(key, Input::Timer(timer)).await;
        }
    }

    async fn on_datagram(&mut self, bytes: &[u8], from: SocketAddr) {
        let Ok(message) = msg::parse(bytes) else {
            metrics::counter!("media_sip_malformed_total").increment(1);
            return;
        };
        let headers = match &message {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        };
        let key = msg::call_id(headers).and_then(|id| self.by_sip.get(&id).copied());
        match (key, message) {
            (Some(k), m) => {
                if let (Some(e), SipMessage::Request(_)) = (self.calls.get_mut(&k), &m) {
                    e.peer = Some(from);
                }
                self.feed(k, Input::Sip(m)).await
            }
            (None, SipMessage::Request(req)) => self.stray_request(req, from).await,
            (None, SipMessage::Response(_)) => {} // e.g. the keepalive's 200
        }
    }

    /// Out-of-dialog requests: OPTIONS answered, a new INVITE refused, the rest 481.
    async fn stray_request(&self, req: rsip::Request, from: SocketAddr) {
        let status = match req.method {
            rsip::Method::Ack => return,
            rsip::Method::Options => 200,
            rsip::Method::Invite => 403,
            _ => 481,
        };
        let resp = msg::response(&req, status, &msg::token(), Vec::new(), Vec::new());
        let _ = self.sip.send_to(resp.to_string().as_bytes(), from).await;
    }

    async fn apply(&mut self, key: u64, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Start(body) => {
                    let client = self.metering.clone();
                    let tx = self.tx.clone();
                    tokio::spawn(async move {
                        let r = client.start(&body).await;
                        let _ = tx.send(NodeEvent::Started(key, r)).await;
                    });
                }
                Output::Meter(report) => self.meter(key, report),
                Output::Send(m) => {
                    let _ = self
                        .sip
                        .send_to(m.to_string().as_bytes(), self.cfg.trunk_addr)
                        .await;
                }
                Output::Arm(timer, after) => {
                    let at = Instant::now() + after;
                    self.deadlines.insert((key, timer), at);
                    self.heap.push(Reverse((at, key, timer)));
                }
                Output::Media(cmd) => self.media(key, cmd).await,
                Output::Notice(n) => self.notice(key, n).await,
            }
        }
        self.index_and_reap(key);
    }

    fn meter(&mut self, key: u64, mut report: Report) {
        let Some(entry) = self.calls.get_mut(&key) else {
            return;
        };
        if let Report::Stop { quality, .. } = &mut report {
            let trunk = entry.rtp.quality();
            // No browser leg yet (part 2): the browser side reports zeros.
            let none = LegQuality {
                rtt_ms: 0,
                jitter_ms: 0,
                loss_per_mille: 0,
            };
            *quality = Some(CallQuality { browser: none, trunk });
        }
        let tx = self.answers_tx.clone();
        let reporter = entry
            .reporter
            .get_or_insert_with(|| self.metering.reporter(key, tx));
        let _ = reporter.send(Some(report));
    }

    async fn media(&mut self, key: u64, cmd: MediaCommand) {
        let Some(entry) = self.calls.get(&key) else { return };
        let c = match cmd {
            MediaCommand::Connect { remote, codec } => MediaCmd::Connect {
                remote: RtpSession::remote_for(&remote),
                codec,
                telephone_event: remote.telephone_event,
            },
            MediaCommand::Hold(h) => MediaCmd::Hold(h),
            MediaCommand::WarningTone => MediaCmd::WarningTone,
            MediaCommand::Stop => MediaCmd::Stop,
        };
        let _ = entry.rtp.commands.send(c).await;
    }

    async fn notice(&mut self, key: u64, n: Notice) {
        let Some(entry) = self.calls.get(&key) else { return };
        let leg = entry.call.leg_id().to_string();
        match &n {
            Notice::Denied { code, .. } => {
                tracing::info!(leg_id = %leg, code = %code, "call denied by the api");
                metrics::counter!("media_calls_denied_total").increment(1);
            }
            Notice::Failed { cause, sip_status } => {
                tracing::info!(leg_id = %leg, ?cause, ?sip_status, "call failed");
                metrics::counter!("media_calls_failed_total").increment(1);
            }
            Notice::Ended { cause, talk_ms } => {
                tracing::info!(leg_id = %leg, ?cause, talk_ms, "call ended");
                metrics::counter!("media_calls_ended_total").increment(1);
            }
            Notice::Answered => tracing::info!(leg_id = %leg, "call answered"),
            Notice::Ringing => tracing::debug!(leg_id = %leg, "ringing"),
            Notice::Held(h) => tracing::info!(leg_id = %leg, hold = h, "trunk re-INVITE"),
            Notice::Granted { .. } | Notice::Media { .. } => {}
        }
        if let Some(tx) = &entry.notices {
            if matches!(n, Notice::Ended { .. } | Notice::Failed { .. }) {
                let (sent_packets, received_packets) = entry
                    .rtp
                    .shared
                    .lock()
                    .map(|s| (s.sent_packets, s.recv.received()))
                    .unwrap_or((0, 0));
                let _ = tx.try_send(Notice::Media {
                    sent_packets,
                    received_packets,
                });
            }
            let _ = tx.try_send(n);
        }
    }

    /// Indexes a call by its ids once known; forgets it once it is finished.
    fn index_and_reap(&mut self, key: u64) {
        let Some(entry) = self.calls.get(&key) else { return };
        if let Some(id) = entry.call.sip_call_id() {
            self.by_sip.entry(id.to_string()).or_insert(key);
        }
        if let Some(id) = entry.call.call_id() {
            self.by_call.entry(id).or_insert(key);
        }
        if entry.call.is_finished() {
            if let Some(e) = self.calls.remove(&key) {
                let _ = e.rtp.commands.try_send(MediaCmd::Stop);
                if let Some(id) = e.call.sip_call_id() {
                    self.by_sip.remove(id);
                }
                if let Some(id) = e.call.call_id() {
                    self.by_call.remove(&id);
                }
            }
            self.deadlines.retain(|(k, _), _| *k != key);
            metrics::gauge!("media_active_calls").set(self.calls.len() as f64);
        }
    }
}

async fn tick(interval: &mut Option<tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}
