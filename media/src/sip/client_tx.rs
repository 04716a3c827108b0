//! Client transactions (RFC 3261 §17.1, with RFC 6026's `Accepted` state), sans-IO: response
//! status codes and fired timers in, actions out. They know nothing of message syntax; the
//! caller keeps the request, builds the ACK and matches responses by branch. A transaction
//! never acts after `Terminated`, and never retransmits once any response arrived.

use std::time::Duration;

use super::timers::{Timer, Timers};

/// What the driver must do for a client transaction, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAction {
    /// Put the request on the wire (the first time or again).
    Transmit,
    /// ACK a non-2xx final response inside the transaction (§17.1.1.3).
    AckFinal,
    /// Hand this response to the transaction user.
    Deliver(u16),
    /// Arm (or re-arm) a timer.
    Arm(Timer, Duration),
    /// Timer B or F fired before a final response: the user treats it as a 408.
    TimedOut,
    /// The transaction is over; forget it.
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE: `Calling`; non-INVITE: `Trying`.
    Calling,
    Proceeding,
    Completed,
    /// INVITE only (RFC 6026): a 2xx arrived; retransmitted 2xx go to the user.
    Accepted,
    Terminated,
}

/// The INVITE client transaction (§17.1.1, Figure 5; RFC 6026 Figure 5).
#[derive(Debug, Clone)]
pub struct InviteClient {
    state: ClientState,
    timers: Timers,
    timer_a: Duration,
}

impl InviteClient {
    /// Starts the transaction: send the INVITE, arm A (T1) and B (64*T1).
    pub fn start(timers: Timers) -> (InviteClient, Vec<ClientAction>) {
        let tx = InviteClient {
            state: ClientState::Calling,
            timers,
            timer_a: timers.t1,
        };
        let actions = vec![
            ClientAction::Transmit,
            ClientAction::Arm(Timer::A, timers.t1),
            ClientAction::Arm(Timer::B, timers.timeout()),
        ];
        (tx, actions)
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn on_response(&mut self, status: u16) -> Vec<ClientAction> {
        use ClientState::*;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                vec![ClientAction::Deliver(status)]
            }
            (Calling | Proceeding, 200..=299) => {
                self.state = Accepted;
                vec![
                    ClientAction::Deliver(status),
                    ClientAction::Arm(Timer::M, self.timers.timeout()),
                ]
            }
            (Calling | Proceeding, 300..=699) => {
                self.state = Completed;
                vec![
                    ClientAction::AckFinal,
                    ClientAction::Deliver(status),
                    ClientAction::Arm(Timer::D, self.timers.d),
                ]
            }
            // A retransmitted final: ACK again, the user heard it already.
            (Completed, 300..=699) => vec![ClientAction::AckFinal],
            // The user ACKs every 2xx itself (§13.2.2.4), so retransmissions go up.
            (Accepted, 200..=299) => vec![ClientAction::Deliver(status)],
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer) -> Vec<ClientAction> {
        use ClientState::*;
        match (self.state, timer) {
            (Calling, Timer::A) => {
                // §17.1.1.2: the interval doubles on every retransmission (no T2 cap for INVITE).
                self.timer_a *= 2;
                vec![ClientAction::Transmit, ClientAction::Arm(Timer::A, self.timer_a)]
            }
            (Calling, Timer::B) => {
                self.state = Terminated;
                vec![ClientAction::TimedOut, ClientAction::Terminated]
            }
            (Completed, Timer::D) | (Accepted, Timer::M) => {
                self.state = Terminated;
                vec![ClientAction::Terminated]
            }
            _ => Vec::new(),
        }
    }
}

/// The non-INVITE client transaction (§17.1.2, Figure 6): BYE, CANCEL, OPTIONS.
#[derive(Debug, Clone)]
pub struct NonInviteClient {
    state: ClientState,
    timers: Timers,
    timer_e: Duration,
}

impl NonInviteClient {
    /// Starts the transaction: send the request, arm E (T1) and F (64*T1).
    pub fn start(timers: Timers) -> (NonInviteClient, Vec<ClientAction>) {
        let tx = NonInviteClient {
            state: ClientState::Calling,
            timers,
            timer_e: timers.t1,
        };
        let actions = vec![
            ClientAction::Transmit,
            ClientAction::Arm(Timer::E, timers.t1),
            ClientAction::Arm(Timer::F, timers.timeout()),
        ];
        (tx, actions)
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn on_response(&mut self, status: u16) -> Vec<ClientAction> {
        use ClientState::*;
        match (self.state, status) {
            (Calling | Proceeding, 100..=199) => {
                self.state = Proceeding;
                vec![ClientAction::Deliver(status)]
            }
            (Calling | Proceeding, 200..=699) => {
                self.state = Completed;
                vec![
                    ClientAction::Deliver(status),
                    ClientAction::Arm(Timer::K, self.timers.t4),
                ]
            }
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer) -> Vec<ClientAction> {
        use ClientState::*;
        match (self.state, timer) {
            (Calling, Timer::E) => {
                self.timer_e = (self.timer_e * 2).min(self.timers.t2);
                vec![ClientAction::Transmit, ClientAction::Arm(Timer::E, self.timer_e)]
            }
            // §17.1.2.2: once a provisional arrived, retransmit every T2.
            (Proceeding, Timer::E) => {
                vec![
                    ClientAction::Transmit,
                    ClientAction::Arm(Timer::E, self.timers.t2),
                ]
            }
            (Calling | Proceeding, Timer::F) => {
                self.state = Terminated;
                vec![ClientAction::TimedOut, ClientAction::Terminated]
            }
            (Completed, Timer::K) => {
                self.state = Terminated;
                vec![ClientAction::Terminated]
            }
            _ => Vec::new(),
        }
    }
}
