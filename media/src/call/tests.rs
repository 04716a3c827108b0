//! The call logic against a scripted api and trunk, on a test clock.

use std::time::Duration;

use ringledger_domain::call::{EndCause, FailCause, HangupReason, Progress};
use ringledger_domain::{CallId, E164};
use rsip::SipMessage;

use super::machine::*;
use super::wire::*;
use crate::sip::leg::LegConfig;
use crate::sip::msg::{self, header};
use crate::sip::sdp::{Codec, Direction, LocalMedia};
use crate::sip::timers::Timers;

const SDP: &str = "v=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

fn id() -> CallId {
    CallId(uuid::Uuid::from_u128(42))
}

fn setup() -> CallSetup {
    CallSetup {
        destination: E164::parse("+442079460958", None).expect("number"),
        call_token: "token".into(),
        quote_id: "quote".into(),
        leg_id: "leg-1".into(),
        leg: LegConfig {
            local: "127.0.0.1:5070".parse().expect("addr"),
            trunk_host: "127.0.0.1:5060".into(),
            caller_id: "15550001111".into(),
            credentials: None,
            timers: Timers::default(),
            user_agent: "test".into(),
        },
        media: LocalMedia {
            address: "127.0.0.1".parse().expect("ip"),
            rtp_port: 40000,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            session_id: 1,
            version: 1,
        },
    }
}

fn grant(seq: u64, granted_seconds: u64, final_unit: bool) -> Grant {
    Grant {
        call_id: id(),
        seq,
        granted_seconds,
        seconds_left: granted_seconds,
        final_unit,
        valid_until: "2026-11-25T12:00:30Z".into(),
        validity_seconds: 30,
        hangup: None,
        max_ring_seconds: Some(60),
        max_call_seconds: Some(14_400),
        interim_seconds: Some(6),
    }
}

/// Everything the call did, in order, for one test.
struct Run {
    call: Call,
    now: u64,
    log: Vec<Output>,
    invite: Option<rsip::Request>,
}

impl Run {
    fn start(first: Grant) -> Run {
        let (call, out) = Call::new(setup(), "2026-11-25T12:00:00Z".into());
        let mut run = Run {
            call,
            now: 0,
            log: out,
            invite: None,
        };
        run.feed(Input::Started(Ok(first)));
        run
    }

    fn feed(&mut self, input: Input) -> Vec<Output> {
        let out = self.call.handle(self.now, input);
        for o in &out {
            if let Output::Send(SipMessage::Request(r)) = o {
                if r.method == rsip::Method::Invite && self.invite.is_none() {
                    self.invite = Some(r.clone());
                }
            }
        }
        self.log.extend(out.clone());
        out
    }

    fn at(&mut self, ms: u64) -> &mut Run {
        self.now = ms;
        self
    }

    fn trunk(&mut self, status: u16, sdp: bool) -> Vec<Output> {
        let invite = self.invite.clone().expect("an INVITE went out");
        let body = if sdp { SDP.as_bytes().to_vec() } else { Vec::new() };
        let r = msg::response(
            &invite,
            status,
            "tt",
            vec![header("Contact", "<sip:t@127.0.0.9>")],
            body,
        );
        let m = msg::parse(r.to_string().as_bytes()).expect("parse");
        self.feed(Input::Sip(m))
    }

    fn answered_call() -> Run {
        let mut run = Run::start(grant(0, 60, false));
        run.at(1_000).trunk(180, false);
        run.at(5_000).trunk(200, true);
        run
    }

    fn reports(&self) -> Vec<Report> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Meter(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }

    fn stops(&self) -> Vec<(u64, EndCause)> {
        self.reports()
            .into_iter()
            .filter_map(|r| match r {
                Report::Stop { talk_ms, cause, .. } => Some((talk_ms, cause)),
                _ => None,
            })
            .collect()
    }

    fn sent_methods(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|o| match o {
                Output::Send(SipMessage::Request(r)) => Some(r.method.to_string()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn start_goes_out_first_and_a_denial_never_rings_a_phone() {
    let (mut call, out) = Call::new(setup(), "t".into());
    let Output::Start(body) = &out[0] else {
        panic!("start first: {out:?}")
    };
    assert_eq!(body.destination, "+442079460958");
    assert_eq!(out.len(), 1, "nothing else before the api answers");
    let denial = MeterError {
        status: Some(403),
        code: "daily_spend_cap".into(),
        message: "the daily spend cap of 50.00 USD is reached".into(),
    };
    let out = call.handle(10, Input::Started(Err(denial)));
    assert!(matches!(&out[..], [Output::Notice(Notice::Denied { code, .. })] if code == "daily_spend_cap"));
    assert!(call.is_finished());
    assert!(call.handle(20, Input::CallerHangup).is_empty());
}

#[test]
fn a_normal_call_reports_ringing_answer_interims_and_one_stop() {
    let mut run = Run::answered_call();
    assert_eq!(run.sent_methods(), vec!["INVITE", "ACK"]);
    let reports = run.reports();
    assert_eq!(
        reports,
        vec![
            Report::Progress {
                call_id: id(),
                seq: 1,
                progress: Progress::Ringing
            },
            Report::Progress {
                call_id: id(),
                seq: 2,
                progress: Progress::Answered
            },
        ]
    );
    assert!(run
        .log
        .contains(&Output::Arm(CallTimer::Interim, Duration::from_secs(6))));
    run.at(11_000).feed(Input::Timer(CallTimer::Interim));
    run.at(17_000).feed(Input::Timer(CallTimer::Interim));
    let interims: Vec<(u64, u64)> = run
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            Report::Interim { seq, talk_ms, .. } => Some((seq, talk_ms)),
            _ => None,
        })
        .collect();
    assert_eq!(
        interims,
        vec![(3, 6_000), (4, 12_000)],
        "cumulative ms since the 200 OK"
    );
    run.at(17_100)
        .feed(Input::Answered(4, Ok(ReportAnswer::Grant(grant(4, 120, false)))));
    run.at(20_500).feed(Input::CallerHangup);
    run.at(20_600).feed(Input::CallerHangup);
    run.at(20_700).feed(Input::ApiHangup(HangupReason::Admin));
    assert_eq!(run.stops(), vec![(15_500, EndCause::CallerHangup)], "one stop");
    assert_eq!(run.reports().last().map(Report::seq), Some(5));
    assert_eq!(run.sent_methods(), vec!["INVITE", "ACK", "BYE"]);
}

#[test]
fn final_unit_plays_a_tone_and_hangs_up_at_the_ceiling() {
    let mut run = Run::start(grant(0, 10, false));
    run.at(1_000).trunk(180, false);
    run.at(5_000).trunk(200, true);
    run.at(6_000)
        .feed(Input::Answered(2, Ok(ReportAnswer::Grant(grant(2, 10, true)))));
    // Talk began at 5 s; the ceiling is talk = 10 s, i.e. 15 s; the tone 3 s before.
    assert!(run
        .log
        .contains(&Output::Arm(CallTimer::Tone, Duration::from_millis(6_000))));
    assert!(run
        .log
        .contains(&Output::Arm(CallTimer::Ceiling, Duration::from_millis(9_000))));
    let tone = run.at(12_000).feed(Input::Timer(CallTimer::Tone));
    assert_eq!(tone, vec![Output::Media(MediaCommand::WarningTone)]);
    run.at(15_000).feed(Input::Timer(CallTimer::Ceiling));
    assert_eq!(run.stops(), vec![(10_000, EndCause::FinalUnit)]);
    assert_eq!(run.sent_methods().last().map(String::as_str), Some("BYE"));
}

#[test]
fn with_the_api_gone_the_call_lasts_until_the_grant_expires() {
    let mut run = Run::answered_call();
    // Nothing is answered after `start` (t = 0, validity 30 s).
    run.at(11_000).feed(Input::Timer(CallTimer::Interim));
    assert!(
        run.at(29_999).feed(Input::Timer(CallTimer::Validity)).is_empty(),
        "early firing ignored"
    );
    run.at(30_000).feed(Input::Timer(CallTimer::Validity));
    assert_eq!(run.stops(), vec![(25_000, EndCause::GrantExpired)]);
    assert_eq!(run.sent_methods().last().map(String::as_str), Some("BYE"));
}

#[test]
fn each_answered_report_renews_the_validity() {
    let mut run = Run::answered_call();
    run.at(20_000)
        .feed(Input::Answered(3, Ok(ReportAnswer::Grant(grant(3, 60, false)))));
    assert!(run.at(30_000).feed(Input::Timer(CallTimer::Validity)).is_empty());
    assert!(run.stops().is_empty());
    run.at(50_000).feed(Input::Timer(CallTimer::Validity));
    assert_eq!(run.stops(), vec![(45_000, EndCause::GrantExpired)]);
}

#[test]
fn a_non_final_ceiling_reports_at_once_and_waits_for_a_raise() {
    let mut run = Run::start(grant(0, 12, false));
    run.at(1_000).trunk(200, true);
    let out = run.at(13_000).feed(Input::Timer(CallTimer::Ceiling));
    assert!(matches!(
        &out[0],
        Output::Meter(Report::Interim { talk_ms: 12_000, .. })
    ));
    run.at(13_500)
        .feed(Input::Answered(3, Ok(ReportAnswer::Grant(grant(3, 72, false)))));
    assert!(
        run.at(15_000)
            .feed(Input::Timer(CallTimer::CeilingGrace))
            .is_empty(),
        "raised: talk on"
    );
    // Not raised the second time: hang up.
    run.at(73_000).feed(Input::Timer(CallTimer::Ceiling));
    run.at(75_000).feed(Input::Timer(CallTimer::CeilingGrace));
    assert_eq!(run.stops(), vec![(74_000, EndCause::GrantExpired)]);
}

#[test]
fn the_api_hangup_ends_the_call_with_hangup_requested() {
    let mut run = Run::answered_call();
    run.at(8_000).feed(Input::ApiHangup(HangupReason::AccountFrozen));
    assert_eq!(run.stops(), vec![(3_000, EndCause::HangupRequested)]);
    assert!(run.call.is_ended());
}

#[test]
fn a_grant_carrying_hangup_or_a_410_ends_the_call() {
    let mut run = Run::answered_call();
    let mut g = grant(3, 60, true);
    g.hangup = Some("account_banned".into());
    run.at(9_000).feed(Input::Answered(3, Ok(ReportAnswer::Grant(g))));
    assert_eq!(run.stops(), vec![(4_000, EndCause::HangupRequested)]);

    let mut run = Run::answered_call();
    let gone = MeterError {
        status: Some(410),
        code: "call_over".into(),
        message: "swept".into(),
    };
    run.at(9_000).feed(Input::Answered(3, Err(gone)));
    assert_eq!(run.stops(), vec![(4_000, EndCause::HangupRequested)]);
}

#[test]
fn a_busy_trunk_is_reported_failed_and_never_stopped() {
    let mut run = Run::start(grant(0, 60, false));
    run.at(500).trunk(486, false);
    let failed: Vec<Report> = run.reports();
    assert_eq!(
        failed,
        vec![Report::Progress {
            call_id: id(),
            seq: 1,
            progress: Progress::Failed {
                cause: FailCause::Busy,
                sip_status: Some(486)
            }
        }]
    );
    assert!(run.stops().is_empty());
    assert_eq!(run.sent_methods(), vec!["INVITE", "ACK"]);
}

#[test]
fn ringing_too_long_is_cancelled_as_ring_timeout() {
    let mut run = Run::start(grant(0, 60, false));
    run.at(1_000).trunk(180, false);
    run.at(60_000).feed(Input::Timer(CallTimer::Ring));
    assert_eq!(run.sent_methods(), vec!["INVITE", "CANCEL"]);
    run.at(60_100).trunk(487, false);
    let last = run.reports().pop();
    assert_eq!(
        last,
        Some(Report::Progress {
            call_id: id(),
            seq: 2,
            progress: Progress::Failed {
                cause: FailCause::RingTimeout,
                sip_status: Some(487)
            }
        })
    );
}

#[test]
fn the_caller_hanging_up_while_ringing_is_caller_cancelled() {
    let mut run = Run::start(grant(0, 60, false));
    run.at(1_000).trunk(183, true);
    assert!(
        run.log
            .iter()
            .any(|o| matches!(o, Output::Media(MediaCommand::Connect { .. }))),
        "early media"
    );
    run.at(2_000).feed(Input::CallerHangup);
    run.at(2_100).trunk(487, false);
    assert!(matches!(
        run.reports().pop(),
        Some(Report::Progress {
            progress: Progress::Failed {
                cause: FailCause::CallerCancelled,
                ..
            },
            ..
        })
    ));
}

#[test]
fn a_caller_gone_before_start_is_answered_sends_no_invite() {
    let (mut call, _) = Call::new(setup(), "t".into());
    assert!(call.handle(5, Input::CallerHangup).is_empty());
    let out = call.handle(10, Input::Started(Ok(grant(0, 60, false))));
    assert!(!out.iter().any(|o| matches!(o, Output::Send(_))), "{out:?}");
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Meter(Report::Progress {
            progress: Progress::Failed {
                cause: FailCause::CallerCancelled,
                ..
            },
            ..
        })
    )));
    assert!(call.is_finished());
}

#[test]
fn a_bye_from_the_trunk_stops_once_as_callee_hangup() {
    let mut run = Run::answered_call();
    let invite = run.invite.clone().expect("invite");
    let local_tag = msg::value(&invite.headers, "From")
        .and_then(|f| msg::param(&f, "tag"))
        .expect("tag");
    let h = vec![
        header("Via", "SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKbye"),
        header("From", "<sip:x@h>;tag=tt"),
        header("To", format!("<sip:y@h>;tag={local_tag}")),
        header("Call-ID", msg::call_id(&invite.headers).expect("call-id")),
        header("CSeq", "9 BYE"),
    ];
    let bye = msg::request(rsip::Method::Bye, "sip:y@127.0.0.1:5070", h, Vec::new()).expect("bye");
    run.at(9_000).feed(Input::Sip(bye.clone().into()));
    run.at(9_100).feed(Input::Sip(bye.into()));
    assert_eq!(run.stops(), vec![(4_000, EndCause::CalleeHangup)]);
    assert_eq!(
        run.sent_methods(),
        vec!["INVITE", "ACK"],
        "no BYE of ours after theirs"
    );
}

#[test]
fn an_unreachable_trunk_fails_as_unreachable() {
    let mut run = Run::start(grant(0, 60, false));
    run.at(32_000)
        .feed(Input::Timer(CallTimer::Leg(crate::sip::leg::LegTimer::Invite(
            1,
            crate::sip::timers::Timer::B,
        ))));
    assert!(matches!(
        run.reports().pop(),
        Some(Report::Progress {
            progress: Progress::Failed {
                cause: FailCause::Unreachable,
                sip_status: None
            },
            ..
        })
    ));
}
