//! RTP/RTCP toward the trunk: packet formats, G.711 and tones, receive statistics, and the
//! per-call session task. PCMU/PCMA pass through; nothing is transcoded.

pub mod g711;
pub mod packet;
pub mod session;
pub mod stats;
