//! The media gateway `ringledger-media`: the SIP/RTP leg toward the trunk, the metering client
//! and the simulated trunk (issue 9); the browser's WebRTC leg comes later. The protocol logic
//! is sans-IO (events and timers in, actions out); sockets and clocks live in the thin driver.
//! It depends on the domain only and never touches the database.

pub mod app;
pub mod call;
pub mod config;
pub mod control;
pub mod driver;
pub mod metering;
pub mod rtp;
pub mod sip;

#[cfg(test)]
mod input_props;
pub mod trunk_sim;
