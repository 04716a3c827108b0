//! One call's RTP/RTCP toward the trunk: a socket pair (even RTP port, RTCP on the next) from
//! the configured range, 20 ms packets from a source (a tone for `dial`, the peer's own audio
//! for the simulated trunk's echo), SR/RR every 5 s, receive statistics, and RFC 4733 events
//! passed on. Runs as one tokio task; commands arrive on a bounded channel.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ringledger_domain::call::LegQuality;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::g711::{encode, Tone};
use super::packet::{is_rtcp, parse_rtcp, parse_rtp, write_report, write_rtp, RtpHeader, TelephoneEvent};
use super::stats::ReceiveStats;
use crate::sip::sdp::{Codec, RemoteMedia};

/// What the session sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    /// A sine tone at this frequency (the `dial` command's generated call audio).
    Tone(f32),
    /// The peer's audio sent back (the simulated trunk).
    Echo,
    Silence,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MediaCmd {
    Connect {
        remote: SocketAddr,
        codec: Codec,
        telephone_event: Option<u8>,
    },
    Hold(bool),
    /// One second of 440 Hz over the source.
    WarningTone,
    Stop,
}

/// Counters the driver reads at `stop`.
#[derive(Debug, Default)]
pub struct Shared {
    pub recv: ReceiveStats,
    pub sent_packets: u32,
    pub sent_octets: u32,
    pub received_events: Vec<char>,
}

/// Even ports of the configured range, handed out and returned.
#[derive(Debug)]
pub struct PortPool {
    free: Mutex<BTreeSet<u16>>,
}

impl PortPool {
    pub fn new(min: u16, max: u16) -> Arc<PortPool> {
        let start = min + (min % 2);
        let free = (start..max).step_by(2).collect();
        Arc::new(PortPool {
            free: Mutex::new(free),
        })
    }

    fn take(&self) -> Option<u16> {
        let mut free = self.free.lock().ok()?;
        let p = *free.iter().next()?;
        free.remove(&p);
        Some(p)
    }

    fn give_back(&self, port: u16) {
        if let Ok(mut free) = self.free.lock() {
            free.insert(port);
        }
    }
}

/// A running session; dropping it does not stop the task: send `Stop`.
pub struct RtpSession {
    pub rtp_port: u16,
    pub commands: mpsc::Sender<MediaCmd>,
    pub shared: Arc<Mutex<Shared>>,
}

impl RtpSession {
    pub fn quality(&self) -> LegQuality {
        self.shared
            .lock()
            .map(|s| s.recv.quality())
            .unwrap_or(LegQuality {
                rtt_ms: 0,
                jitter_ms: 0,
                loss_per_mille: 0,
            })
    }

    pub fn remote_for(media: &RemoteMedia) -> SocketAddr {
        SocketAddr::new(media.address, media.rtp_port)
    }
}

/// Opens a socket pair from the pool and starts the task. `events` receives telephone-event
/// keys as they end (bounded; a full channel drops the key rather than block media).
pub async fn open(
    ip: IpAddr,
    pool: Arc<PortPool>,
    source: Source,
    events: Option<mpsc::Sender<char>>,
) -> std::io::Result<RtpSession> {
    for _ in 0..64 {
        let Some(port) = pool.take() else { break };
        let rtp = UdpSocket::bind(SocketAddr::new(ip, port)).await;
        let rtcp = UdpSocket::bind(SocketAddr::new(ip, port + 1)).await;
        match (rtp, rtcp) {
            (Ok(rtp), Ok(rtcp)) => {
                let (tx, rx) = mpsc::channel(16);
                let shared = Arc::new(Mutex::new(Shared::default()));
                let task = Task::new(rtp, rtcp, source, shared.clone(), events);
                let pool = pool.clone();
                tokio::spawn(async move {
                    task.run(rx).await;
                    pool.give_back(port);
                });
                return Ok(RtpSession {
                    rtp_port: port,
                    commands: tx,
                    shared,
                });
            }
            _ => continue, // taken by someone else: try the next pair
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        "no free RTP port pair in the configured range (rtp_port_min..rtp_port_max)",
    ))
}

/// NTP time (RFC 5905): seconds since 1900 and fraction.
fn ntp_now() -> u64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

fn mid32(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

struct Task {
    rtp: UdpSocket,
    rtcp: UdpSocket,
    source: Source,
    shared: Arc<Mutex<Shared>>,
    events: Option<mpsc::Sender<char>>,
    remote: Option<(SocketAddr, Codec, Option<u8>)>,
    held: bool,
    warning_frames: u32,
    tone: Tone,
    warning: Tone,
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    started: Instant,
    last_event_ts: Option<u32>,
}

impl Task {
    fn new(
        rtp: UdpSocket,
        rtcp: UdpSocket,
        source: Source,
        shared: Arc<Mutex<Shared>>,
        events: Option<mpsc::Sender<char>>,
    ) -> Task {
        let freq = match source {
            Source::Tone(f) => f,
            _ => 0.0,
        };
        Task {
            rtp,
            rtcp,
            source,
            shared,
            events,
            remote: None,
            held: false,
            warning_frames: 0,
            tone: Tone::new(freq, 6000),
            warning: Tone::new(440.0, 8000),
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            started: Instant::now(),
            last_event_ts: None,
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<MediaCmd>) {
        let mut frame = tokio::time::interval(Duration::from_millis(20));
        let mut report = tokio::time::interval(Duration::from_secs(5));
        let mut buf = vec![0u8; 2048];
        let mut rbuf = vec![0u8; 2048];
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(MediaCmd::Stop) => break,
                    Some(MediaCmd::Connect { remote, codec, telephone_event }) => {
                        self.remote = Some((remote, codec, telephone_event));
                    }
                    Some(MediaCmd::Hold(h)) => self.held = h,
                    Some(MediaCmd::WarningTone) => self.warning_frames = 50,
                },
                got = self.rtp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = got {
                        self.on_rtp(&buf[..n], from).await;
                    }
                }
                got = self.rtcp.recv_from(&mut rbuf) => {
                    if let Ok((n, _)) = got {
                        self.on_rtcp(&rbuf[..n]);
                    }
                }
                _ = frame.tick() => self.send_frame(None).await,
                _ = report.tick() => self.send_report().await,
            }
        }
        self.send_report().await;
    }

    fn arrival_ts(&self) -> u32 {
        (self.started.elapsed().as_micros() / 125) as u32
    }

    async fn on_rtp(&mut self, datagram: &[u8], _from: SocketAddr) {
        if is_rtcp(datagram) {
            self.on_rtcp(datagram);
            return;
        }
        let Some((h, payload)) = parse_rtp(datagram) else {
            return;
        };
        let arrival = self.arrival_ts();
        let te = self.remote.and_then(|r| r.2);
        if let Ok(mut s) = self.shared.lock() {
            s.recv.on_packet(&h, arrival);
        }
        if te == Some(h.payload_type) || (te.is_none() && h.payload_type >= 96) {
            if let Some(ev) = TelephoneEvent::parse(payload) {
                // The end packet is sent three times (RFC 4733 §2.5.1.4): pass the key once.
                if ev.end && self.last_event_ts != Some(h.timestamp) {
                    self.last_event_ts = Some(h.timestamp);
                    if let Ok(mut s) = self.shared.lock() {
                        if s.received_events.len() < 256 {
                            s.received_events.push(ev.symbol());
                        }
                    }
                    if let Some(tx) = &self.events {
                        let _ = tx.try_send(ev.symbol());
                    }
                }
            }
            return;
        }
        if self.source == Source::Echo {
            let payload = payload.to_vec();
            self.send_frame(Some(payload)).await;
        }
    }

    fn on_rtcp(&mut self, datagram: &[u8]) {
        let Some(info) = parse_rtcp(datagram) else { return };
        let now = mid32(ntp_now());
        if let Ok(mut s) = self.shared.lock() {
            if let Some((_, ntp_mid)) = info.sender_report {
                s.recv.on_sender_report(ntp_mid, now);
            }
            for b in info.blocks.iter().filter(|b| b.ssrc == self.ssrc) {
                s.recv.on_report_block(b, now);
            }
        }
    }

    /// Sends one 20 ms frame: `echo` payload, or the source; nothing while held.
    async fn send_frame(&mut self, echo: Option<Vec<u8>>) {
        let Some((remote, codec, _)) = self.remote else {
            return;
        };
        if self.held {
            return;
        }
        let mut payload = Vec::with_capacity(160);
        if self.warning_frames > 0 {
            self.warning_frames -= 1;
            encode(codec, &self.warning.frame(), &mut payload);
        } else if let Some(p) = echo {
            payload = p;
        } else {
            match self.source {
                Source::Tone(_) => encode(codec, &self.tone.frame(), &mut payload),
                Source::Silence => encode(codec, &[0i16; 160], &mut payload),
                Source::Echo => return, // echo sends only what it receives
            }
        }
        let h = RtpHeader {
            payload_type: codec.payload_type(),
            marker: false,
            seq: self.seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(payload.len() as u32);
        let mut out = Vec::with_capacity(12 + payload.len());
        write_rtp(&h, &payload, &mut out);
        if self.rtp.send_to(&out, remote).await.is_ok() {
            if let Ok(mut s) = self.shared.lock() {
                s.sent_packets = s.sent_packets.wrapping_add(1);
                s.sent_octets = s.sent_octets.wrapping_add(payload.len() as u32);
            }
        }
    }

    async fn send_report(&mut self) {
        let Some((remote, _, _)) = self.remote else { return };
        let ntp = ntp_now();
        let (block, sender) = match self.shared.lock() {
            Ok(mut s) => {
                let block = s.recv.report_block(mid32(ntp));
                let sender =
                    (s.sent_packets > 0).then_some((ntp, self.timestamp, s.sent_packets, s.sent_octets));
                (block, sender)
            }
            Err(_) => return,
        };
        let mut out = Vec::with_capacity(64);
        write_report(self.ssrc, sender, block, &mut out);
        let rtcp_addr = SocketAddr::new(remote.ip(), remote.port().wrapping_add(1));
        let _ = self.rtcp.send_to(&out, rtcp_addr).await;
    }
}
