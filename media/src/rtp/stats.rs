//! Per-call RTP statistics (RFC 3550 A.1, A.3, A.8): packets received and expected across
//! sequence wrap, interarrival jitter, and the round-trip time from RTCP's LSR/DLSR. Times are
//! passed in (8 kHz timestamp units and NTP middle-32 values); nothing reads a clock.

use ringledger_domain::call::LegQuality;

use super::packet::{ReportBlock, RtpHeader};

#[derive(Debug, Clone, Default)]
pub struct ReceiveStats {
    started: bool,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// RFC 3550 jitter estimate, in timestamp units ×16 (A.8's integer form).
    jitter_x16: u32,
    last_transit: Option<i64>,
    /// The peer's last SR (middle 32 bits of its NTP time) and when we got it.
    last_sr: Option<(u32, u32)>,
    /// Our latest RTT measurement, ms.
    rtt_ms: Option<u32>,
    pub ssrc: Option<u32>,
}

impl ReceiveStats {
    /// A packet arrived at `arrival_ts` (our clock in 8 kHz units).
    pub fn on_packet(&mut self, h: &RtpHeader, arrival_ts: u32) {
        if !self.started {
            self.started = true;
            self.base_seq = u32::from(h.seq);
            self.max_seq = h.seq;
            self.ssrc = Some(h.ssrc);
        } else {
            let delta = h.seq.wrapping_sub(self.max_seq);
            if delta != 0 && delta < 0x8000 {
                if h.seq < self.max_seq {
                    self.cycles = self.cycles.wrapping_add(1 << 16);
                }
                self.max_seq = h.seq;
            }
        }
        self.received = self.received.saturating_add(1);
        let transit = i64::from(arrival_ts) - i64::from(h.timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs().min(u64::from(u32::MAX >> 5));
            // J += (|D| - J) / 16, kept ×16; a wild timestamp from the peer saturates, never panics.
            let j = u64::from(self.jitter_x16);
            self.jitter_x16 = (j + d).saturating_sub((j + 8) >> 4).min(u64::from(u32::MAX >> 1)) as u32;
        }
        self.last_transit = Some(transit);
    }

    pub fn extended_max(&self) -> u32 {
        self.cycles + u32::from(self.max_seq)
    }

    pub fn expected(&self) -> u32 {
        if !self.started {
            return 0;
        }
        self.extended_max().wrapping_sub(self.base_seq).wrapping_add(1)
    }

    pub fn lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    pub fn jitter(&self) -> u32 {
        self.jitter_x16 >> 4
    }

    /// The peer sent an SR at its NTP middle-32 `ntp_mid`; we got it at our `now_mid`.
    pub fn on_sender_report(&mut self, ntp_mid: u32, now_mid: u32) {
        self.last_sr = Some((ntp_mid, now_mid));
    }

    /// A report block about our stream: RTT = now − LSR − DLSR (in 1/65536 s).
    pub fn on_report_block(&mut self, b: &ReportBlock, now_mid: u32) {
        if b.lsr == 0 {
            return;
        }
        let rtt = now_mid.wrapping_sub(b.lsr).wrapping_sub(b.dlsr);
        if rtt < 0x8000_0000 {
            self.rtt_ms = Some(((u64::from(rtt) * 1000) >> 16) as u32);
        }
    }

    /// The report block we send about the peer's stream (fraction since the last one).
    pub fn report_block(&mut self, now_mid: u32) -> Option<ReportBlock> {
        let ssrc = self.ssrc?;
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((ntp_mid, at)) => (ntp_mid, now_mid.wrapping_sub(at)),
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_max(),
            jitter: self.jitter(),
            lsr,
            dlsr,
        })
    }

    /// The leg's quality as `stop` reports it.
    pub fn quality(&self) -> LegQuality {
        let expected = u64::from(self.expected());
        let lost = self.lost().max(0) as u64;
        LegQuality {
            rtt_ms: self.rtt_ms.unwrap_or(0),
            jitter_ms: self.jitter() / 8,
            loss_per_mille: (lost * 1000).checked_div(expected).unwrap_or(0).min(1000) as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32) -> RtpHeader {
        RtpHeader {
            payload_type: 0,
            marker: false,
            seq,
            timestamp: ts,
            ssrc: 5,
        }
    }

    #[test]
    fn loss_counts_across_sequence_wrap() {
        let mut s = ReceiveStats::default();
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i != 7 && i != 8 {
                s.on_packet(&pkt(seq, i * 160), i * 160);
            }
            seq = seq.wrapping_add(1);
        }
        assert_eq!(s.expected(), 20);
        assert_eq!(s.lost(), 2);
        assert_eq!(s.quality().loss_per_mille, 100);
        assert_eq!(s.jitter(), 0, "perfectly paced packets have no jitter");
        let b = s.report_block(0).expect("block");
        assert_eq!(b.fraction_lost, 25); // 2/20 × 256
        assert_eq!(b.highest_seq, 65536 + 13);
    }

    #[test]
    fn jitter_follows_arrival_variation() {
        let mut s = ReceiveStats::default();
        for i in 0..200u32 {
            let wobble = if i % 2 == 0 { 0 } else { 80 }; // 10 ms late every other packet
            s.on_packet(&pkt(i as u16, i * 160), i * 160 + wobble);
        }
        let q = s.quality();
        assert!((8..=11).contains(&q.jitter_ms), "{q:?}");
    }

    #[test]
    fn rtt_comes_from_lsr_and_dlsr() {
        let mut s = ReceiveStats::default();
        let b = ReportBlock {
            lsr: 0x0001_0000,
            dlsr: 0x0000_8000,
            ..Default::default()
        };
        // Now is 1.6 s after LSR's 1 s mark, the peer held it 0.5 s: RTT 100 ms.
        s.on_report_block(&b, 0x0001_0000 + 0x0000_8000 + 6554);
        assert_eq!(s.quality().rtt_ms, 100);
    }
}
