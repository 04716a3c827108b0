//! `ringledger-media trunk-sim`: a simulated SIP trunk (a UAS) for local runs and tests. It
//! answers after a configurable ring and echoes the caller's audio (or plays a tone); the
//! number's last digits choose other behaviour (docs/media.md has the table): busy (…486),
//! no answer (…480, …408 after ringing), invalid (…404, …484), rings forever (…000), or
//! answers and hangs up after NN seconds (…99NN). Built on the same transaction machines.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rsip::{Method, SipMessage};
use tokio::net::UdpSocket;

use crate::rtp::session::{self, MediaCmd, PortPool, RtpSession, Source};
use crate::sip::client_tx::{ClientAction, NonInviteClient};
use crate::sip::msg::{self, header};
use crate::sip::sdp::{Codec, Direction, LocalMedia, RemoteMedia};
use crate::sip::server_tx::{InviteServer, ServerAction};
use crate::sip::timers::{Timer, Timers};

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// SIP address to listen on.
    #[arg(long, default_value = "127.0.0.1:5060")]
    pub listen: SocketAddr,
    /// How long calls ring before they are answered (or refused with 480/408).
    #[arg(long, default_value_t = 2000)]
    pub ring_ms: u64,
    /// `echo` the caller's audio back, or play a `tone`.
    #[arg(long, default_value = "echo")]
    pub audio: String,
    /// Address RTP binds to and offers.
    #[arg(long, default_value = "127.0.0.1")]
    pub media_ip: IpAddr,
    #[arg(long, default_value_t = 41000)]
    pub rtp_port_min: u16,
    #[arg(long, default_value_t = 41999)]
    pub rtp_port_max: u16,
}

/// What the simulated trunk does with a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Answer,
    AnswerThenHangup(u64),
    RingThenFail(u16),
    Refuse(u16),
    RingForever,
}

impl Plan {
    pub fn for_number(digits: &str) -> Plan {
        let tail = |n: usize| digits.get(digits.len().saturating_sub(n)..).unwrap_or("");
        match tail(3) {
            "486" => return Plan::Refuse(486),
            "404" => return Plan::Refuse(404),
            "484" => return Plan::Refuse(484),
            "480" => return Plan::RingThenFail(480),
            "408" => return Plan::RingThenFail(408),
            "000" => return Plan::RingForever,
            _ => {}
        }
        let t4 = tail(4);
        if let Some(nn) = t4.strip_prefix("99").and_then(|n| n.parse::<u64>().ok()) {
            return Plan::AnswerThenHangup(nn.max(1));
        }
        Plan::Answer
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SimTimer {
    Ring,
    Invite(Timer),
    Bye(Timer),
    HangUp,
}

struct Dialog {
    peer: SocketAddr,
    invite: rsip::Request,
    tx: InviteServer,
    last: Option<rsip::Response>,
    tag: String,
    plan: Plan,
    rtp: Option<RtpSession>,
    local: Option<LocalMedia>,
    bye: Option<(rsip::Request, NonInviteClient)>,
    done: bool,
}

pub struct TrunkSim {
    args: SimArgs,
    sock: Arc<UdpSocket>,
    ports: Arc<PortPool>,
    timers: Timers,
    dialogs: HashMap<String, Dialog>,
    heap: BinaryHeap<Reverse<(Instant, String, SimTimer)>>,
    deadlines: HashMap<(String, SimTimer), Instant>,
}

impl TrunkSim {
    pub async fn bind(mut args: SimArgs) -> std::io::Result<TrunkSim> {
        let sock = UdpSocket::bind(args.listen).await?;
        args.listen = sock.local_addr()?; // port 0 becomes the real one (Contact, Via)
        Ok(TrunkSim {
            ports: PortPool::new(args.rtp_port_min, args.rtp_port_max),
            args,
            sock: Arc::new(sock),
            timers: Timers::default(),
            dialogs: HashMap::new(),
            heap: BinaryHeap::new(),
            deadlines: HashMap::new(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    pub async fn run(mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; 65_535];
        loop {
            let next = self.heap.peek().map(|Reverse((at, _, _))| *at);
            let until = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                got = self.sock.recv_from(&mut buf) => {
                    let (n, from) = got?;
                    if let Ok(m) = msg::parse(&buf[..n]) {
                        self.on_message(m, from).await;
                    }
                }
                _ = tokio::time::sleep_until(until.into()) => self.fire().await,
            }
        }
    }

    fn arm(&mut self, id: &str, t: SimTimer, after: Duration) {
        let at = Instant::now() + after;
        self.deadlines.insert((id.to_string(), t), at);
        self.heap.push(Reverse((at, id.to_string(), t)));
    }

    async fn fire(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, id, t))) = self.heap.peek().cloned() {
            if at > now {
                break;
            }
            self.heap.pop();
            if self.deadlines.get(&(id.clone(), t)) != Some(&at) {
                continue;
            }
            self.deadlines.remove(&(id.clone(), t));
            self.on_timer(&id, t).await;
        }
    }

    async fn send(&self, m: impl Into<SipMessage>, to: SocketAddr) {
        let _ = self.sock.send_to(m.into().to_string().as_bytes(), to).await;
    }

    async fn on_message(&mut self, m: SipMessage, from: SocketAddr) {
        match m {
            SipMessage::Request(r) => self.on_request(r, from).await,
            SipMessage::Response(r) => self.on_response(r).await,
        }
    }

    async fn on_request(&mut self, req: rsip::Request, from: SocketAddr) {
        let Some(id) = msg::call_id(&req.headers) else {
            return;
        };
        let Some((seq, method)) = msg::cseq(&req.headers) else {
            return;
        };
        let known = self.dialogs.contains_key(&id);
        match method.as_str() {
            "INVITE" if !known => self.new_call(id, req, from).await,
            "INVITE" => {
                let first_seq = self
                    .dialogs
                    .get(&id)
                    .and_then(|d| msg::cseq(&d.invite.headers))
                    .map(|c| c.0);
                if first_seq == Some(seq) {
                    let a = self
                        .dialogs
                        .get_mut(&id)
                        .map(|d| d.tx.on_retransmission())
                        .unwrap_or_default();
                    self.run_invite(&id, a).await;
                } else {
                    self.reinvite(&id, &req, from).await;
                }
            }
            "ACK" => {
                let a = self
                    .dialogs
                    .get_mut(&id)
                    .map(|d| d.tx.on_ack())
                    .unwrap_or_default();
                self.run_invite(&id, a).await;
            }
            "CANCEL" => {
                let status = if known { 200 } else { 481 };
                self.send(msg::response(&req, status, &msg::token(), vec![], vec![]), from)
                    .await;
                self.finish_invite(&id, 487).await;
            }
            "BYE" => {
                let tag = self.dialogs.get(&id).map(|d| d.tag.clone()).unwrap_or_default();
                let status = if known { 200 } else { 481 };
                self.send(msg::response(&req, status, &tag, vec![], vec![]), from)
                    .await;
                if let Some(d) = self.dialogs.get_mut(&id) {
                    d.done = true;
                    if let Some(rtp) = d.rtp.take() {
                        let _ = rtp.commands.send(MediaCmd::Stop).await;
                    }
                }
            }
            _ => {
                let allow = header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
                let status = if method == "OPTIONS" { 200 } else { 405 };
                self.send(
                    msg::response(&req, status, &msg::token(), vec![allow], vec![]),
                    from,
                )
                .await;
            }
        }
    }

    async fn new_call(&mut self, id: String, req: rsip::Request, from: SocketAddr) {
        let user = msg::uri_of(&req.uri.to_string());
        let digits: String = user
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("")
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        let plan = Plan::for_number(&digits);
        let mut d = Dialog {
            peer: from,
            invite: req,
            tx: InviteServer::new(self.timers),
            last: None,
            tag: msg::token(),
            plan,
            rtp: None,
            local: None,
            bye: None,
            done: false,
        };
        d.last = Some(msg::response(&d.invite, 100, &d.tag, vec![], vec![]));
        let a = d.tx.respond(100);
        self.dialogs.insert(id.clone(), d);
        self.run_invite(&id, a).await;
        match plan {
            Plan::Refuse(status) => self.finish_invite(&id, status).await,
            _ => {
                self.provisional(&id, 180).await;
                if plan != Plan::RingForever {
                    self.arm(&id, SimTimer::Ring, Duration::from_millis(self.args.ring_ms));
                }
            }
        }
    }

    async fn provisional(&mut self, id: &str, status: u16) {
        let Some(d) = self.dialogs.get_mut(id) else { return };
        d.last = Some(msg::response(&d.invite, status, &d.tag, vec![], vec![]));
        let a = d.tx.respond(status);
        self.run_invite(id, a).await;
    }

    /// A final response to the INVITE (no-op once it has one).
    async fn finish_invite(&mut self, id: &str, status: u16) {
        let Some(d) = self.dialogs.get_mut(id) else { return };
        if !matches!(
            d.tx.state(),
            crate::sip::server_tx::ServerState::Trying | crate::sip::server_tx::ServerState::Proceeding
        ) {
            return;
        }
        d.last = Some(msg::response(&d.invite, status, &d.tag, vec![], vec![]));
        d.done = status >= 300;
        let a = d.tx.respond(status);
        self.run_invite(id, a).await;
    }

    async fn answer(&mut self, id: &str) {
        let source = if self.args.audio == "tone" {
            Source::Tone(425.0)
        } else {
            Source::Echo
        };
        let rtp = match session::open(self.args.media_ip, self.ports.clone(), source, None).await {
            Ok(r) => r,
            Err(_) => return self.finish_invite(id, 503).await,
        };
        let Some(d) = self.dialogs.get_mut(id) else { return };
        let offer = RemoteMedia::parse(&String::from_utf8_lossy(&d.invite.body));
        let Ok(offer) = offer else {
            return self.finish_invite(id, 488).await;
        };
        let Ok(codec) = offer.choose(&[Codec::Pcmu, Codec::Pcma]) else {
            return self.finish_invite(id, 488).await;
        };
        let local = LocalMedia {
            address: self.args.media_ip,
            rtp_port: rtp.rtp_port,
            codecs: vec![codec],
            telephone_event: offer.telephone_event,
            direction: Direction::SendRecv,
            session_id: rand::random::<u32>().into(),
            version: 1,
        };
        let _ = rtp
            .commands
            .send(MediaCmd::Connect {
                remote: RtpSession::remote_for(&offer),
                codec,
                telephone_event: offer.telephone_event,
            })
            .await;
        let contact = header("Contact", format!("<sip:trunk@{}>", self.args.listen));
        d.last = Some(msg::response(
            &d.invite,
            200,
            &d.tag,
            vec![contact],
            local.to_sdp().into_bytes(),
        ));
        d.local = Some(local);
        d.rtp = Some(rtp);
        let plan = d.plan;
        let a = d.tx.respond(200);
        self.run_invite(id, a).await;
        if let Plan::AnswerThenHangup(secs) = plan {
            self.arm(id, SimTimer::HangUp, Duration::from_secs(secs));
        }
    }

    async fn reinvite(&mut self, id: &str, req: &rsip::Request, from: SocketAddr) {
        let Some(d) = self.dialogs.get_mut(id) else { return };
        let Some(mut local) = d.local.clone() else {
            let resp = msg::response(req, 491, &d.tag, vec![], vec![]);
            self.send(resp, from).await;
            return;
        };
        if let Ok(offer) = RemoteMedia::parse(&String::from_utf8_lossy(&req.body)) {
            local.direction = offer.direction.answer();
        }
        local.version += 1;
        d.local = Some(local.clone());
        let resp = msg::response(req, 200, &d.tag, vec![], local.to_sdp().into_bytes());
        let _ = d;
        self.send(resp, from).await;
    }

    async fn run_invite(&mut self, id: &str, actions: Vec<ServerAction>) {
        for a in actions {
            match a {
                ServerAction::Send | ServerAction::Resend => {
                    if let Some(d) = self.dialogs.get(id) {
                        if let Some(r) = d.last.clone() {
                            self.send(r, d.peer).await;
                        }
                    }
                }
                ServerAction::Arm(t, after) => self.arm(id, SimTimer::Invite(t), after),
                ServerAction::AckTimedOut => {}
                ServerAction::Terminated => self.reap(id),
            }
        }
    }

    async fn on_timer(&mut self, id: &str, t: SimTimer) {
        match t {
            SimTimer::Ring => match self.dialogs.get(id).map(|d| d.plan) {
                Some(Plan::RingThenFail(status)) => self.finish_invite(id, status).await,
                Some(_) => self.answer(id).await,
                None => {}
            },
            SimTimer::Invite(timer) => {
                let a = self
                    .dialogs
                    .get_mut(id)
                    .map(|d| d.tx.on_timer(timer))
                    .unwrap_or_default();
                self.run_invite(id, a).await;
            }
            SimTimer::HangUp => self.hang_up(id).await,
            SimTimer::Bye(timer) => {
                let a = self
                    .dialogs
                    .get_mut(id)
                    .and_then(|d| d.bye.as_mut())
                    .map(|(_, tx)| tx.on_timer(timer))
                    .unwrap_or_default();
                self.run_bye(id, a).await;
            }
        }
    }

    async fn hang_up(&mut self, id: &str) {
        let Some(d) = self.dialogs.get_mut(id) else { return };
        if d.done {
            return;
        }
        d.done = true;
        let from = msg::value(&d.invite.headers, "From").unwrap_or_default();
        let to = msg::value(&d.invite.headers, "To").unwrap_or_default();
        let target = msg::value(&d.invite.headers, "Contact")
            .map(|c| msg::uri_of(&c))
            .unwrap_or_default();
        let h = vec![
            header(
                "Via",
                format!("SIP/2.0/UDP {};branch=z9hG4bK{}", self.args.listen, msg::token()),
            ),
            header("Max-Forwards", "70"),
            header("From", format!("{to};tag={}", d.tag)),
            header("To", from),
            header("Call-ID", msg::call_id(&d.invite.headers).unwrap_or_default()),
            header("CSeq", "1 BYE"),
        ];
        let Ok(bye) = msg::request(Method::Bye, &target, h, Vec::new()) else {
            return;
        };
        if let Some(rtp) = d.rtp.take() {
            let _ = rtp.commands.send(MediaCmd::Stop).await;
        }
        let (tx, a) = NonInviteClient::start(self.timers);
        d.bye = Some((bye, tx));
        self.run_bye(id, a).await;
    }

    async fn run_bye(&mut self, id: &str, actions: Vec<ClientAction>) {
        for a in actions {
            match a {
                ClientAction::Transmit => {
                    if let Some(d) = self.dialogs.get(id) {
                        if let Some((r, _)) = &d.bye {
                            self.send(r.clone(), d.peer).await;
                        }
                    }
                }
                ClientAction::Arm(t, after) => self.arm(id, SimTimer::Bye(t), after),
                ClientAction::Terminated => {
                    if let Some(d) = self.dialogs.get_mut(id) {
                        d.bye = None;
                    }
                    self.reap(id);
                }
                _ => {}
            }
        }
    }

    async fn on_response(&mut self, resp: rsip::Response) {
        let Some(id) = msg::call_id(&resp.headers) else {
            return;
        };
        let status = resp.status_code.code();
        let a = self
            .dialogs
            .get_mut(&id)
            .and_then(|d| d.bye.as_mut())
            .map(|(_, tx)| tx.on_response(status))
            .unwrap_or_default();
        self.run_bye(&id, a).await;
    }

    /// Forgets a dialog once over and idle (the INVITE transaction may have ended long ago).
    fn reap(&mut self, id: &str) {
        let over = self.dialogs.get(id).is_some_and(|d| {
            d.done && d.bye.is_none() && d.tx.state() == crate::sip::server_tx::ServerState::Terminated
        });
        if over {
            self.dialogs.remove(id);
            self.deadlines.retain(|(k, _), _| k != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Plan;

    #[test]
    fn numbers_choose_the_behaviour() {
        assert_eq!(Plan::for_number("442079460486"), Plan::Refuse(486));
        assert_eq!(Plan::for_number("442079460480"), Plan::RingThenFail(480));
        assert_eq!(Plan::for_number("44207946099"), Plan::Answer);
        assert_eq!(Plan::for_number("442079469905"), Plan::AnswerThenHangup(5));
        assert_eq!(Plan::for_number("442079460000"), Plan::RingForever);
        assert_eq!(Plan::for_number("442079460958"), Plan::Answer);
    }
}
