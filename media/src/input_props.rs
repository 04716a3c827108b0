//! Whatever a trunk or a network sends, the parsers answer with a value or an error, never a
//! panic: SIP messages, SDP bodies, digest challenges, header parameters, RTP and RTCP packets
//! and the receive statistics over any sequence of packets.

use proptest::prelude::*;

use crate::rtp::packet::{parse_rtcp, parse_rtp, TelephoneEvent};
use crate::rtp::stats::ReceiveStats;
use crate::sip::digest::Challenge;
use crate::sip::msg;
use crate::sip::sdp::RemoteMedia;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), text in ".{0,300}") {
        let _ = msg::parse(&bytes);
        let _ = RemoteMedia::parse(&text);
        let _ = RemoteMedia::parse(&String::from_utf8_lossy(&bytes));
        let _ = Challenge::parse(&text);
        let _ = msg::param(&text, "tag");
        let _ = msg::uri_of(&text);
        let _ = parse_rtcp(&bytes);
        if let Some((h, payload)) = parse_rtp(&bytes) {
            let _ = TelephoneEvent::parse(payload);
            let mut s = ReceiveStats::default();
            s.on_packet(&h, 0);
            s.on_packet(&h, u32::MAX);
            let _ = s.quality();
        }
    }

    #[test]
    fn sdp_like_text_never_panics(lines in prop::collection::vec("[vocmat]=[ -~é]{0,40}", 0..20)) {
        let _ = RemoteMedia::parse(&lines.join("\r\n"));
    }

    #[test]
    fn receive_stats_take_any_sequence(packets in prop::collection::vec((any::<u16>(), any::<u32>(), any::<u32>()), 1..200)) {
        let mut s = ReceiveStats::default();
        for (seq, ts, arrival) in packets {
            let h = crate::rtp::packet::RtpHeader { payload_type: 0, marker: false, seq, timestamp: ts, ssrc: 1 };
            s.on_packet(&h, arrival);
        }
        let q = s.quality();
        prop_assert!(q.loss_per_mille <= 1000);
        let _ = s.report_block(0);
    }
}
