//! The leg's server side: requests the trunk sends inside the dialog. BYE ends the call,
//! a re-INVITE changes the media (hold, unhold, a new address) and is answered with our SDP,
//! OPTIONS is answered, anything else is refused. Retransmitted requests are absorbed by
//! their server transaction, which resends the last response.

use rsip::Header;

use super::{Leg, LegEvent, LegOutput, LegTimer, Phase, ServerTx};
use crate::sip::msg::{self, header};
use crate::sip::sdp::RemoteMedia;
use crate::sip::server_tx::{InviteServer, NonInviteServer, ServerAction};
use crate::sip::timers::Timer;

impl Leg {
    pub(super) fn on_request(&mut self, req: rsip::Request) -> Vec<LegOutput> {
        let Some((seq, method)) = msg::cseq(&req.headers) else {
            return Vec::new();
        };
        if method == "ACK" {
            return self.on_ack(seq);
        }
        let is_invite = method == "INVITE";
        if let Some(tx) = self.servers.get_mut(&(seq, is_invite)) {
            let actions = match (&mut tx.invite, &mut tx.other) {
                (Some(t), _) => t.on_retransmission(),
                (_, Some(t)) => t.on_retransmission(),
                _ => Vec::new(),
            };
            return self.run_server(seq, is_invite, actions);
        }
        let (status, extra, body, event) = self.answer(&req, &method);
        let mut tx = ServerTx {
            last: None,
            invite: None,
            other: None,
        };
        let actions = if is_invite {
            let mut t = InviteServer::new(self.cfg.timers);
            let a = t.respond(status);
            tx.invite = Some(t);
            a
        } else {
            let mut t = NonInviteServer::new(self.cfg.timers);
            let a = t.respond(status);
            tx.other = Some(t);
            a
        };
        tx.last = Some(msg::response(&req, status, &self.local_tag, extra, body));
        self.servers.insert((seq, is_invite), tx);
        let mut out = self.run_server(seq, is_invite, actions);
        out.extend(event.map(LegOutput::Event));
        out
    }

    /// The status, extra headers, body and event for a new request from the trunk.
    fn answer(&mut self, req: &rsip::Request, method: &str) -> (u16, Vec<Header>, Vec<u8>, Option<LegEvent>) {
        let in_dialog = msg::value(&req.headers, "To")
            .and_then(|t| msg::param(&t, "tag"))
            .is_some_and(|t| t == self.local_tag);
        let allow = header("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS");
        match method {
            "OPTIONS" => (
                200,
                vec![allow, header("Accept", "application/sdp")],
                Vec::new(),
                None,
            ),
            "BYE" if in_dialog && matches!(self.phase, Phase::Confirmed | Phase::Ending) => {
                let event = (self.phase == Phase::Confirmed).then_some(LegEvent::RemoteBye);
                self.phase = Phase::Over;
                (200, Vec::new(), Vec::new(), event)
            }
            "INVITE" if in_dialog && self.phase == Phase::Confirmed => self.reinvite(req),
            "INVITE" if !in_dialog => (403, vec![allow], Vec::new(), None),
            "BYE" | "INVITE" => (481, Vec::new(), Vec::new(), None),
            // A CANCEL for a re-INVITE we already answered: nothing left to cancel.
            "CANCEL" => (481, Vec::new(), Vec::new(), None),
            _ => (405, vec![allow], Vec::new(), None),
        }
    }

    /// Hold or unhold (RFC 3264 §8.4): answer with the mirrored direction.
    fn reinvite(&mut self, req: &rsip::Request) -> (u16, Vec<Header>, Vec<u8>, Option<LegEvent>) {
        let contact = vec![self.contact()];
        if req.body.is_empty() {
            // An offerless re-INVITE: our 200 carries an offer of the stream as it is.
            self.media.version += 1;
            return (200, contact, self.media.to_sdp().into_bytes(), None);
        }
        let Ok(remote) = RemoteMedia::parse(&String::from_utf8_lossy(&req.body)) else {
            return (488, Vec::new(), Vec::new(), None);
        };
        if remote.choose(&self.media.codecs).is_err() {
            return (488, Vec::new(), Vec::new(), None);
        }
        let mut answer = self.media.clone();
        answer.version += 1;
        answer.direction = remote.direction.answer();
        self.media.version = answer.version;
        let event = LegEvent::Hold {
            hold: remote.is_hold(),
            media: remote,
        };
        (200, contact, answer.to_sdp().into_bytes(), Some(event))
    }

    fn on_ack(&mut self, seq: u32) -> Vec<LegOutput> {
        match self.servers.get_mut(&(seq, true)).and_then(|t| t.invite.as_mut()) {
            Some(t) => {
                let a = t.on_ack();
                self.run_server(seq, true, a)
            }
            // The ACK of our own 2xx retransmission target, or a stray one: nothing to do.
            None => Vec::new(),
        }
    }

    pub(super) fn server_timer(&mut self, seq: u32, is_invite: bool, timer: Timer) -> Vec<LegOutput> {
        let actions = match self.servers.get_mut(&(seq, is_invite)) {
            Some(ServerTx { invite: Some(t), .. }) => t.on_timer(timer),
            Some(ServerTx { other: Some(t), .. }) => t.on_timer(timer),
            _ => Vec::new(),
        };
        self.run_server(seq, is_invite, actions)
    }

    fn run_server(&mut self, seq: u32, is_invite: bool, actions: Vec<ServerAction>) -> Vec<LegOutput> {
        let mut out = Vec::new();
        for a in actions {
            match a {
                ServerAction::Send | ServerAction::Resend => {
                    if let Some(r) = self.servers.get(&(seq, is_invite)).and_then(|t| t.last.clone()) {
                        out.push(LegOutput::Send(r.into()));
                    }
                }
                ServerAction::Arm(t, d) => out.push(LegOutput::Arm(LegTimer::Server(seq, is_invite, t), d)),
                // §13.3.1.4: no ACK for our 2xx to a re-INVITE ends the dialog.
                ServerAction::AckTimedOut if self.phase == Phase::Confirmed => {
                    out.extend(self.send_bye(None));
                }
                ServerAction::AckTimedOut => {}
                ServerAction::Terminated => {
                    self.servers.remove(&(seq, is_invite));
                }
            }
        }
        out
    }
}
