//! The media gateway `ringledger-media` (WebRTC <-> SIP/RTP). Its process, SIP leg and
//! metering client are built by the media gateway issues; this crate holds the place in the
//! workspace's layering: it depends on the domain only and never touches the database.
