//! The SIP side of the gateway, sans-IO: `rsip` messages, our RFC 3261 transaction layer
//! (docs/decisions/0007-sip-stack.md), digest authentication, SDP, and the call leg toward
//! the trunk. Nothing here owns a socket or reads a clock.

pub mod client_tx;
pub mod digest;
pub mod leg;
pub mod msg;
pub mod sdp;
pub mod server_tx;
pub mod timers;
#[cfg(test)]
mod tx_props;
