//! The leg against a scripted trunk: every message it sends is parsed back and checked the
//! way a trunk would read it.

use std::net::SocketAddr;

use rsip::{Method, SipMessage};

use super::*;
use crate::sip::sdp::Direction;

const ANSWER_SDP: &str = "v=0\r\no=t 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

fn cfg(credentials: bool) -> LegConfig {
    LegConfig {
        local: "127.0.0.1:5070".parse::<SocketAddr>().expect("addr"),
        trunk_host: "127.0.0.1:5060".into(),
        caller_id: "15550001111".into(),
        credentials: credentials.then(|| ("alice".to_string(), "s3cret".to_string())),
        timers: Timers::default(),
        user_agent: "ringledger-media test".into(),
    }
}

fn media() -> LocalMedia {
    LocalMedia {
        address: "127.0.0.1".parse().expect("ip"),
        rtp_port: 40000,
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        telephone_event: Some(101),
        direction: crate::sip::sdp::Direction::SendRecv,
        session_id: 1,
        version: 1,
    }
}

/// Sent messages, round-tripped through text as the trunk would receive them.
fn sent(out: &[LegOutput]) -> Vec<SipMessage> {
    out.iter()
        .filter_map(|o| match o {
            LegOutput::Send(m) => Some(msg::parse(m.to_string().as_bytes()).expect("we send parsable SIP")),
            _ => None,
        })
        .collect()
}

fn requests(out: &[LegOutput]) -> Vec<rsip::Request> {
    sent(out)
        .into_iter()
        .filter_map(|m| match m {
            SipMessage::Request(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn events(out: &[LegOutput]) -> Vec<LegEvent> {
    out.iter()
        .filter_map(|o| match o {
            LegOutput::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The trunk's response to `req`, with its tag, a Contact and maybe SDP.
fn reply(req: &rsip::Request, status: u16, sdp: Option<&str>, extra: Vec<rsip::Header>) -> SipMessage {
    let mut h = vec![header("Contact", "<sip:trunk@127.0.0.9:5060>")];
    h.extend(extra);
    let body = sdp.map(|s| s.as_bytes().to_vec()).unwrap_or_default();
    let r = msg::response(req, status, "trunktag", h, body);
    msg::parse(r.to_string().as_bytes()).expect("parse")
}

fn answered_leg() -> (Leg, rsip::Request) {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    leg.on_message(reply(&invite, 180, None, vec![]));
    let out = leg.on_message(reply(&invite, 200, Some(ANSWER_SDP), vec![]));
    assert!(matches!(events(&out)[..], [LegEvent::Answered(_, Codec::Pcmu)]));
    (leg, invite)
}

/// A request from the trunk inside the dialog.
fn trunk_request(leg: &Leg, method: Method, seq: u32, body: &str) -> SipMessage {
    let h = vec![
        header(
            "Via",
            format!("SIP/2.0/UDP 127.0.0.9:5060;branch=z9hG4bKtrunk{seq}"),
        ),
        header("From", "<sip:442079460958@127.0.0.1:5060>;tag=trunktag"),
        header(
            "To",
            format!("<sip:15550001111@127.0.0.1:5060>;tag={}", leg.local_tag),
        ),
        header("Call-ID", leg.call_id.clone()),
        header("CSeq", format!("{seq} {method}")),
        header("Contact", "<sip:trunk@127.0.0.9:5060>"),
    ];
    let r = msg::request(
        method,
        "sip:15550001111@127.0.0.1:5070",
        h,
        body.as_bytes().to_vec(),
    )
    .expect("req");
    msg::parse(r.to_string().as_bytes()).expect("parse")
}

fn status_of(m: &SipMessage) -> u16 {
    match m {
        SipMessage::Response(r) => r.status_code.code(),
        _ => 0,
    }
}

#[test]
fn a_normal_call_invites_acks_every_200_and_hangs_up_with_bye() {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    assert_eq!(invite.method, Method::Invite);
    assert_eq!(invite.uri.to_string(), "sip:442079460958@127.0.0.1:5060");
    assert!(String::from_utf8_lossy(&invite.body).contains("m=audio 40000 RTP/AVP 8 0 101"));
    assert!(out.contains(&LegOutput::Arm(
        LegTimer::Invite(1, Timer::A),
        Duration::from_millis(500)
    )));

    assert!(events(&leg.on_message(reply(&invite, 100, None, vec![]))).is_empty());
    assert_eq!(
        events(&leg.on_message(reply(&invite, 180, None, vec![]))),
        vec![LegEvent::Ringing]
    );
    let ok = reply(&invite, 200, Some(ANSWER_SDP), vec![]);
    let out = leg.on_message(ok.clone());
    let ack = requests(&out).remove(0);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.uri.to_string(),
        "sip:trunk@127.0.0.9:5060",
        "ACK goes to the Contact"
    );
    assert_eq!(msg::cseq(&ack.headers), Some((1, "ACK".into())));
    assert_ne!(
        msg::branch(&ack.headers),
        msg::branch(&invite.headers),
        "a 2xx ACK is its own transaction"
    );
    // The 200 again (our ACK was lost): the same ACK again, no second answer.
    let again = leg.on_message(ok.clone());
    assert_eq!(requests(&again), vec![ack.clone()]);
    assert!(events(&again).is_empty());
    // Even after timer M ended the INVITE transaction.
    leg.on_timer(LegTimer::Invite(1, Timer::M));
    assert_eq!(requests(&leg.on_message(ok)), vec![ack]);

    let out = leg.hangup();
    let bye = requests(&out).remove(0);
    assert_eq!(bye.method, Method::Bye);
    assert_eq!(msg::cseq(&bye.headers), Some((2, "BYE".into())));
    let to = msg::value(&bye.headers, "To").expect("to");
    assert_eq!(msg::param(&to, "tag").as_deref(), Some("trunktag"));
    assert_eq!(
        events(&leg.on_message(reply(&bye, 200, None, vec![]))),
        vec![LegEvent::ByeDone]
    );
    assert!(!leg.is_finished(), "timer K still runs");
    leg.on_timer(LegTimer::Bye(Timer::K));
    assert!(leg.is_finished());
}

#[test]
fn a_busy_trunk_is_acked_inside_the_transaction() {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    let busy = reply(&invite, 486, None, vec![]);
    let out = leg.on_message(busy.clone());
    let ack = requests(&out).remove(0);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(msg::branch(&ack.headers), msg::branch(&invite.headers));
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(events(&out), vec![LegEvent::Failed(Some(486))]);
    let again = leg.on_message(busy);
    assert_eq!(requests(&again).len(), 1, "the retransmitted 486 is ACKed again");
    assert!(events(&again).is_empty());
    leg.on_timer(LegTimer::Invite(1, Timer::D));
    assert!(leg.is_finished());
}

#[test]
fn a_401_is_answered_with_digest_credentials_once() {
    let (mut leg, out) = Leg::invite(cfg(true), "442079460958", media());
    let invite = requests(&out).remove(0);
    let challenge = header(
        "WWW-Authenticate",
        "Digest realm=\"trunk\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256",
    );
    let c401 = reply(&invite, 401, None, vec![challenge.clone()]);
    let out = leg.on_message(c401.clone());
    let reqs = requests(&out);
    assert_eq!(reqs.len(), 2, "ACK for the 401 and a new INVITE: {reqs:?}");
    assert_eq!(reqs[0].method, Method::Ack);
    let second = &reqs[1];
    assert_eq!(msg::cseq(&second.headers), Some((2, "INVITE".into())));
    let auth = msg::value(&second.headers, "Authorization").expect("authorization");
    assert!(
        auth.contains("username=\"alice\"") && auth.contains("algorithm=SHA-256"),
        "{auth}"
    );
    assert!(auth.contains("qop=auth") && auth.contains("nc=00000001"));
    assert!(!auth.contains("s3cret"));
    // The old transaction still ACKs its retransmitted 401.
    let again = leg.on_message(c401);
    assert_eq!(
        requests(&again).iter().map(|r| r.method).collect::<Vec<_>>(),
        vec![Method::Ack]
    );
    // A second challenge means the credentials are wrong: the call fails.
    let out = leg.on_message(reply(second, 401, None, vec![challenge]));
    assert_eq!(events(&out), vec![LegEvent::Failed(Some(401))]);
}

#[test]
fn without_credentials_a_challenge_fails_the_call() {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    let challenge = header("Proxy-Authenticate", "Digest realm=\"t\", nonce=\"n\"");
    let out = leg.on_message(reply(&invite, 407, None, vec![challenge]));
    assert_eq!(events(&out), vec![LegEvent::Failed(Some(407))]);
}

#[test]
fn hanging_up_while_ringing_cancels_and_acks_the_487() {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    assert!(
        leg.hangup().is_empty(),
        "no CANCEL before a provisional response (§9.1)"
    );
    let out = leg.on_message(reply(&invite, 180, None, vec![]));
    let cancel = requests(&out).remove(0);
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(msg::branch(&cancel.headers), msg::branch(&invite.headers));
    assert_eq!(msg::cseq(&cancel.headers), Some((1, "CANCEL".into())));
    assert!(events(&leg.on_message(reply(&cancel, 200, None, vec![]))).is_empty());
    let out = leg.on_message(reply(&invite, 487, None, vec![]));
    assert_eq!(requests(&out)[0].method, Method::Ack);
    assert_eq!(events(&out), vec![LegEvent::Failed(Some(487))]);
}

#[test]
fn a_200_that_crosses_our_cancel_is_acked_and_byed() {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    leg.on_message(reply(&invite, 183, Some(ANSWER_SDP), vec![]));
    leg.hangup();
    let out = leg.on_message(reply(&invite, 200, Some(ANSWER_SDP), vec![]));
    let methods: Vec<Method> = requests(&out).into_iter().map(|r| r.method).collect();
    assert_eq!(methods, vec![Method::Ack, Method::Bye]);
    assert!(!events(&out).iter().any(|e| matches!(e, LegEvent::Answered(..))));
}

#[test]
fn early_media_in_a_183_is_reported() {
    let (mut leg, out) = Leg::invite(cfg(false), "442079460958", media());
    let invite = requests(&out).remove(0);
    let ev = events(&leg.on_message(reply(&invite, 183, Some(ANSWER_SDP), vec![])));
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0], LegEvent::Ringing);
    assert!(matches!(&ev[1], LegEvent::EarlyMedia(m, Codec::Pcmu) if m.rtp_port == 7000));
}

#[test]
fn the_trunk_holds_and_resumes_with_reinvites() {
    let (mut leg, _) = answered_leg();
    let hold_sdp = ANSWER_SDP.to_string() + "a=sendonly\r\n";
    let reinvite = trunk_request(&leg, Method::Invite, 10, &hold_sdp);
    let out = leg.on_message(reinvite.clone());
    let resp = sent(&out).remove(0);
    assert_eq!(status_of(&resp), 200);
    let SipMessage::Response(r) = &resp else {
        panic!("response")
    };
    let answer = RemoteMedia::parse(&String::from_utf8_lossy(&r.body)).expect("our answer");
    assert_eq!(answer.direction, Direction::RecvOnly);
    assert!(matches!(events(&out)[..], [LegEvent::Hold { hold: true, .. }]));
    // The 2xx is retransmitted on timer G until the ACK arrives.
    let g = leg.on_timer(LegTimer::Server(10, true, Timer::G));
    assert_eq!(sent(&g).len(), 1);
    leg.on_message(trunk_request(&leg, Method::Ack, 10, ""));
    assert!(sent(&leg.on_timer(LegTimer::Server(10, true, Timer::G))).is_empty());
    // A retransmitted re-INVITE does not put the call on hold twice.
    assert!(events(&leg.on_message(reinvite)).is_empty());

    let resume = trunk_request(
        &leg,
        Method::Invite,
        11,
        &(ANSWER_SDP.to_string() + "a=sendrecv\r\n"),
    );
    let out = leg.on_message(resume);
    assert!(matches!(events(&out)[..], [LegEvent::Hold { hold: false, .. }]));
}

#[test]
fn a_bye_from_the_trunk_is_answered_and_reported_once() {
    let (mut leg, _) = answered_leg();
    let bye = trunk_request(&leg, Method::Bye, 20, "");
    let out = leg.on_message(bye.clone());
    assert_eq!(status_of(&sent(&out)[0]), 200);
    assert_eq!(events(&out), vec![LegEvent::RemoteBye]);
    let again = leg.on_message(bye);
    assert_eq!(
        status_of(&sent(&again)[0]),
        200,
        "the retransmitted BYE gets the same answer"
    );
    assert!(events(&again).is_empty());
    assert!(leg.hangup().is_empty(), "nothing left to hang up");
}

#[test]
fn options_are_answered_and_unknown_requests_refused() {
    let (mut leg, _) = answered_leg();
    let out = leg.on_message(trunk_request(&leg, Method::Options, 30, ""));
    assert_eq!(status_of(&sent(&out)[0]), 200);
    let out = leg.on_message(trunk_request(&leg, Method::Message, 31, ""));
    assert_eq!(status_of(&sent(&out)[0]), 405);
}

#[test]
fn an_unanswered_invite_fails_on_timer_b() {
    let (mut leg, _) = Leg::invite(cfg(false), "442079460958", media());
    let out = leg.on_timer(LegTimer::Invite(1, Timer::A));
    assert_eq!(requests(&out).len(), 1, "timer A retransmits");
    let out = leg.on_timer(LegTimer::Invite(1, Timer::B));
    assert_eq!(events(&out), vec![LegEvent::Failed(None)]);
    assert!(leg.is_finished());
}
