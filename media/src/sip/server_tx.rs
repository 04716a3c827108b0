//! Server transactions (RFC 3261 §17.2, with RFC 6026's `Accepted`) for the requests a trunk
//! sends inside a call: BYE and OPTIONS (non-INVITE) and re-INVITE (hold, unhold). Sans-IO:
//! retransmitted requests, the user's responses and fired timers in, actions out. The caller
//! keeps the last response and sends it when told. The INVITE server also does the UAS core's
//! 2xx retransmission until the ACK (§13.3.1.4), which RFC 6026 leaves to the user.

use std::time::Duration;

use super::timers::{Timer, Timers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAction {
    /// Send the response the user just gave.
    Send,
    /// Send the last response again.
    Resend,
    Arm(Timer, Duration),
    /// No ACK came for a final response within 64*T1 (timer H, or 2xx retransmission over).
    AckTimedOut,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Non-INVITE: `Trying`; INVITE: `Proceeding` before any response.
    Trying,
    Proceeding,
    Completed,
    /// INVITE: the ACK of a non-2xx final arrived.
    Confirmed,
    /// INVITE: a 2xx was sent (RFC 6026); `acked` once its ACK arrived.
    Accepted {
        acked: bool,
    },
    Terminated,
}

/// The non-INVITE server transaction (§17.2.2, Figure 8).
#[derive(Debug, Clone)]
pub struct NonInviteServer {
    state: ServerState,
    timers: Timers,
}

impl NonInviteServer {
    /// A new request arrived; the caller hands it to the user.
    pub fn new(timers: Timers) -> NonInviteServer {
        NonInviteServer {
            state: ServerState::Trying,
            timers,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The user responds with `status`.
    pub fn respond(&mut self, status: u16) -> Vec<ServerAction> {
        match (self.state, status) {
            (ServerState::Trying | ServerState::Proceeding, 100..=199) => {
                self.state = ServerState::Proceeding;
                vec![ServerAction::Send]
            }
            (ServerState::Trying | ServerState::Proceeding, 200..=699) => {
                self.state = ServerState::Completed;
                vec![
                    ServerAction::Send,
                    ServerAction::Arm(Timer::J, self.timers.timeout()),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// The same request again: answer with the last response, if any.
    pub fn on_retransmission(&mut self) -> Vec<ServerAction> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => vec![ServerAction::Resend],
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer) -> Vec<ServerAction> {
        if self.state == ServerState::Completed && timer == Timer::J {
            self.state = ServerState::Terminated;
            return vec![ServerAction::Terminated];
        }
        Vec::new()
    }
}

/// The INVITE server transaction (§17.2.1, Figure 7; RFC 6026 Figure 7).
#[derive(Debug, Clone)]
pub struct InviteServer {
    state: ServerState,
    timers: Timers,
    timer_g: Duration,
}

impl InviteServer {
    pub fn new(timers: Timers) -> InviteServer {
        InviteServer {
            state: ServerState::Trying,
            timers,
            timer_g: timers.t1,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn respond(&mut self, status: u16) -> Vec<ServerAction> {
        let open = matches!(self.state, ServerState::Trying | ServerState::Proceeding);
        if !open {
            return Vec::new();
        }
        let after = self.timers.timeout();
        match status {
            100..=199 => {
                self.state = ServerState::Proceeding;
                vec![ServerAction::Send]
            }
            200..=299 => {
                self.state = ServerState::Accepted { acked: false };
                vec![
                    ServerAction::Send,
                    ServerAction::Arm(Timer::G, self.timers.t1),
                    ServerAction::Arm(Timer::L, after),
                ]
            }
            300..=699 => {
                self.state = ServerState::Completed;
                vec![
                    ServerAction::Send,
                    ServerAction::Arm(Timer::G, self.timers.t1),
                    ServerAction::Arm(Timer::H, after),
                ]
            }
            _ => Vec::new(),
        }
    }

    /// The INVITE again: resend a provisional or a non-2xx final; in `Accepted` the 2xx is
    /// retransmitted on timer G anyway, so the copy is absorbed.
    pub fn on_retransmission(&mut self) -> Vec<ServerAction> {
        match self.state {
            ServerState::Proceeding | ServerState::Completed => vec![ServerAction::Resend],
            _ => Vec::new(),
        }
    }

    /// An ACK for this INVITE (same branch for a non-2xx; same dialog and CSeq for a 2xx).
    pub fn on_ack(&mut self) -> Vec<ServerAction> {
        match self.state {
            ServerState::Completed => {
                self.state = ServerState::Confirmed;
                vec![ServerAction::Arm(Timer::I, self.timers.t4)]
            }
            ServerState::Accepted { acked: false } => {
                self.state = ServerState::Accepted { acked: true };
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, timer: Timer) -> Vec<ServerAction> {
        match (self.state, timer) {
            (ServerState::Completed | ServerState::Accepted { acked: false }, Timer::G) => {
                self.timer_g = (self.timer_g * 2).min(self.timers.t2);
                vec![ServerAction::Resend, ServerAction::Arm(Timer::G, self.timer_g)]
            }
            (ServerState::Completed, Timer::H) => {
                self.state = ServerState::Terminated;
                vec![ServerAction::AckTimedOut, ServerAction::Terminated]
            }
            (ServerState::Confirmed, Timer::I) => {
                self.state = ServerState::Terminated;
                vec![ServerAction::Terminated]
            }
            (ServerState::Accepted { acked }, Timer::L) => {
                self.state = ServerState::Terminated;
                let mut out = Vec::new();
                if !acked {
                    out.push(ServerAction::AckTimedOut);
                }
                out.push(ServerAction::Terminated);
                out
            }
            _ => Vec::new(),
        }
    }
}
