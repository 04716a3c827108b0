//! One call played by a node, as a media gateway would: quote and call token (what the
//! browser brings), `start`, ringing, then either a failure or an answer and an `interim`
//! every tick until someone hangs up, the final grant runs out (the BYE perhaps late), the
//! api asks for a hangup, the grant expires, or the node dies. Along the way it repeats some
//! reports (the api must answer as before), sends an older one after a newer (the api must
//! refuse it) and skips `seq` numbers (a gap is fine). It records what the api acknowledged,
//! so the end checks can hold the api to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringledger_domain::{AccountId, CallId};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::node::{Answer, Node};
use super::target::Target;

/// How long a node keeps retrying a `stop` (the protocol's 10 minutes).
pub const STOP_RETRY: Duration = Duration::from_secs(600);

/// What the simulated people on both ends will do.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub number: &'static str,
    pub ring: Duration,
    /// Fails before answer: the cause and SIP status.
    pub fail: Option<(&'static str, u16)>,
    /// Talk before one side hangs up (unless credit or the api ends it first).
    pub talk: Duration,
    pub hangup_cause: &'static str,
    /// How far past a final grant's ceiling the BYE arrives.
    pub late_bye: Duration,
    pub duplicate_p: f64,
    pub reorder_p: f64,
    pub gap_p: f64,
    pub seed: u64,
}

/// How the call ended, as the node saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `start` never got an answer, or was refused.
    NotStarted,
    /// Reported `failed` before answer, acknowledged.
    Failed,
    /// `stop` acknowledged with this cause.
    Stopped(String),
    /// The api answered `410 call_over` (the sweeper ended it first).
    Over,
    /// The node died holding the call: only the sweeper can end it.
    Abandoned,
    /// `stop` was sent but never acknowledged within the retry time.
    StopLost(String),
    /// Something the protocol does not allow happened (named in `anomalies`).
    Broken,
}

#[derive(Debug, Clone)]
pub struct CallRecord {
    pub account: AccountId,
    pub node: String,
    pub call_id: Option<CallId>,
    /// The start's refusal code (a 403), if refused.
    pub denied: Option<String>,
    pub started: bool,
    pub answered: bool,
    /// The highest talk an answered report carried, and the highest ever sent.
    pub acked_talk_ms: u64,
    pub sent_talk_ms: u64,
    pub final_unit: bool,
    pub late_bye: bool,
    pub hangup: Option<String>,
    pub settlement: Option<Value>,
    pub end: End,
    /// Protocol violations seen by the node (each fails the run).
    pub anomalies: Vec<String>,
}

/// The grant as the node holds it.
#[derive(Debug, Clone)]
struct Grant {
    granted_seconds: u64,
    final_unit: bool,
    valid_until: Instant,
    hangup: Option<String>,
}

impl Grant {
    fn read(answer: &Value) -> Option<Grant> {
        Some(Grant {
            granted_seconds: answer["granted_seconds"].as_u64()?,
            final_unit: answer["final_unit"].as_bool()?,
            valid_until: Instant::now() + Duration::from_secs(answer["validity_seconds"].as_u64()?),
            hangup: answer["hangup"].as_str().map(str::to_owned),
        })
    }
}

/// What a call needs from the run around it.
#[derive(Clone)]
pub struct CallContext {
    pub node: Arc<Node>,
    pub target: Arc<Target>,
    pub tick: Duration,
    /// Set when the run is over: live calls hang up at once.
    pub drain: watch::Receiver<bool>,
}

/// Why the wait between reports ended.
enum Woke {
    Time,
    Hangup(String),
    Dead,
    Drain,
}

struct Live<'a> {
    cx: &'a CallContext,
    rec: CallRecord,
    call_id: CallId,
    seq: u64,
    grant: Grant,
    rng: StdRng,
    gap_p: f64,
    hangup_rx: super::node::HangupRx,
    dead_rx: watch::Receiver<bool>,
    drain_rx: watch::Receiver<bool>,
}

pub async fn play(cx: &CallContext, account: AccountId, plan: CallPlan) -> CallRecord {
    let mut rec = CallRecord {
        account,
        node: cx.node.id.as_str().to_owned(),
        call_id: None,
        denied: None,
        started: false,
        answered: false,
        acked_talk_ms: 0,
        sent_talk_ms: 0,
        final_unit: false,
        late_bye: false,
        hangup: None,
        settlement: None,
        end: End::NotStarted,
        anomalies: vec![],
    };
    if cx.node.is_dead() {
        return rec;
    }
    let quote = match cx.target.quote(account, plan.number).await {
        Ok(q) => q,
        Err(e) => {
            rec.anomalies.push(format!("quote failed: {e}"));
            rec.end = End::Broken;
            return rec;
        }
    };
    let (call_token, call_id) = match cx.target.call_token(account, &cx.node.id) {
        Ok(t) => t,
        Err(e) => {
            rec.anomalies.push(format!("call token: {e}"));
            rec.end = End::Broken;
            return rec;
        }
    };
    rec.call_id = Some(call_id);
    let hangup_rx = cx.node.track(call_id);
    let body = json!({
        "call_token": call_token, "quote_id": quote.id.to_string(), "destination": plan.number,
        "leg_id": format!("leg-{}", call_id.0.simple()), "sent_at": Utc::now().to_rfc3339(),
    });
    let answer = cx
        .node
        .send("start", &body, Instant::now() + Duration::from_secs(10))
        .await;
    let grant = match answer {
        Answer::Ok(grant, took) => {
            cx.node.stats.start_answered(took);
            Grant::read(&grant)
        }
        Answer::Refused(403, body) => {
            let code = body["code"].as_str().unwrap_or("forbidden").to_owned();
            cx.node.stats.denied(&code);
            rec.denied = Some(code);
            None
        }
        Answer::Refused(status, body) => {
            rec.anomalies.push(format!("start refused with {status}: {body}"));
            rec.end = End::Broken;
            None
        }
        Answer::Unreachable(e) => {
            if !cx.node.is_dead() {
                tracing::warn!(error = %e, "start got no answer");
            }
            None
        }
    };
    let Some(grant) = grant else {
        cx.node.forget(call_id);
        return rec;
    };
    rec.started = true;
    cx.node
        .stats
        .live_calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let live = Live {
        cx,
        rec,
        call_id,
        seq: 0,
        grant,
        rng: StdRng::seed_from_u64(plan.seed),
        gap_p: plan.gap_p,
        hangup_rx,
        dead_rx: cx.node.died(),
        drain_rx: cx.drain.clone(),
    };
    let rec = live.run(&plan).await;
    cx.node
        .stats
        .live_calls
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    cx.node.forget(call_id);
    let how = match &rec.end {
        End::Stopped(cause) => cause.as_str(),
        End::Failed => "failed",
        End::Over => "over (410)",
        End::Abandoned => "abandoned (node died)",
        End::StopLost(_) => "stop lost",
        End::Broken => "broken",
        End::NotStarted => "not started",
    };
    cx.node.stats.ended(how);
    rec
}

impl Live<'_> {
    async fn run(mut self, plan: &CallPlan) -> CallRecord {
        // Ringing.
        if !self.progress(json!({"state": "ringing"})).await {
            return self.rec;
        }
        match self.wait(Instant::now() + plan.ring).await {
            Woke::Time => {}
            Woke::Dead => return self.abandon(),
            Woke::Drain => return self.fail_before_answer("caller_cancelled", None).await,
            Woke::Hangup(reason) => {
                self.rec.hangup = Some(reason.clone());
                return self.stop(0, stop_cause(&reason)).await;
            }
        }
        if let Some((cause, sip)) = plan.fail {
            return self.fail_before_answer(cause, Some(sip)).await;
        }
        if !self.progress(json!({"state": "answered"})).await {
            return self.rec;
        }
        self.rec.answered = true;
        self.talk(plan).await
    }

    /// The answered call's life: interims every tick until it ends.
    async fn talk(mut self, plan: &CallPlan) -> CallRecord {
        let answered = Instant::now();
        let tick = self.cx.tick;
        let mut next_tick = answered + tick;
        let end_at = answered + plan.talk;
        let mut previous: Option<Value> = None;
        loop {
            let ceiling = answered + Duration::from_secs(self.grant.granted_seconds);
            let final_end = ceiling + plan.late_bye;
            if let Some(reason) = self.grant.hangup.clone() {
                // A late BYE: the node hangs up `late_bye` after the final grant's ceiling,
                // whatever the api says meanwhile.
                let late = reason == "final_unit" && Instant::now() < final_end;
                if !late {
                    self.rec.hangup = Some(reason.clone());
                    let talk = elapsed_ms(answered);
                    return self.stop(talk, stop_cause(&reason)).await;
                }
            }
            let mut wake = next_tick.min(end_at).min(self.grant.valid_until);
            wake = if self.grant.final_unit {
                wake.min(final_end)
            } else {
                wake.min(ceiling)
            };
            match self.wait(wake).await {
                Woke::Time => {}
                Woke::Dead => return self.abandon(),
                Woke::Drain => return self.stop(elapsed_ms(answered), "caller_hangup").await,
                Woke::Hangup(reason) => {
                    self.rec.hangup = Some(reason.clone());
                    return self.stop(elapsed_ms(answered), stop_cause(&reason)).await;
                }
            }
            let now = Instant::now();
            let talk = elapsed_ms(answered);
            if now >= end_at {
                return self.stop(talk, plan.hangup_cause).await;
            }
            if self.grant.final_unit && now >= final_end {
                return self.stop(talk, "final_unit").await;
            }
            if now >= self.grant.valid_until {
                return self.stop(talk, "grant_expired").await;
            }
            let at_ceiling = !self.grant.final_unit && now >= ceiling;
            if now >= next_tick || at_ceiling {
                let before = self.grant.granted_seconds;
                if self.interim(talk, &mut previous, plan).await {
                    return self.take();
                }
                if at_ceiling && self.grant.granted_seconds <= before && !self.grant.final_unit {
                    // The ceiling was reached and the answer did not raise it.
                    return self.stop(elapsed_ms(answered), "grant_expired").await;
                }
                while next_tick <= Instant::now() {
                    next_tick += tick;
                }
            }
        }
    }

    /// Sleeps until `until`, or a hangup, the node's death or the end of the run.
    async fn wait(&mut self, until: Instant) -> Woke {
        if *self.dead_rx.borrow() {
            return Woke::Dead;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => Woke::Time,
            changed = self.hangup_rx.changed() => match (changed, self.hangup_rx.borrow().clone()) {
                (Ok(()), Some(reason)) => Woke::Hangup(reason),
                _ => Woke::Time,
            },
            _ = self.dead_rx.wait_for(|d| *d) => Woke::Dead,
            _ = self.drain_rx.wait_for(|d| *d) => Woke::Drain,
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        if self.seq > 2 && self.rng.gen_bool(self.gap_p) {
            self.seq += 1;
            self.cx.node.stats.gaps.add();
        }
        self.seq
    }

    /// `progress`; false when the call is over (the record says how).
    async fn progress(&mut self, state: Value) -> bool {
        let seq = self.next_seq();
        let mut body = state;
        body["call_id"] = json!(self.call_id);
        body["seq"] = json!(seq);
        let answer = self.cx.node.send("progress", &body, self.grant.valid_until).await;
        match self.answered(answer, "progress", 0) {
            Ok(()) => true,
            Err(()) => false,
        }
    }

    /// One interim (perhaps repeated, perhaps followed by an older one); true when the call is
    /// over.
    async fn interim(&mut self, talk_ms: u64, previous: &mut Option<Value>, plan: &CallPlan) -> bool {
        let seq = self.next_seq();
        let body = json!({"call_id": self.call_id, "seq": seq, "talk_ms": talk_ms, "sent_at": Utc::now().to_rfc3339()});
        self.rec.sent_talk_ms = self.rec.sent_talk_ms.max(talk_ms);
        let granted_before = self.grant.granted_seconds;
        let answer = self.cx.node.send("interim", &body, self.grant.valid_until).await;
        let first = match &answer {
            Answer::Ok(first, took) => {
                self.cx.node.stats.interim_answered(*took);
                Some(first.clone())
            }
            _ => None,
        };
        if self.answered(answer, "interim", talk_ms).is_err() {
            return true;
        }
        if self.grant.granted_seconds > granted_before {
            self.cx.node.stats.regrants_seen.add();
        }
        if let Some(first) = first {
            if self.rng.gen_bool(plan.duplicate_p) {
                self.check_repeat(&body, &first).await;
            }
            if let Some(older) = previous.as_ref() {
                if self.rng.gen_bool(plan.reorder_p) {
                    self.check_older(older, seq).await;
                }
            }
        }
        *previous = Some(body);
        false
    }

    /// A repeat of the last report gets the first answer.
    async fn check_repeat(&mut self, body: &Value, first: &Value) {
        match self.cx.node.post_once("interim", body).await {
            Answer::Ok(again, _) => {
                let same = |v: &Value| {
                    (
                        v["seq"].clone(),
                        v["granted_seconds"].clone(),
                        v["valid_until"].clone(),
                    )
                };
                if same(&again) != same(first) {
                    self.rec
                        .anomalies
                        .push(format!("a repeated interim was answered {again}, first {first}"));
                }
                self.cx.node.stats.duplicates_checked.add();
            }
            Answer::Refused(410, _) => {}
            other => self
                .rec
                .anomalies
                .push(format!("a repeated interim got {other:?}")),
        }
    }

    /// An older report after a newer one is refused with `409 stale_seq`.
    async fn check_older(&mut self, older: &Value, last: u64) {
        match self.cx.node.post_once("interim", older).await {
            Answer::Refused(409, body) if body["code"] == "stale_seq" => {
                self.cx.node.stats.reorders_checked.add();
            }
            Answer::Refused(410, _) => {}
            other => self.rec.anomalies.push(format!(
                "interim seq {} sent after seq {last} got {other:?}, not 409 stale_seq",
                older["seq"]
            )),
        }
    }

    /// Reads an answer to a progress or interim report; `Err` when the call is over.
    fn answered(&mut self, answer: Answer, what: &str, talk_ms: u64) -> Result<(), ()> {
        match answer {
            Answer::Ok(body, _) => match Grant::read(&body) {
                Some(grant) => {
                    self.rec.acked_talk_ms = self.rec.acked_talk_ms.max(talk_ms);
                    self.grant = grant;
                    Ok(())
                }
                None => {
                    self.rec
                        .anomalies
                        .push(format!("{what} answered without a grant: {body}"));
                    self.rec.end = End::Broken;
                    Err(())
                }
            },
            Answer::Refused(410, _) => {
                self.rec.end = End::Over;
                Err(())
            }
            Answer::Refused(status, body) => {
                self.rec
                    .anomalies
                    .push(format!("{what} refused with {status}: {body}"));
                self.rec.end = End::Broken;
                Err(())
            }
            Answer::Unreachable(_) if self.cx.node.is_dead() => {
                self.rec.end = End::Abandoned;
                Err(())
            }
            // The api stayed unreachable until the grant expired: hang up and report it.
            Answer::Unreachable(_) => Ok(()),
        }
    }

    async fn fail_before_answer(mut self, cause: &str, sip_status: Option<u16>) -> CallRecord {
        let seq = self.next_seq();
        let body = json!({"call_id": self.call_id, "seq": seq, "state": "failed", "sip_status": sip_status, "cause": cause});
        match self
            .cx
            .node
            .send("progress", &body, Instant::now() + STOP_RETRY)
            .await
        {
            Answer::Ok(..) => self.rec.end = End::Failed,
            Answer::Refused(410, _) => self.rec.end = End::Over,
            Answer::Refused(status, body) => {
                self.rec
                    .anomalies
                    .push(format!("failed refused with {status}: {body}"));
                self.rec.end = End::Broken;
            }
            Answer::Unreachable(_) if self.cx.node.is_dead() => self.rec.end = End::Abandoned,
            Answer::Unreachable(_) => self.rec.end = End::StopLost(cause.to_owned()),
        }
        self.take()
    }

    async fn stop(mut self, talk_ms: u64, cause: &str) -> CallRecord {
        if cause == "final_unit" {
            self.rec.final_unit = true;
            self.cx.node.stats.final_units.add();
        }
        if talk_ms > self.grant.granted_seconds.saturating_mul(1_000) {
            // The BYE came after the grant: talk the house pays for (`overrun`).
            self.rec.late_bye = true;
            self.cx.node.stats.late_byes.add();
        }
        let seq = self.next_seq();
        let body = json!({"call_id": self.call_id, "seq": seq, "talk_ms": talk_ms, "cause": cause,
            "quality": {"browser": {"rtt_ms": 40, "jitter_ms": 5, "loss_per_mille": 2},
                        "trunk": {"rtt_ms": 20, "jitter_ms": 2, "loss_per_mille": 0}}});
        self.rec.sent_talk_ms = self.rec.sent_talk_ms.max(talk_ms);
        match self
            .cx
            .node
            .send("stop", &body, Instant::now() + STOP_RETRY)
            .await
        {
            Answer::Ok(settlement, _) => {
                self.rec.acked_talk_ms = self.rec.acked_talk_ms.max(talk_ms);
                self.rec.settlement = Some(settlement);
                self.rec.end = End::Stopped(cause.to_owned());
            }
            Answer::Refused(410, _) => self.rec.end = End::Over,
            Answer::Refused(status, body) => {
                self.rec
                    .anomalies
                    .push(format!("stop refused with {status}: {body}"));
                self.rec.end = End::Broken;
            }
            Answer::Unreachable(_) if self.cx.node.is_dead() => self.rec.end = End::Abandoned,
            Answer::Unreachable(_) => self.rec.end = End::StopLost(cause.to_owned()),
        }
        self.take()
    }

    fn abandon(mut self) -> CallRecord {
        self.rec.end = End::Abandoned;
        self.take()
    }

    fn take(self) -> CallRecord {
        self.rec
    }
}

/// The `stop` cause for a hangup the api asked for.
fn stop_cause(reason: &str) -> &'static str {
    match reason {
        "final_unit" => "final_unit",
        "max_duration" => "max_duration",
        _ => "hangup_requested",
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A random plan: `mean_talk` ± 90 %, a tenth of calls failing before answer, a third of
/// final units ending late by up to 3 s.
pub fn random_plan(rng: &mut StdRng, tick: Duration, mean_talk: Duration, chaos: bool) -> CallPlan {
    const FAILS: &[(&str, u16)] = &[
        ("busy", 486),
        ("no_answer", 480),
        ("rejected", 603),
        ("unreachable", 404),
    ];
    let fail = (rng.gen_bool(0.1)).then(|| FAILS[rng.gen_range(0..FAILS.len())]);
    let talk = mean_talk.mul_f64(rng.gen_range(0.1..1.9));
    let late = if chaos && rng.gen_bool(0.35) {
        Duration::from_millis(rng.gen_range(500..3_000))
    } else {
        Duration::ZERO
    };
    let p = |x: f64| if chaos { x } else { 0.0 };
    CallPlan {
        number: super::target::NUMBERS[rng.gen_range(0..super::target::NUMBERS.len())],
        ring: tick.mul_f64(rng.gen_range(0.0..1.5)),
        fail,
        talk,
        hangup_cause: if rng.gen_bool(0.5) {
            "caller_hangup"
        } else {
            "callee_hangup"
        },
        late_bye: late,
        duplicate_p: p(0.08),
        reorder_p: p(0.05),
        gap_p: p(0.05),
        seed: rng.gen(),
    }
}
