//! RFC 3261 timer values (§17, Table 4) and the names of the timers the transaction state
//! machines arm. The machines never read a clock: they ask their driver to arm a timer for a
//! duration and are told when it fires; a re-armed timer replaces the earlier deadline.

use std::time::Duration;

/// A transaction timer (RFC 3261 §17 and RFC 6026's `L`/`M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// INVITE client: retransmit the request (starts at T1, doubles).
    A,
    /// INVITE client: give up waiting for any response (64*T1).
    B,
    /// INVITE client: absorb retransmitted non-2xx finals (≥ 32 s on UDP).
    D,
    /// Non-INVITE client: retransmit (T1 doubling up to T2; T2 once proceeding).
    E,
    /// Non-INVITE client: give up waiting for a final response (64*T1).
    F,
    /// Non-INVITE client: absorb retransmitted finals (T4).
    K,
    /// INVITE client (RFC 6026): absorb 2xx retransmissions in `Accepted` (64*T1).
    M,
    /// INVITE server: retransmit the final response until the ACK (T1 doubling up to T2).
    G,
    /// INVITE server: give up waiting for the ACK of a non-2xx final (64*T1).
    H,
    /// INVITE server: absorb ACK retransmissions (T4).
    I,
    /// Non-INVITE server: absorb request retransmissions (64*T1).
    J,
    /// INVITE server (RFC 6026): absorb INVITE retransmissions in `Accepted` (64*T1).
    L,
}

/// T1, T2, T4 and timer D. Defaults are RFC 3261's for UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (500 ms).
    pub t1: Duration,
    /// Longest retransmission interval of non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s).
    pub t4: Duration,
    /// Timer D: at least 32 s on UDP.
    pub d: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            d: Duration::from_secs(32),
        }
    }
}

impl Timers {
    /// 64*T1: timers B, F, H, J, L and M.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}
