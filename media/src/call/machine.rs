//! One call's logic, sans-IO (docs/media.md): metering `start` before the INVITE (a denial
//! never rings a phone), `progress` on ringing, answer and failure, `interim` every tick with
//! the cumulative talk time since the 200 OK, exactly one `stop`; the grant's ceiling and
//! validity decide when the call must end. Inputs carry `now_ms` from the driver's monotonic
//! clock; nothing here reads a clock, opens a socket or logs a number.

use std::time::Duration;

use ringledger_domain::call::{EndCause, FailCause, HangupReason, Progress};
use ringledger_domain::{CallId, E164};
use rsip::SipMessage;

use super::wire::{Grant, MeterError, Report, ReportAnswer, StartBody};
use crate::sip::leg::{Leg, LegConfig, LegEvent, LegOutput, LegTimer};
use crate::sip::sdp::{Codec, LocalMedia, RemoteMedia};

/// How long before a final grant's end the warning tone starts.
pub const TONE_LEAD_MS: u64 = 3_000;
/// How long a non-final ceiling may be passed while its interim is answered (the report
/// timeout of the protocol).
pub const CEILING_GRACE_MS: u64 = 2_000;
/// Used until the api says otherwise.
const DEFAULT_INTERIM_SECONDS: u64 = 6;
const DEFAULT_MAX_RING_SECONDS: u64 = 60;

/// What a call needs to start.
#[derive(Clone)]
pub struct CallSetup {
    pub destination: E164,
    pub call_token: String,
    pub quote_id: String,
    pub leg_id: String,
    pub leg: LegConfig,
    pub media: LocalMedia,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallTimer {
    Leg(LegTimer),
    Interim,
    /// Ringing for longer than `max_ring_seconds`.
    Ring,
    /// Talk reaches the grant's ceiling.
    Ceiling,
    /// The ceiling passed without a raised grant.
    CeilingGrace,
    /// No answered report since `valid_until`.
    Validity,
    /// Start the final-unit warning tone.
    Tone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The answer to `start` (the driver retried transient failures).
    Started(Result<Grant, MeterError>),
    /// The answer to the report with this `seq`.
    Answered(u64, Result<ReportAnswer, MeterError>),
    Sip(SipMessage),
    Timer(CallTimer),
    /// The api asked for the call to end (`POST /v1/hangup`).
    ApiHangup(HangupReason),
    /// The caller hung up (the dial command, later the browser).
    CallerHangup,
    /// The media path broke (no RTP port, socket error).
    MediaError,
}

/// What the media path must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Send to and receive from this address with this codec (early media or answered).
    Connect {
        remote: RemoteMedia,
        codec: Codec,
    },
    Hold(bool),
    /// Play the final-unit warning tone now.
    WarningTone,
    Stop,
}

/// What the caller sees (printed by `dial`, logged and counted by the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Denied {
        code: String,
        message: String,
    },
    Granted {
        granted_seconds: u64,
        final_unit: bool,
    },
    Ringing,
    Answered,
    Failed {
        cause: FailCause,
        sip_status: Option<u16>,
    },
    /// The trunk put the call on hold (`true`) or took it off.
    Held(bool),
    /// Added by the driver just before `Ended`/`Failed`: RTP packets both ways.
    Media {
        sent_packets: u32,
        received_packets: u32,
    },
    Ended {
        cause: EndCause,
        talk_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Start(StartBody),
    Meter(Report),
    Send(SipMessage),
    Arm(CallTimer, Duration),
    Media(MediaCommand),
    Notice(Notice),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Starting,
    Setup,
    Talking,
    Ended,
}

/// One call.
pub struct Call {
    setup: CallSetup,
    stage: Stage,
    call_id: Option<CallId>,
    leg: Option<Leg>,
    seq: u64,
    grant: Option<Grant>,
    interim_seconds: u64,
    max_call_seconds: Option<u64>,
    answered_at_ms: Option<u64>,
    valid_until_ms: u64,
    rang: bool,
    /// Why we are ending the call before its answer (CANCEL sent): ring timeout or caller.
    cancel_cause: Option<FailCause>,
    caller_gone: bool,
    stopped: bool,
}

impl Call {
    /// A new call: ask the api for the first grant.
    pub fn new(setup: CallSetup, sent_at: String) -> (Call, Vec<Output>) {
        let body = StartBody {
            call_token: setup.call_token.clone(),
            quote_id: setup.quote_id.clone(),
            destination: format!("+{}", setup.destination.digits()),
            leg_id: setup.leg_id.clone(),
            sent_at,
        };
        let call = Call {
            setup,
            stage: Stage::Starting,
            call_id: None,
            leg: None,
            seq: 0,
            grant: None,
            interim_seconds: DEFAULT_INTERIM_SECONDS,
            max_call_seconds: None,
            answered_at_ms: None,
            valid_until_ms: 0,
            rang: false,
            cancel_cause: None,
            caller_gone: false,
            stopped: false,
        };
        (call, vec![Output::Start(body)])
    }

    pub fn call_id(&self) -> Option<CallId> {
        self.call_id
    }

    pub fn sip_call_id(&self) -> Option<&str> {
        self.leg.as_ref().map(|l| l.call_id())
    }

    pub fn leg_id(&self) -> &str {
        &self.setup.leg_id
    }

    /// Over and nothing left to retransmit or absorb: the driver may forget the call.
    pub fn is_finished(&self) -> bool {
        self.stage == Stage::Ended && self.leg.as_ref().is_none_or(|l| l.is_finished())
    }

    pub fn is_ended(&self) -> bool {
        self.stage == Stage::Ended
    }

    /// Cumulative talk time since the 200 OK.
    pub fn talk_ms(&self, now_ms: u64) -> u64 {
        self.answered_at_ms.map_or(0, |a| now_ms.saturating_sub(a))
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Output> {
        match input {
            Input::Started(result) => self.on_started(now_ms, result),
            Input::Answered(seq, result) => self.on_answer(now_ms, seq, result),
            Input::Sip(message) => match self.leg.as_mut() {
                Some(leg) => {
                    let out = leg.on_message(message);
                    self.leg_outputs(now_ms, out)
                }
                None => Vec::new(),
            },
            Input::Timer(t) => self.on_timer(now_ms, t),
            Input::ApiHangup(_) => self.end(now_ms, EndCause::HangupRequested, FailCause::CallerCancelled),
            Input::CallerHangup => {
                self.caller_gone = true;
                self.end(now_ms, EndCause::CallerHangup, FailCause::CallerCancelled)
            }
            Input::MediaError => self.end(now_ms, EndCause::MediaError, FailCause::TrunkError),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn report(&mut self, progress: Progress) -> Option<Output> {
        let call_id = self.call_id?;
        let seq = self.next_seq();
        Some(Output::Meter(Report::Progress {
            call_id,
            seq,
            progress,
        }))
    }

    fn on_started(&mut self, now_ms: u64, result: Result<Grant, MeterError>) -> Vec<Output> {
        if self.stage != Stage::Starting {
            return Vec::new();
        }
        let grant = match result {
            Ok(g) => g,
            Err(e) => {
                self.stage = Stage::Ended;
                return vec![Output::Notice(Notice::Denied {
                    code: e.code,
                    message: e.message,
                })];
            }
        };
        self.call_id = Some(grant.call_id);
        self.interim_seconds = grant.interim_seconds.unwrap_or(DEFAULT_INTERIM_SECONDS).max(1);
        self.max_call_seconds = grant.max_call_seconds;
        let ring = grant.max_ring_seconds.unwrap_or(DEFAULT_MAX_RING_SECONDS);
        let mut out = self.take_grant(now_ms, grant);
        if self.caller_gone {
            // The caller left while we asked: the call exists at the api, so report it failed.
            self.stage = Stage::Ended;
            out.extend(self.report(Progress::Failed {
                cause: FailCause::CallerCancelled,
                sip_status: None,
            }));
            return out;
        }
        self.stage = Stage::Setup;
        let (leg, leg_out) = Leg::invite(
            self.setup.leg.clone(),
            self.setup.destination.digits(),
            self.setup.media.clone(),
        );
        self.leg = Some(leg);
        out.push(Output::Arm(CallTimer::Ring, Duration::from_secs(ring)));
        out.extend(self.leg_outputs(now_ms, leg_out));
        out
    }

    /// Takes a new grant: the ceiling never goes down; validity restarts from now.
    fn take_grant(&mut self, now_ms: u64, grant: Grant) -> Vec<Output> {
        let mut out = vec![Output::Notice(Notice::Granted {
            granted_seconds: grant.granted_seconds,
            final_unit: grant.final_unit,
        })];
        let ceiling = self
            .grant
            .as_ref()
            .map_or(0, |g| g.granted_seconds)
            .max(grant.granted_seconds);
        self.valid_until_ms = now_ms + grant.validity_seconds * 1000;
        let hangup = grant.hangup.is_some();
        self.grant = Some(Grant {
            granted_seconds: ceiling,
            ..grant
        });
        out.push(Output::Arm(
            CallTimer::Validity,
            Duration::from_millis(self.valid_until_ms - now_ms),
        ));
        out.extend(self.arm_ceiling(now_ms));
        if hangup && self.stage != Stage::Ended {
            out.extend(self.end(now_ms, EndCause::HangupRequested, FailCause::CallerCancelled));
        }
        out
    }

    /// Arms the ceiling (and the warning tone before a final one) while talking.
    fn arm_ceiling(&self, now_ms: u64) -> Vec<Output> {
        let (Some(answered), Some(grant)) = (self.answered_at_ms, &self.grant) else {
            return Vec::new();
        };
        let end_ms = answered + grant.granted_seconds * 1000;
        let after = Duration::from_millis(end_ms.saturating_sub(now_ms));
        let mut out = vec![Output::Arm(CallTimer::Ceiling, after)];
        if grant.final_unit {
            let tone_at = end_ms.saturating_sub(TONE_LEAD_MS).max(now_ms);
            out.push(Output::Arm(
                CallTimer::Tone,
                Duration::from_millis(tone_at - now_ms),
            ));
        }
        out
    }

    fn on_answer(&mut self, now_ms: u64, seq: u64, result: Result<ReportAnswer, MeterError>) -> Vec<Output> {
        match result {
            Ok(ReportAnswer::Grant(g)) if self.stage != Stage::Ended => self.take_grant(now_ms, g),
            Ok(_) => Vec::new(),
            // 410: the api ended the call (swept, or ended elsewhere): hang up.
            Err(e) if e.status == Some(410) => {
                self.end(now_ms, EndCause::HangupRequested, FailCause::CallerCancelled)
            }
            // Other refusals of one report change nothing: the grant in hand still rules,
            // and its expiry ends the call if no later report is answered.
            Err(_) => {
                let _ = seq;
                Vec::new()
            }
        }
    }

    fn on_timer(&mut self, now_ms: u64, timer: CallTimer) -> Vec<Output> {
        match timer {
            CallTimer::Leg(t) => match self.leg.as_mut() {
                Some(leg) => {
                    let out = leg.on_timer(t);
                    self.leg_outputs(now_ms, out)
                }
                None => Vec::new(),
            },
            CallTimer::Ring if self.stage == Stage::Setup => {
                self.cancel_cause = Some(FailCause::RingTimeout);
                self.hangup_leg(now_ms)
            }
            CallTimer::Interim if self.stage == Stage::Talking => {
                let mut out = self.interim(now_ms);
                out.push(Output::Arm(
                    CallTimer::Interim,
                    Duration::from_secs(self.interim_seconds),
                ));
                out
            }
            CallTimer::Ceiling if self.stage == Stage::Talking => self.on_ceiling(now_ms),
            CallTimer::CeilingGrace if self.stage == Stage::Talking => {
                if self.ceiling_ms().is_some_and(|c| now_ms >= c) {
                    self.end(now_ms, EndCause::GrantExpired, FailCause::TrunkError)
                } else {
                    Vec::new()
                }
            }
            CallTimer::Validity if now_ms >= self.valid_until_ms => match self.stage {
                Stage::Talking => self.end(now_ms, EndCause::GrantExpired, FailCause::TrunkError),
                // Unanswered and the api silent: the ring would be free, but nobody would
                // meter its answer; give up as unreachable.
                Stage::Setup => {
                    self.cancel_cause = Some(FailCause::Unreachable);
                    self.hangup_leg(now_ms)
                }
                _ => Vec::new(),
            },
            CallTimer::Tone if self.stage == Stage::Talking => vec![Output::Media(MediaCommand::WarningTone)],
            _ => Vec::new(),
        }
    }

    fn ceiling_ms(&self) -> Option<u64> {
        Some(self.answered_at_ms? + self.grant.as_ref()?.granted_seconds * 1000)
    }

    fn on_ceiling(&mut self, now_ms: u64) -> Vec<Output> {
        let Some(ceiling) = self.ceiling_ms() else {
            return Vec::new();
        };
        if now_ms < ceiling {
            return Vec::new(); // raised meanwhile; the newer arming stands
        }
        let final_unit = self.grant.as_ref().is_some_and(|g| g.final_unit);
        if final_unit {
            let granted = self.grant.as_ref().map_or(0, |g| g.granted_seconds);
            let cause = match self.max_call_seconds {
                Some(max) if granted >= max => EndCause::MaxDuration,
                _ => EndCause::FinalUnit,
            };
            return self.end(now_ms, cause, FailCause::TrunkError);
        }
        // A non-final ceiling reached: report at once; hang up unless the answer raises it.
        let mut out = self.interim(now_ms);
        out.push(Output::Arm(
            CallTimer::CeilingGrace,
            Duration::from_millis(CEILING_GRACE_MS),
        ));
        out
    }

    fn interim(&mut self, now_ms: u64) -> Vec<Output> {
        let Some(call_id) = self.call_id else {
            return Vec::new();
        };
        let seq = self.next_seq();
        vec![Output::Meter(Report::Interim {
            call_id,
            seq,
            talk_ms: self.talk_ms(now_ms),
        })]
    }

    /// Ends the call for `cause` (answered) or `fail` (not yet answered).
    fn end(&mut self, now_ms: u64, cause: EndCause, fail: FailCause) -> Vec<Output> {
        match self.stage {
            Stage::Starting => {
                // `start` is in flight: it is answered later, and then reported as cancelled.
                self.caller_gone = true;
                Vec::new()
            }
            Stage::Setup => {
                self.cancel_cause.get_or_insert(fail);
                self.hangup_leg(now_ms)
            }
            Stage::Talking => {
                let mut out = self.stop(now_ms, cause);
                out.extend(self.hangup_leg(now_ms));
                out
            }
            Stage::Ended => Vec::new(),
        }
    }

    fn hangup_leg(&mut self, now_ms: u64) -> Vec<Output> {
        match self.leg.as_mut() {
            Some(leg) => {
                let out = leg.hangup();
                self.leg_outputs(now_ms, out)
            }
            None => Vec::new(),
        }
    }

    /// The one `stop` of an answered call.
    fn stop(&mut self, now_ms: u64, cause: EndCause) -> Vec<Output> {
        if self.stopped {
            return Vec::new();
        }
        self.stopped = true;
        self.stage = Stage::Ended;
        let talk_ms = self.talk_ms(now_ms);
        let mut out = vec![Output::Media(MediaCommand::Stop)];
        if let Some(call_id) = self.call_id {
            let seq = self.next_seq();
            out.push(Output::Meter(Report::Stop {
                call_id,
                seq,
                talk_ms,
                cause,
                quality: None,
            }));
        }
        out.push(Output::Notice(Notice::Ended { cause, talk_ms }));
        out
    }

    fn leg_outputs(&mut self, now_ms: u64, outputs: Vec<LegOutput>) -> Vec<Output> {
        let mut out = Vec::new();
        for o in outputs {
            match o {
                LegOutput::Send(m) => out.push(Output::Send(m)),
                LegOutput::Arm(t, d) => out.push(Output::Arm(CallTimer::Leg(t), d)),
                LegOutput::Event(e) => out.extend(self.on_leg_event(now_ms, e)),
            }
        }
        out
    }

    fn on_leg_event(&mut self, now_ms: u64, event: LegEvent) -> Vec<Output> {
        match event {
            LegEvent::Ringing if self.stage == Stage::Setup && !self.rang => {
                self.rang = true;
                let mut out: Vec<Output> = self.report(Progress::Ringing).into_iter().collect();
                out.push(Output::Notice(Notice::Ringing));
                out
            }
            LegEvent::EarlyMedia(remote, codec) if self.stage == Stage::Setup => {
                vec![Output::Media(MediaCommand::Connect { remote, codec })]
            }
            LegEvent::Answered(remote, codec) if self.stage == Stage::Setup => {
                self.stage = Stage::Talking;
                self.answered_at_ms = Some(now_ms);
                let mut out: Vec<Output> = self.report(Progress::Answered).into_iter().collect();
                out.push(Output::Notice(Notice::Answered));
                out.push(Output::Media(MediaCommand::Connect { remote, codec }));
                out.push(Output::Arm(
                    CallTimer::Interim,
                    Duration::from_secs(self.interim_seconds),
                ));
                out.extend(self.arm_ceiling(now_ms));
                out
            }
            LegEvent::Failed(status) if self.stage == Stage::Setup => {
                self.stage = Stage::Ended;
                let cause = self.fail_cause(status);
                let sip_status = status.filter(|s| (300..=699).contains(s));
                let mut out: Vec<Output> = self
                    .report(Progress::Failed { cause, sip_status })
                    .into_iter()
                    .collect();
                out.push(Output::Media(MediaCommand::Stop));
                out.push(Output::Notice(Notice::Failed { cause, sip_status }));
                out
            }
            // The 200 had no usable SDP: the leg sends BYE; the answered call ends at once.
            LegEvent::Failed(_) if self.stage == Stage::Talking => self.stop(now_ms, EndCause::MediaError),
            LegEvent::Hold { hold, media } if self.stage == Stage::Talking => {
                let mut out = vec![
                    Output::Media(MediaCommand::Hold(hold)),
                    Output::Notice(Notice::Held(hold)),
                ];
                if !hold {
                    if let Ok(codec) = media.choose(&self.setup.media.codecs) {
                        out.push(Output::Media(MediaCommand::Connect { remote: media, codec }));
                    }
                }
                out
            }
            LegEvent::RemoteBye => self.stop(now_ms, EndCause::CalleeHangup),
            _ => Vec::new(),
        }
    }

    /// The failure cause of an unanswered call (docs/media.md has the table).
    fn fail_cause(&self, status: Option<u16>) -> FailCause {
        if let Some(cause) = self.cancel_cause {
            if matches!(status, Some(487) | None) || self.caller_gone {
                return cause;
            }
        }
        match status {
            None => FailCause::Unreachable,
            Some(486 | 600) => FailCause::Busy,
            Some(408 | 480 | 487) => FailCause::NoAnswer,
            Some(401 | 407 | 420 | 488 | 500..=599) => FailCause::TrunkError,
            Some(_) => FailCause::Rejected,
        }
    }
}
