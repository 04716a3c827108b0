//! The metering protocol as a state machine under random delivery: a media node's reports
//! (answered, interims with cumulative talk, stop) are lost, duplicated and reordered; an api
//! loop drives the Call aggregate and the real Account aggregate from each decision (reserve
//! the grant asked for, record or refuse it, settle at the end, sweep a call whose stop was
//! lost). Whatever the delivery, the money charged is the cost of the seconds acknowledged,
//! capped by what was reserved, never more, and the ticks add up to the final cost.

use proptest::prelude::*;

use super::support::*;
use crate::account::{Account, AccountCommand, AccountEvent};
use crate::ids::PaymentId;

#[derive(Debug, Clone, Copy)]
enum Report {
    Answered { seq: u64 },
    Interim { seq: u64, talk_ms: u64 },
    Stop { seq: u64, talk_ms: u64 },
}

impl Report {
    fn seq(self) -> u64 {
        match self {
            Report::Answered { seq } | Report::Interim { seq, .. } | Report::Stop { seq, .. } => seq,
        }
    }
    fn talk_ms(self) -> u64 {
        match self {
            Report::Answered { .. } => 0,
            Report::Interim { talk_ms, .. } | Report::Stop { talk_ms, .. } => talk_ms,
        }
    }
    fn command(self, s: i64) -> CallCommand {
        match self {
            Report::Answered { seq } => progress(seq, Progress::Answered, s),
            Report::Interim { seq, talk_ms } => interim(seq, talk_ms, s),
            Report::Stop { seq, talk_ms } => stop(seq, talk_ms, EndCause::CallerHangup, s),
        }
    }
}

/// The api side: the Call and the Account, and everything the Call stream recorded.
struct Api {
    call: Call,
    account: Account,
    recorded: Vec<CallEvent>,
    settlements: Vec<AccountEvent>,
    next_reservation: u128,
}

impl Api {
    fn apply(&mut self, events: &[CallEvent]) {
        for event in events {
            self.call.fold(event);
        }
        self.recorded.extend_from_slice(events);
    }

    fn account_do(&mut self, command: AccountCommand) -> Result<Vec<AccountEvent>, String> {
        let events = self.account.decide(&command).map_err(|e| e.to_string())?;
        for event in &events {
            self.account.fold(event);
        }
        Ok(events)
    }

    /// Runs a decision's follow-ups: reserve and record grants, settle an ended call.
    fn follow(&mut self, mut decision: Decision, s: i64) -> Result<(), TestCaseError> {
        for _ in 0..4 {
            self.apply(&decision.events);
            if let Some(cost) = decision.settle {
                let events = self
                    .account_do(AccountCommand::SettleCall {
                        call_id: call_id(),
                        cost,
                    })
                    .map_err(TestCaseError::fail)?;
                self.settlements.extend(events);
            }
            let Some(request) = decision.grant else {
                return Ok(());
            };
            let available = self.account.balances().available;
            let amount = request.amount.micros().min(available);
            self.next_reservation += 1;
            let reservation_id = res(self.next_reservation);
            let next = if amount > 0 {
                self.account_do(AccountCommand::ReserveCredit {
                    reservation_id,
                    call_id: call_id(),
                    amount: usd(amount),
                })
                .map_err(TestCaseError::fail)?;
                CallCommand::RecordGrant {
                    reservation_id,
                    amount: usd(amount),
                    now: at(s),
                }
            } else {
                CallCommand::RefuseGrant {
                    reason: FinalUnitReason::CreditExhausted,
                    now: at(s),
                }
            };
            decision = self
                .call
                .decide(&next)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        Err(TestCaseError::fail("a grant request that never settles"))
    }
}

fn any_tariff() -> impl Strategy<Value = Tariff> {
    (
        0i64..200_000,
        0i64..50_000,
        prop_oneof![Just(1u32), Just(6), Just(30), Just(60)],
        prop_oneof![Just(1u32), Just(6), Just(60)],
    )
        .prop_map(|(rate, fee, first, next)| tariff_with(rate, fee, first, next))
}

/// Reports in the order the node sends them, then delivered: each copied 0-2 times (lost,
/// once, duplicated), then neighbours swapped where `swaps` says.
fn delivery(steps: &[u64], copies: &[u8], swaps: &[bool], stop_copies: u8) -> (Vec<Report>, Vec<Report>) {
    let mut sent = vec![Report::Answered { seq: 1 }];
    let mut talk_ms = 0;
    for step in steps {
        talk_ms += step;
        sent.push(Report::Interim {
            seq: sent.len() as u64 + 1,
            talk_ms,
        });
    }
    sent.push(Report::Stop {
        seq: sent.len() as u64 + 1,
        talk_ms: talk_ms + 1_500,
    });
    let last = sent.len() - 1;
    let mut delivered = Vec::new();
    for (i, report) in sent.iter().enumerate() {
        let times = if i == last {
            stop_copies
        } else {
            copies[i % copies.len()]
        };
        delivered.extend(std::iter::repeat_n(*report, usize::from(times)));
    }
    for (j, swap) in swaps.iter().enumerate() {
        if *swap && j + 1 < delivered.len() {
            delivered.swap(j, j + 1);
        }
    }
    (sent, delivered)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn money_charged_is_the_cost_of_the_seconds_acknowledged_never_more(
        tariff in any_tariff(),
        funds in 0i64..400_000,
        max_call in 30u32..900,
        cap in 20_000i64..2_000_000,
        steps in proptest::collection::vec(0u64..15_000, 1..40),
        copies in proptest::collection::vec(0u8..=2, 1..40),
        swaps in proptest::collection::vec(any::<bool>(), 0..80),
        stop_copies in 0u8..=2,
    ) {
        let limits = Limits { max_call_seconds: max_call, daily_spend_cap_micros: cap, ..Limits::default() };
        let mut api = Api {
            call: Call::default(),
            account: Account::default(),
            recorded: vec![],
            settlements: vec![],
            next_reservation: 0,
        };
        api.account_do(AccountCommand::OpenAccount { account_id: account(), currency: USD }).map_err(TestCaseError::fail)?;
        if funds > 0 {
            api.account_do(AccountCommand::PurchaseCredit {
checkout_session_id: None,
                payment_id: PaymentId::parse("pi_1").expect("id"),
                paid: usd(funds),
                bonus: usd(0),
            }).map_err(TestCaseError::fail)?;
        }
        let mut caller = facts();
        caller.available = usd(funds);
        let decision = match api.call.decide(&start(place_with(tariff, caller, limits))) {
            Ok(decision) => decision,
            Err(CallError::Denied(Denial::InsufficientCredit { .. })) => {
                prop_assert!(tariff.cost(1).expect("cost").micros().max(1) > funds);
                return Ok(());
            }
            Err(CallError::Denied(Denial::DailySpendCap { .. })) => {
                prop_assert!(tariff.cost(1).expect("cost").micros().max(1) > cap);
                return Ok(());
            }
            Err(other) => return Err(TestCaseError::fail(other.to_string())),
        };
        api.follow(decision, 0)?;
        prop_assert!(api.call.granted_seconds() > 0 || tariff.cost(1).expect("cost").micros() > 0);

        let (_, delivered) = delivery(&steps, &copies, &swaps, stop_copies);
        let (mut last_seq, mut acked_ms, mut over) = (0u64, 0u64, false);
        let mut ceiling = api.call.granted_seconds();
        let mut s = 1;
        for report in delivered {
            s += 1;
            let seq = report.seq();
            let result = api.call.decide(&report.command(s));
            if seq < last_seq {
                prop_assert_eq!(result, Err(CallError::StaleSeq { seq, last: last_seq }));
            } else if seq == last_seq {
                let decision = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(decision.events.is_empty() && decision.grant.is_none() && decision.settle.is_none());
            } else if over {
                prop_assert_eq!(result, Err(CallError::CallOver("ended")));
            } else {
                let decision = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
                last_seq = seq;
                acked_ms = acked_ms.max(report.talk_ms());
                over = matches!(report, Report::Stop { .. });
                api.follow(decision, s)?;
                prop_assert!(api.call.granted_seconds() >= ceiling, "the ceiling never goes down");
                ceiling = api.call.granted_seconds();
            }
        }
        if !over {
            let decision = api.call.decide(&CallCommand::Sweep { now: at(s + 100_000) })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            api.follow(decision, s + 100_000)?;
        }

        // The final charge: the tariff's cost of the highest talk acknowledged.
        let ended: Vec<&CallEvent> = api.recorded.iter()
            .filter(|e| matches!(e, CallEvent::CallEnded { .. } | CallEvent::CallFailed { .. }))
            .collect();
        prop_assert_eq!(ended.len(), 1, "the call ends once");
        let expected_cost = tariff.cost(acked_ms.div_ceil(1_000)).expect("cost");
        let reserved: i64 = api.recorded.iter().map(|e| match e {
            CallEvent::CallGranted { amount, .. } => amount.micros(),
            _ => 0,
        }).sum();
        let final_cost = match ended[0] {
            CallEvent::CallEnded { cost, charged, overrun, reserved: r, .. } => {
                prop_assert_eq!(*cost, expected_cost);
                prop_assert_eq!(r.micros(), reserved);
                prop_assert_eq!(charged.micros(), cost.micros().min(reserved), "capped by reserved");
                prop_assert!(charged <= cost, "never more than the cost");
                prop_assert_eq!(charged.checked_add(*overrun).expect("sum"), *cost);
                match api.settlements.as_slice() {
                    [AccountEvent::ReservationSettled { charged: a, overrun: o, .. }, ..] => {
                        prop_assert_eq!((a, o), (charged, overrun), "the account agrees");
                    }
                    other => prop_assert!(false, "expected one settlement, got {:?}", other),
                }
                *cost
            }
            _ => {
                prop_assert_eq!(acked_ms, 0, "only an unanswered call fails");
                usd(0)
            }
        };

        // Ticks are cumulative: never a negative delta, and they add up to the final cost.
        let mut previous = 0i64;
        let mut sum = 0i64;
        for event in &api.recorded {
            if let CallEvent::CallTicked { cost, billed_seconds, .. } = event {
                prop_assert_eq!(*cost, tariff.cost(*billed_seconds).expect("cost"));
                prop_assert!(cost.micros() >= previous);
                sum += cost.micros() - previous;
                previous = cost.micros();
            }
        }
        prop_assert!(final_cost.micros() >= previous);
        prop_assert_eq!(sum + (final_cost.micros() - previous), final_cost.micros());

        // The account: every reservation settled, the customer paid exactly `charged`.
        let balances = api.account.balances();
        prop_assert_eq!(balances.reserved, 0);
        let charged = match ended[0] { CallEvent::CallEnded { charged, .. } => charged.micros(), _ => 0 };
        prop_assert_eq!(balances.available, funds - charged);
        prop_assert!(reserved <= funds);
    }
}
