//! Property tests of the transaction state machines against RFC 3261's timer rules: a
//! simulated clock fires the armed timers in deadline order while random responses arrive at
//! random times, and the recorded actions are checked against §17's rules.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::client_tx::{ClientAction, InviteClient, NonInviteClient};
use super::server_tx::{InviteServer, NonInviteServer, ServerAction};
use super::timers::{Timer, Timers};

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// Armed timers by deadline; re-arming a timer replaces its deadline.
#[derive(Default)]
struct Clock {
    now: u64,
    armed: BTreeMap<Timer, u64>,
}

impl Clock {
    fn arm(&mut self, t: Timer, after: Duration) {
        self.armed.insert(t, self.now + ms(after));
    }

    /// The next timer due at or before `until`, removed from the armed set.
    fn next_due(&mut self, until: u64) -> Option<Timer> {
        let (&t, &at) = self.armed.iter().min_by_key(|(t, at)| (**at, **t))?;
        if at > until {
            return None;
        }
        self.armed.remove(&t);
        self.now = at;
        Some(t)
    }
}

fn timers_strategy() -> impl Strategy<Value = Timers> {
    (50u64..1000, 2u64..16, 1u64..12).prop_map(|(t1, t2x, t4x)| Timers {
        t1: Duration::from_millis(t1),
        t2: Duration::from_millis(t1 * t2x),
        t4: Duration::from_millis(t1 * t4x),
        d: Duration::from_millis(t1 * 64),
    })
}

/// Responses at random gaps (ms).
fn script() -> impl Strategy<Value = Vec<(u64, u16)>> {
    let status = prop::sample::select(vec![100u16, 180, 183, 200, 202, 401, 404, 486, 487, 503, 603]);
    prop::collection::vec((0u64..40_000, status), 0..8)
}

/// Runs a client transaction over `script`, then lets every timer run out.
fn run_client<T>(
    start: (T, Vec<ClientAction>),
    script: &[(u64, u16)],
    on_response: impl Fn(&mut T, u16) -> Vec<ClientAction>,
    on_timer: impl Fn(&mut T, Timer) -> Vec<ClientAction>,
) -> Vec<(u64, Option<u16>, ClientAction)> {
    let (mut tx, first) = start;
    let mut clock = Clock::default();
    let mut log = Vec::new();
    let record = |clock: &mut Clock, input: Option<u16>, actions: Vec<ClientAction>, log: &mut Vec<_>| {
        for a in actions {
            if let ClientAction::Arm(t, d) = a {
                clock.arm(t, d);
            }
            log.push((clock.now, input, a));
        }
    };
    record(&mut clock, None, first, &mut log);
    for &(gap, status) in script {
        let at = clock.now + gap;
        while let Some(t) = clock.next_due(at) {
            let a = on_timer(&mut tx, t);
            record(&mut clock, None, a, &mut log);
        }
        clock.now = at;
        let a = on_response(&mut tx, status);
        record(&mut clock, Some(status), a, &mut log);
    }
    while let Some(t) = clock.next_due(u64::MAX) {
        let a = on_timer(&mut tx, t);
        record(&mut clock, None, a, &mut log);
    }
    log
}

fn first_response_at(script: &[(u64, u16)], pred: impl Fn(u16) -> bool) -> Option<u64> {
    let mut t = 0;
    for &(gap, s) in script {
        t += gap;
        if pred(s) {
            return Some(t);
        }
    }
    None
}

/// Checks the rules every client transaction shares and returns the transmit times.
fn common_rules(log: &[(u64, Option<u16>, ClientAction)]) -> Vec<u64> {
    rules(log, true, false)
}

/// `proceeding_forever`: an INVITE that got only provisionals waits for its user (timer C or a
/// CANCEL live above the transaction, §17.1.1.2), so it must not terminate by itself.
fn rules(log: &[(u64, Option<u16>, ClientAction)], invite: bool, proceeding_forever: bool) -> Vec<u64> {
    let ends: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, e)| e.2 == ClientAction::Terminated)
        .map(|(i, _)| i)
        .collect();
    if proceeding_forever {
        assert!(ends.is_empty(), "a proceeding INVITE waits for its user: {log:?}");
    } else {
        assert_eq!(ends.len(), 1, "terminates exactly once: {log:?}");
        assert_eq!(ends[0], log.len() - 1, "nothing after Terminated: {log:?}");
    }
    // INVITE: never a retransmission once any response arrived (non-INVITE: checked apart).
    if let Some(first) = log.iter().position(|e| e.1.is_some()).filter(|_| invite) {
        assert!(
            !log[first..].iter().any(|e| e.2 == ClientAction::Transmit),
            "{log:?}"
        );
    }
    log.iter()
        .filter(|e| e.2 == ClientAction::Transmit)
        .map(|e| e.0)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invite_client_follows_timers_a_b_d(timers in timers_strategy(), script in script()) {
        let log = run_client(InviteClient::start(timers), &script, |t, s| t.on_response(s), |t, x| t.on_timer(x));
        let t1 = ms(timers.t1);
        let b = 64 * t1;
        let first = first_response_at(&script, |_| true);
        let proceeding_forever = first.is_some_and(|f| f <= b) && first_response_at(&script, |s| s >= 200).is_none();
        let transmits = rules(&log, true, proceeding_forever);
        // Timer A: the INVITE goes out at 0, T1, 3T1, 7T1, … (doubling) until a response or B.
        let cutoff = first.map_or(b, |f| f.min(b));
        let expected: Vec<u64> = (0..).map(|k| ((1u64 << k) - 1) * t1).take_while(|&at| at < cutoff || at == 0).collect();
        let got: Vec<u64> = transmits.into_iter().filter(|&at| at < cutoff || at == 0).collect();
        prop_assert_eq!(&got, &expected);
        // Timer B: times out at 64*T1 exactly when nothing arrived before.
        let timed_out: Vec<u64> = log.iter().filter(|e| e.2 == ClientAction::TimedOut).map(|e| e.0).collect();
        if first.is_none_or(|f| f > b) {
            prop_assert_eq!(timed_out, vec![b]);
        } else {
            prop_assert!(timed_out.is_empty());
        }
        // One non-2xx final reaches the user; each copy of it is ACKed (§17.1.1.3).
        let finals: Vec<u16> = log.iter().filter_map(|e| match e.2 { ClientAction::Deliver(s) if s >= 300 => Some(s), _ => None }).collect();
        prop_assert!(finals.len() <= 1, "{:?}", log);
        let acks = log.iter().filter(|e| e.2 == ClientAction::AckFinal).count();
        if let Some(i) = log.iter().position(|e| matches!(e.2, ClientAction::Deliver(s) if s >= 300)) {
            let at = log[i].0;
            let end = at + ms(timers.d);
            let copies = script.iter().scan(0, |t, &(g, s)| { *t += g; Some((*t, s)) })
                .filter(|&(t, s)| s >= 300 && t >= at && t < end).count();
            prop_assert_eq!(acks, copies);
            // Timer D ends it.
            prop_assert_eq!(log.last().map(|e| e.0), Some(at + ms(timers.d)));
            prop_assert!(!log.iter().any(|e| matches!(e.2, ClientAction::Deliver(200..=299))));
        } else {
            prop_assert_eq!(acks, 0);
        }
        // 2xx: every copy goes up (the user ACKs each), until timer M.
        if let Some(i) = log.iter().position(|e| matches!(e.2, ClientAction::Deliver(200..=299))) {
            let at = log[i].0;
            let copies = script.iter().scan(0, |t, &(g, s)| { *t += g; Some((*t, s)) })
                .filter(|&(t, s)| (200..300).contains(&s) && t >= at && t < at + b).count();
            let delivered = log.iter().filter(|e| matches!(e.2, ClientAction::Deliver(200..=299))).count();
            prop_assert_eq!(delivered, copies);
            prop_assert_eq!(log.last().map(|e| e.0), Some(at + b));
        }
    }

    #[test]
    fn non_invite_client_follows_timers_e_f_k(timers in timers_strategy(), script in script()) {
        let log = run_client(NonInviteClient::start(timers), &script, |t, s| t.on_response(s), |t, x| t.on_timer(x));
        let transmits = rules(&log, false, false);
        let (t1, t2) = (ms(timers.t1), ms(timers.t2));
        let f = 64 * t1;
        let provisional = first_response_at(&script, |s| s < 200).filter(|&p| p < f);
        let fin = first_response_at(&script, |s| s >= 200).filter(|&x| x < f);
        let stop = fin.unwrap_or(f);
        // Timer E: T1 doubling to T2 while trying, T2 once proceeding; none after a final.
        let mut expected = vec![0u64];
        let mut interval = t1;
        let mut at = 0;
        loop {
            let proceeding = provisional.is_some_and(|p| p <= at);
            let next = at + if proceeding { t2 } else { interval };
            if next >= stop { break; }
            expected.push(next);
            at = next;
            if !proceeding { interval = (interval * 2).min(t2); }
        }
        // A provisional changes the interval only from the next arming on: compare the
        // schedule up to the provisional, and spacing ≤ T2 after it.
        let split = provisional.unwrap_or(u64::MAX);
        let before: Vec<u64> = transmits.iter().copied().filter(|&x| x <= split).collect();
        let want: Vec<u64> = expected.iter().copied().filter(|&x| x <= split).collect();
        prop_assert_eq!(&before, &want);
        for w in transmits.windows(2) {
            prop_assert!(w[1] - w[0] <= t2 && w[1] > w[0]);
        }
        // A retransmission due at the very instant the final response arrives may go first
        // (the harness fires due timers before that instant's response); none after it.
        prop_assert!(transmits.iter().all(|&x| x <= stop || x == 0));
        let timed_out: Vec<u64> = log.iter().filter(|e| e.2 == ClientAction::TimedOut).map(|e| e.0).collect();
        match fin {
            Some(x) => {
                prop_assert!(timed_out.is_empty());
                let finals = log.iter().filter(|e| matches!(e.2, ClientAction::Deliver(s) if s >= 200)).count();
                prop_assert_eq!(finals, 1);
                prop_assert_eq!(log.last().map(|e| e.0), Some(x + ms(timers.t4)));
            }
            None => prop_assert_eq!(timed_out, vec![f]),
        }
    }

    #[test]
    fn invite_server_retransmits_finals_until_ack(timers in timers_strategy(), status in 200u16..700, ack_after in prop::option::of(0u64..60_000)) {
        let mut tx = InviteServer::new(timers);
        let mut clock = Clock::default();
        let mut log: Vec<(u64, ServerAction)> = Vec::new();
        let apply = |clock: &mut Clock, log: &mut Vec<(u64, ServerAction)>, actions: Vec<ServerAction>| {
            for a in actions {
                if let ServerAction::Arm(t, d) = a { clock.arm(t, d); }
                log.push((clock.now, a));
            }
        };
        let a = tx.respond(status);
        apply(&mut clock, &mut log, a);
        let ack_at = ack_after.unwrap_or(u64::MAX);
        while let Some(t) = clock.next_due(ack_at) {
            let a = tx.on_timer(t);
            apply(&mut clock, &mut log, a);
        }
        if ack_at != u64::MAX { clock.now = clock.now.max(ack_at); let a = tx.on_ack(); apply(&mut clock, &mut log, a); }
        while let Some(t) = clock.next_due(u64::MAX) {
            let a = tx.on_timer(t);
            apply(&mut clock, &mut log, a);
        }
        let (t1, t2) = (ms(timers.t1), ms(timers.t2));
        let timeout = 64 * t1;
        let resends: Vec<u64> = log.iter().filter(|e| e.1 == ServerAction::Resend).map(|e| e.0).collect();
        // Timer G: T1, then doubling up to T2, until the ACK or 64*T1.
        let mut expected = Vec::new();
        let (mut at, mut gap) = (0u64, t1);
        while at + gap < timeout.min(ack_at) { at += gap; expected.push(at); gap = (gap * 2).min(t2); }
        if ack_at < timeout && expected.last().is_some_and(|&x| x >= ack_at) { expected.pop(); }
        let resends_before_ack: Vec<u64> = resends.iter().copied().filter(|&x| x < ack_at.min(timeout)).collect();
        prop_assert_eq!(resends_before_ack, expected.into_iter().filter(|&x| x < ack_at).collect::<Vec<_>>());
        prop_assert!(resends.iter().all(|&x| x <= ack_at));
        let timed_out = log.iter().any(|e| e.1 == ServerAction::AckTimedOut);
        prop_assert_eq!(timed_out, ack_at >= timeout);
        prop_assert_eq!(log.iter().filter(|e| e.1 == ServerAction::Terminated).count(), 1);
        prop_assert_eq!(log.last().map(|e| e.1), Some(ServerAction::Terminated));
        let end = log.last().map(|e| e.0).unwrap_or(0);
        if ack_at < timeout && status >= 300 {
            prop_assert_eq!(end, ack_at + ms(timers.t4));
        } else {
            prop_assert_eq!(end, timeout);
        }
    }

    #[test]
    fn non_invite_server_absorbs_retransmissions(timers in timers_strategy(), copies in prop::collection::vec(0u64..80_000, 0..6)) {
        let mut tx = NonInviteServer::new(timers);
        prop_assert!(tx.on_retransmission().is_empty(), "nothing to resend before the user answers");
        let a = tx.respond(200);
        prop_assert_eq!(a[0], ServerAction::Send);
        let j = 64 * ms(timers.t1);
        let mut sorted = copies.clone();
        sorted.sort_unstable();
        let mut fired = false;
        for at in sorted {
            if at >= j && !fired {
                prop_assert_eq!(tx.on_timer(Timer::J), vec![ServerAction::Terminated]);
                fired = true;
            }
            let resend = tx.on_retransmission();
            prop_assert_eq!(resend.is_empty(), fired);
        }
        prop_assert!(tx.respond(500).is_empty(), "one final response only");
    }
}

#[test]
fn an_unanswered_invite_is_sent_seven_times_and_times_out_at_32_s() {
    let log = run_client(
        InviteClient::start(Timers::default()),
        &[],
        |t, s| t.on_response(s),
        |t, x| t.on_timer(x),
    );
    let transmits = common_rules(&log);
    assert_eq!(transmits, vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
    assert!(log.iter().any(|e| e.0 == 32_000 && e.2 == ClientAction::TimedOut));
}

#[test]
fn an_unanswered_bye_backs_off_to_t2() {
    let log = run_client(
        NonInviteClient::start(Timers::default()),
        &[],
        |t, s| t.on_response(s),
        |t, x| t.on_timer(x),
    );
    let transmits = common_rules(&log);
    assert_eq!(
        transmits,
        vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
}
