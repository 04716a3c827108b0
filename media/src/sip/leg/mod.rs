//! The call leg toward the trunk: one outgoing INVITE dialog (RFC 3261 §12, §13, §15) with its
//! client transactions (INVITE, CANCEL, BYE) and the server transactions for what the trunk
//! sends inside it (BYE, re-INVITE for hold, OPTIONS). Sans-IO: parsed messages and fired
//! timers in; messages to send, timers to arm and events for the call logic out. It never
//! reads a clock, opens a socket, or logs a number.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use rsip::{Header, Method, SipMessage};

mod uas;

use super::client_tx::{ClientAction, InviteClient, NonInviteClient};
use super::digest::Challenge;
use super::msg::{self, header};
use super::sdp::{Codec, LocalMedia, RemoteMedia};
use super::server_tx::{InviteServer, NonInviteServer};
use super::timers::{Timer, Timers};

/// Where and as whom the leg calls.
#[derive(Debug, Clone)]
pub struct LegConfig {
    /// Our SIP address as the trunk reaches it (Via, Contact).
    pub local: SocketAddr,
    /// Host part of the request URI and To (the trunk's domain or address).
    pub trunk_host: String,
    /// User part of From (the caller id presented).
    pub caller_id: String,
    pub credentials: Option<(String, String)>,
    pub timers: Timers,
    pub user_agent: String,
}

/// A timer of this leg, as the driver must hand it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegTimer {
    /// The INVITE client transaction with this CSeq number (a challenged one lingers).
    Invite(u32, Timer),
    Cancel(Timer),
    Bye(Timer),
    /// A server transaction, by the trunk's CSeq number and whether it is an INVITE.
    Server(u32, bool, Timer),
}

/// What the call logic learns from the leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// First 180 or 183.
    Ringing,
    /// SDP in a provisional response (early media).
    EarlyMedia(RemoteMedia, Codec),
    Answered(RemoteMedia, Codec),
    /// The INVITE ended without a dialog: the final status, or `None` when it timed out.
    Failed(Option<u16>),
    /// The trunk re-INVITEd: `hold` when it stops listening.
    Hold {
        hold: bool,
        media: RemoteMedia,
    },
    /// The trunk hung up (its BYE was answered).
    RemoteBye,
    /// Our BYE completed (answered or timed out).
    ByeDone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegOutput {
    Send(SipMessage),
    Arm(LegTimer, Duration),
    Event(LegEvent),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Inviting,
    Early,
    Confirmed,
    Ending,
    Over,
}

#[derive(Debug)]
struct ServerTx {
    last: Option<rsip::Response>,
    invite: Option<InviteServer>,
    other: Option<NonInviteServer>,
}

/// One outgoing call's SIP dialog.
#[derive(Debug)]
pub struct Leg {
    cfg: LegConfig,
    phase: Phase,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    target: String,
    to_uri: String,
    route: Vec<String>,
    cseq: u32,
    media: LocalMedia,
    invite: Option<(rsip::Request, InviteClient)>,
    ack: Option<rsip::Request>,
    cancel: Option<(rsip::Request, NonInviteClient)>,
    cancel_wanted: bool,
    bye: Option<(rsip::Request, NonInviteClient)>,
    auth_tries: u8,
    /// INVITE transactions replaced after a challenge, until their timer D.
    spent: Vec<(rsip::Request, InviteClient)>,
    rang: bool,
    servers: BTreeMap<(u32, bool), ServerTx>,
}

/// Most authentication round trips per request before the call fails (a wrong password).
const MAX_AUTH_TRIES: u8 = 1;

impl Leg {
    /// Starts the call: sends the INVITE with `media` as the offer.
    pub fn invite(cfg: LegConfig, number: &str, media: LocalMedia) -> (Leg, Vec<LegOutput>) {
        let host = cfg.trunk_host.clone();
        let mut leg = Leg {
            call_id: format!("{}@ringledger", msg::token()),
            local_tag: msg::token(),
            remote_tag: None,
            target: format!("sip:{number}@{host}"),
            to_uri: format!("sip:{number}@{host}"),
            route: Vec::new(),
            cseq: 0,
            media,
            invite: None,
            ack: None,
            cancel: None,
            cancel_wanted: false,
            bye: None,
            auth_tries: 0,
            spent: Vec::new(),
            rang: false,
            servers: BTreeMap::new(),
            phase: Phase::Inviting,
            cfg,
        };
        let out = leg.send_invite(None);
        (leg, out)
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// True once the dialog is over and no transaction needs the leg any more.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Over
            && self.invite.is_none()
            && self.cancel.is_none()
            && self.bye.is_none()
            && self.spent.is_empty()
            && self.servers.is_empty()
    }

    pub fn is_over(&self) -> bool {
        self.phase == Phase::Over
    }

    fn local_from(&self) -> String {
        format!(
            "<sip:{}@{}>;tag={}",
            self.cfg.caller_id, self.cfg.trunk_host, self.local_tag
        )
    }

    fn to_value(&self) -> String {
        match &self.remote_tag {
            Some(t) => format!("<{}>;tag={t}", self.to_uri),
            None => format!("<{}>", self.to_uri),
        }
    }

    fn via(&self, branch: &str) -> Header {
        header(
            "Via",
            format!("SIP/2.0/UDP {};branch={branch};rport", self.cfg.local),
        )
    }

    fn base(&self, branch: &str, seq: u32, method: &str) -> Vec<Header> {
        let mut h = vec![self.via(branch), header("Max-Forwards", "70")];
        h.extend(self.route.iter().map(|r| header("Route", r.clone())));
        h.push(header("From", self.local_from()));
        h.push(header("To", self.to_value()));
        h.push(header("Call-ID", self.call_id.clone()));
        h.push(header("CSeq", format!("{seq} {method}")));
        h
    }

    fn contact(&self) -> Header {
        header(
            "Contact",
            format!("<sip:{}@{}>", self.cfg.caller_id, self.cfg.local),
        )
    }

    fn send_invite(&mut self, auth: Option<Header>) -> Vec<LegOutput> {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", msg::token());
        let mut h = self.base(&branch, self.cseq, "INVITE");
        h.push(self.contact());
        h.push(header("User-Agent", self.cfg.user_agent.clone()));
        h.push(header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"));
        h.extend(auth);
        let body = self.media.to_sdp().into_bytes();
        let Ok(req) = msg::request(Method::Invite, &self.target, h, body) else {
            self.phase = Phase::Over;
            return vec![LegOutput::Event(LegEvent::Failed(None))];
        };
        let (tx, actions) = InviteClient::start(self.cfg.timers);
        self.invite = Some((req, tx));
        self.run_invite(actions, None)
    }

    /// Ends the call from our side: CANCEL while early, BYE once confirmed.
    pub fn hangup(&mut self) -> Vec<LegOutput> {
        match self.phase {
            Phase::Inviting => {
                // §9.1: no CANCEL before a provisional response; send it when one arrives.
                self.cancel_wanted = true;
                Vec::new()
            }
            Phase::Early => {
                self.cancel_wanted = true;
                self.send_cancel()
            }
            Phase::Confirmed => self.send_bye(None),
            Phase::Ending | Phase::Over => Vec::new(),
        }
    }

    fn send_cancel(&mut self) -> Vec<LegOutput> {
        let Some((invite, _)) = &self.invite else {
            return Vec::new();
        };
        if self.cancel.is_some() {
            return Vec::new();
        }
        // §9.1: same Request-URI, Call-ID, From, To (no tag), top Via and CSeq number.
        let mut h: Vec<Header> = Vec::new();
        for name in ["Via", "Max-Forwards", "Route", "From", "To", "Call-ID"] {
            for v in msg::values(&invite.headers, name)
                .into_iter()
                .take(if name == "Via" { 1 } else { 64 })
            {
                h.push(header(name, v));
            }
        }
        let seq = msg::cseq(&invite.headers).map(|c| c.0).unwrap_or(self.cseq);
        h.push(header("CSeq", format!("{seq} CANCEL")));
        let uri = invite.uri.to_string();
        let Ok(req) = msg::request(Method::Cancel, &uri, h, Vec::new()) else {
            return Vec::new();
        };
        let (tx, actions) = NonInviteClient::start(self.cfg.timers);
        self.cancel = Some((req, tx));
        self.run_cancel(actions)
    }

    fn send_bye(&mut self, auth: Option<Header>) -> Vec<LegOutput> {
        self.phase = Phase::Ending;
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", msg::token());
        let mut h = self.base(&branch, self.cseq, "BYE");
        h.push(header("User-Agent", self.cfg.user_agent.clone()));
        h.extend(auth);
        let Ok(req) = msg::request(Method::Bye, &self.target, h, Vec::new()) else {
            self.phase = Phase::Over;
            return vec![LegOutput::Event(LegEvent::ByeDone)];
        };
        let (tx, actions) = NonInviteClient::start(self.cfg.timers);
        self.bye = Some((req, tx));
        self.run_bye(actions, None)
    }

    pub fn on_timer(&mut self, timer: LegTimer) -> Vec<LegOutput> {
        match timer {
            LegTimer::Invite(seq, t) if seq == self.current_invite_seq() => match self.invite.as_mut() {
                Some((_, tx)) => {
                    let a = tx.on_timer(t);
                    self.run_invite(a, None)
                }
                None => Vec::new(),
            },
            LegTimer::Invite(seq, t) => self.spent_event(seq, |tx| tx.on_timer(t), None),
            LegTimer::Cancel(t) => match self.cancel.as_mut() {
                Some((_, tx)) => {
                    let a = tx.on_timer(t);
                    self.run_cancel(a)
                }
                None => Vec::new(),
            },
            LegTimer::Bye(t) => match self.bye.as_mut() {
                Some((_, tx)) => {
                    let a = tx.on_timer(t);
                    self.run_bye(a, None)
                }
                None => Vec::new(),
            },
            LegTimer::Server(seq, inv, t) => self.server_timer(seq, inv, t),
        }
    }

    pub fn on_message(&mut self, message: SipMessage) -> Vec<LegOutput> {
        match message {
            SipMessage::Response(r) => self.on_response(r),
            SipMessage::Request(r) => self.on_request(r),
        }
    }

    fn on_response(&mut self, resp: rsip::Response) -> Vec<LegOutput> {
        let status = resp.status_code.code();
        let Some((seq, method)) = msg::cseq(&resp.headers) else {
            return Vec::new();
        };
        let branch = msg::branch(&resp.headers);
        let same_branch = |req: &rsip::Request| msg::branch(&req.headers) == branch;
        match method.as_str() {
            "INVITE" => {
                let current = self.invite.as_ref().is_some_and(|(r, _)| same_branch(r));
                if current {
                    let a = self
                        .invite
                        .as_mut()
                        .map(|(_, tx)| tx.on_response(status))
                        .unwrap_or_default();
                    self.run_invite(a, Some(&resp))
                } else if self.spent.iter().any(|(r, _)| same_branch(r)) {
                    self.spent_event(seq, |tx| tx.on_response(status), Some(&resp))
                } else if (200..300).contains(&status) && seq == self.invite_seq() {
                    // A 2xx retransmitted after the transaction ended: ACK it again (§13.2.2.4).
                    self.ack
                        .clone()
                        .map(|a| vec![LegOutput::Send(a.into())])
                        .unwrap_or_default()
                } else {
                    Vec::new()
                }
            }
            "CANCEL" => match &mut self.cancel {
                Some((req, tx)) if same_branch(req) => {
                    let a = tx.on_response(status);
                    self.run_cancel(a)
                }
                _ => Vec::new(),
            },
            "BYE" => match &mut self.bye {
                Some((req, tx)) if same_branch(req) => {
                    let a = tx.on_response(status);
                    self.run_bye(a, Some(&resp))
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn current_invite_seq(&self) -> u32 {
        self.invite
            .as_ref()
            .and_then(|(r, _)| msg::cseq(&r.headers))
            .map(|c| c.0)
            .unwrap_or(0)
    }

    /// A challenged INVITE's transaction: it only ACKs retransmitted finals until timer D.
    fn spent_event(
        &mut self,
        seq: u32,
        step: impl FnOnce(&mut InviteClient) -> Vec<ClientAction>,
        resp: Option<&rsip::Response>,
    ) -> Vec<LegOutput> {
        let Some(i) = self
            .spent
            .iter()
            .position(|(r, _)| msg::cseq(&r.headers).map(|c| c.0) == Some(seq))
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in step(&mut self.spent[i].1) {
            match a {
                ClientAction::AckFinal => {
                    if let Some(ack) = resp.and_then(|r| ack_for_failure(&self.spent[i].0, r)) {
                        out.push(LegOutput::Send(ack.into()));
                    }
                }
                ClientAction::Arm(t, d) => out.push(LegOutput::Arm(LegTimer::Invite(seq, t), d)),
                ClientAction::Terminated => {
                    self.spent.remove(i);
                    break;
                }
                _ => {}
            }
        }
        out
    }

    fn invite_seq(&self) -> u32 {
        self.ack
            .as_ref()
            .and_then(|a| msg::cseq(&a.headers))
            .map(|c| c.0)
            .unwrap_or(0)
    }

    fn run_invite(&mut self, actions: Vec<ClientAction>, resp: Option<&rsip::Response>) -> Vec<LegOutput> {
        // Captured first: a challenge replaces `self.invite` halfway through these actions.
        let seq = self.current_invite_seq();
        let mut out = Vec::new();
        for a in actions {
            match a {
                ClientAction::Transmit => {
                    if let Some((req, _)) = &self.invite {
                        out.push(LegOutput::Send(req.clone().into()));
                    }
                }
                ClientAction::Arm(t, d) => out.push(LegOutput::Arm(LegTimer::Invite(seq, t), d)),
                ClientAction::AckFinal => {
                    if let (Some((req, _)), Some(r)) = (&self.invite, resp) {
                        if let Some(ack) = ack_for_failure(req, r) {
                            out.push(LegOutput::Send(ack.into()));
                        }
                    }
                }
                ClientAction::Deliver(status) => {
                    if let Some(r) = resp {
                        out.extend(self.invite_response(status, r));
                    }
                }
                ClientAction::TimedOut => {
                    self.phase = Phase::Over;
                    out.push(LegOutput::Event(LegEvent::Failed(None)));
                }
                ClientAction::Terminated => self.invite = None,
            }
        }
        out
    }

    /// The transaction user's part of an INVITE response.
    fn invite_response(&mut self, status: u16, resp: &rsip::Response) -> Vec<LegOutput> {
        let mut out = Vec::new();
        match status {
            100..=199 => {
                if self.phase == Phase::Inviting {
                    self.phase = Phase::Early;
                }
                if !self.rang && (status == 180 || status == 183) {
                    self.rang = true;
                    out.push(LegOutput::Event(LegEvent::Ringing));
                }
                if let Some((m, c)) = self.remote_sdp(resp) {
                    out.push(LegOutput::Event(LegEvent::EarlyMedia(m, c)));
                }
                if self.cancel_wanted {
                    out.extend(self.send_cancel());
                }
            }
            200..=299 => out.extend(self.answered(resp)),
            401 | 407 if self.auth_tries < MAX_AUTH_TRIES && self.phase != Phase::Over => {
                if let Some(h) = self.authorization(resp, "INVITE") {
                    self.auth_tries += 1;
                    self.phase = Phase::Inviting;
                    self.rang = false;
                    self.cancel = None;
                    // The old transaction keeps ACKing its retransmitted 401 until timer D.
                    if let Some(old) = self.invite.take() {
                        self.spent.push(old);
                    }
                    return self.send_invite(Some(h));
                }
                self.phase = Phase::Over;
                out.push(LegOutput::Event(LegEvent::Failed(Some(status))));
            }
            _ => {
                if self.phase != Phase::Over {
                    self.phase = Phase::Over;
                    out.push(LegOutput::Event(LegEvent::Failed(Some(status))));
                }
            }
        }
        out
    }

    fn answered(&mut self, resp: &rsip::Response) -> Vec<LegOutput> {
        let mut out = Vec::new();
        let first = self.ack.is_none();
        if first {
            if let Some(to) = msg::value(&resp.headers, "To") {
                self.remote_tag = msg::param(&to, "tag");
            }
            if let Some(c) = msg::value(&resp.headers, "Contact") {
                self.target = msg::uri_of(&c);
            }
            // §12.1.2: the route set is the Record-Route list, reversed.
            let mut rr: Vec<String> = msg::values(&resp.headers, "Record-Route")
                .iter()
                .flat_map(|v| v.split(',').map(|s| s.trim().to_string()).collect::<Vec<_>>())
                .collect();
            rr.reverse();
            self.route = rr;
            self.ack = self.build_ack();
        }
        if let Some(ack) = &self.ack {
            out.push(LegOutput::Send(ack.clone().into()));
        }
        if !first {
            return out;
        }
        let was_cancelled = self.cancel_wanted || self.phase == Phase::Over;
        self.phase = Phase::Confirmed;
        if was_cancelled {
            // The 200 crossed our CANCEL: the dialog exists, so end it with a BYE (§9.1).
            out.extend(self.send_bye(None));
            return out;
        }
        match self.remote_sdp(resp) {
            Some((m, c)) => out.push(LegOutput::Event(LegEvent::Answered(m, c))),
            None => {
                out.push(LegOutput::Event(LegEvent::Failed(Some(488))));
                out.extend(self.send_bye(None));
            }
        }
        out
    }

    fn build_ack(&self) -> Option<rsip::Request> {
        let seq = self
            .invite
            .as_ref()
            .and_then(|(r, _)| msg::cseq(&r.headers))
            .map(|c| c.0)?;
        let branch = format!("z9hG4bK{}", msg::token());
        let mut h = self.base(&branch, seq, "ACK");
        if let Some((req, _)) = &self.invite {
            for v in msg::values(&req.headers, "Authorization") {
                h.push(header("Authorization", v));
            }
            for v in msg::values(&req.headers, "Proxy-Authorization") {
                h.push(header("Proxy-Authorization", v));
            }
        }
        msg::request(Method::Ack, &self.target, h, Vec::new()).ok()
    }

    fn remote_sdp(&self, resp: &rsip::Response) -> Option<(RemoteMedia, Codec)> {
        if resp.body.is_empty() {
            return None;
        }
        let m = RemoteMedia::parse(&String::from_utf8_lossy(&resp.body)).ok()?;
        let c = m.choose(&self.media.codecs).ok()?;
        Some((m, c))
    }

    fn authorization(&self, resp: &rsip::Response, method: &str) -> Option<Header> {
        let (user, pass) = self.cfg.credentials.as_ref()?;
        let (challenge_name, answer_name) = if resp.status_code.code() == 407 {
            ("Proxy-Authenticate", "Proxy-Authorization")
        } else {
            ("WWW-Authenticate", "Authorization")
        };
        let value = msg::value(&resp.headers, challenge_name)?;
        let challenge = Challenge::parse(&value).ok()?;
        let uri = if method == "INVITE" {
            self.to_uri.clone()
        } else {
            self.target.clone()
        };
        let creds = challenge.answer(user, pass, method, &uri, 1, &msg::token());
        Some(header(answer_name, creds.header))
    }

    fn run_cancel(&mut self, actions: Vec<ClientAction>) -> Vec<LegOutput> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                ClientAction::Transmit => {
                    if let Some((req, _)) = &self.cancel {
                        out.push(LegOutput::Send(req.clone().into()));
                    }
                }
                ClientAction::Arm(t, d) => out.push(LegOutput::Arm(LegTimer::Cancel(t), d)),
                // The INVITE's 487 (or timer B) ends the call; the CANCEL's answer is not news.
                ClientAction::Terminated => self.cancel = None,
                ClientAction::AckFinal | ClientAction::Deliver(_) | ClientAction::TimedOut => {}
            }
        }
        out
    }

    fn run_bye(&mut self, actions: Vec<ClientAction>, resp: Option<&rsip::Response>) -> Vec<LegOutput> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                ClientAction::Transmit => {
                    if let Some((req, _)) = &self.bye {
                        out.push(LegOutput::Send(req.clone().into()));
                    }
                }
                ClientAction::Arm(t, d) => out.push(LegOutput::Arm(LegTimer::Bye(t), d)),
                ClientAction::Deliver(401 | 407) if self.auth_tries <= MAX_AUTH_TRIES => {
                    if let Some(h) = resp.and_then(|r| self.authorization(r, "BYE")) {
                        self.auth_tries += 1;
                        self.bye = None;
                        out.extend(self.send_bye(Some(h)));
                        return out;
                    }
                    out.extend(self.bye_over());
                }
                ClientAction::Deliver(100..=199) => {}
                // §15.1.1: any final response, or none, ends the dialog.
                ClientAction::Deliver(_) | ClientAction::TimedOut => out.extend(self.bye_over()),
                ClientAction::Terminated => self.bye = None,
                ClientAction::AckFinal => {}
            }
        }
        out
    }

    fn bye_over(&mut self) -> Vec<LegOutput> {
        if self.phase == Phase::Over {
            return Vec::new();
        }
        self.phase = Phase::Over;
        vec![LegOutput::Event(LegEvent::ByeDone)]
    }
}

/// §17.1.1.3: the ACK for a non-2xx final: the INVITE's Request-URI, top Via, From,
/// Call-ID, Route and CSeq number, and the response's To.
fn ack_for_failure(invite: &rsip::Request, resp: &rsip::Response) -> Option<rsip::Request> {
    let mut h = Vec::new();
    h.push(header(
        "Via",
        msg::values(&invite.headers, "Via").into_iter().next()?,
    ));
    h.push(header("Max-Forwards", "70"));
    for v in msg::values(&invite.headers, "Route") {
        h.push(header("Route", v));
    }
    h.push(header("From", msg::value(&invite.headers, "From")?));
    h.push(header("To", msg::value(&resp.headers, "To")?));
    h.push(header("Call-ID", msg::value(&invite.headers, "Call-ID")?));
    let seq = msg::cseq(&invite.headers)?.0;
    h.push(header("CSeq", format!("{seq} ACK")));
    msg::request(Method::Ack, &invite.uri.to_string(), h, Vec::new()).ok()
}

#[cfg(test)]
mod tests;
