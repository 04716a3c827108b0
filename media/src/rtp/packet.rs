//! RTP (RFC 3550 §5) and RTCP sender/receiver reports (§6.4), and RFC 4733 telephone-event
//! payloads: parsed from and written to byte slices, no IO. Malformed packets are `None`.

/// An RTP packet's fixed header (CSRCs, extension and padding are skipped on reading).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub payload_type: u8,
    pub marker: bool,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

pub fn parse_rtp(buf: &[u8]) -> Option<(RtpHeader, &[u8])> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return None;
    }
    let padding = buf[0] & 0x20 != 0;
    let extension = buf[0] & 0x10 != 0;
    let csrc = usize::from(buf[0] & 0x0f);
    let mut start = 12 + 4 * csrc;
    if extension {
        let len_words = usize::from(u16::from_be_bytes([*buf.get(start + 2)?, *buf.get(start + 3)?]));
        start += 4 + 4 * len_words;
    }
    let mut end = buf.len();
    if padding {
        end = end.checked_sub(usize::from(*buf.last()?))?;
    }
    if start > end {
        return None;
    }
    let header = RtpHeader {
        payload_type: buf[1] & 0x7f,
        marker: buf[1] & 0x80 != 0,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    };
    Some((header, &buf[start..end]))
}

pub fn write_rtp(h: &RtpHeader, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80);
    out.push(h.payload_type & 0x7f | if h.marker { 0x80 } else { 0 });
    out.extend_from_slice(&h.seq.to_be_bytes());
    out.extend_from_slice(&h.timestamp.to_be_bytes());
    out.extend_from_slice(&h.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Whether a datagram on a muxed port is RTCP (RFC 5761 §4: PT 192–223).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 8 && (192..=223).contains(&buf[1])
}

/// One report block (§6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed cumulative count.
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from us.
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

/// What a received RTCP compound packet tells us.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcpInfo {
    /// The sender's SR: its SSRC and the middle 32 bits of its NTP timestamp.
    pub sender_report: Option<(u32, u32)>,
    pub blocks: Vec<ReportBlock>,
}

/// Writes an SR (when we sent media) or an RR with at most one report block.
pub fn write_report(
    ssrc: u32,
    sender: Option<(u64, u32, u32, u32)>,
    block: Option<ReportBlock>,
    out: &mut Vec<u8>,
) {
    out.clear();
    let count = u8::from(block.is_some());
    let (pt, words) = match sender {
        Some(_) => (200u8, 6 + 6 * u16::from(count)),
        None => (201u8, 1 + 6 * u16::from(count)),
    };
    out.push(0x80 | count);
    out.push(pt);
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some((ntp, rtp_ts, packets, octets)) = sender {
        out.extend_from_slice(&ntp.to_be_bytes());
        out.extend_from_slice(&rtp_ts.to_be_bytes());
        out.extend_from_slice(&packets.to_be_bytes());
        out.extend_from_slice(&octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        out.extend_from_slice(&(u32::from(b.fraction_lost) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.lsr.to_be_bytes());
        out.extend_from_slice(&b.dlsr.to_be_bytes());
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Reads the SRs and RRs of a compound packet; other packet types are skipped.
pub fn parse_rtcp(buf: &[u8]) -> Option<RtcpInfo> {
    let mut info = RtcpInfo::default();
    let mut at = 0;
    while at + 4 <= buf.len() {
        if buf[at] >> 6 != 2 {
            return None;
        }
        let count = usize::from(buf[at] & 0x1f);
        let pt = buf[at + 1];
        let len = (usize::from(u16::from_be_bytes([buf[at + 2], buf[at + 3]])) + 1) * 4;
        let pkt = buf.get(at..at + len)?;
        let blocks_at = match pt {
            200 => {
                let ssrc = be32(pkt, 4)?;
                let ntp_hi = be32(pkt, 8)?;
                let ntp_lo = be32(pkt, 12)?;
                info.sender_report = Some((ssrc, (ntp_hi << 16) | (ntp_lo >> 16)));
                Some(28)
            }
            201 => Some(8),
            _ => None,
        };
        if let Some(start) = blocks_at {
            for i in 0..count {
                let b = start + 24 * i;
                let word = be32(pkt, b + 4)?;
                let lost = (word & 0x00ff_ffff) as i32;
                info.blocks.push(ReportBlock {
                    ssrc: be32(pkt, b)?,
                    fraction_lost: (word >> 24) as u8,
                    cumulative_lost: if lost & 0x80_0000 != 0 {
                        lost - 0x100_0000
                    } else {
                        lost
                    },
                    highest_seq: be32(pkt, b + 8)?,
                    jitter: be32(pkt, b + 12)?,
                    lsr: be32(pkt, b + 16)?,
                    dlsr: be32(pkt, b + 20)?,
                });
            }
        }
        at += len;
    }
    Some(info)
}

/// An RFC 4733 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// 0–9, 10 = `*`, 11 = `#`, 12–15 = A–D, 16 = flash.
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        if payload.len() < 4 {
            return None;
        }
        Some(TelephoneEvent {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3f,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (self.volume & 0x3f) | if self.end { 0x80 } else { 0 },
            d[0],
            d[1],
        ]
    }

    /// The key as a person reads it.
    pub fn symbol(self) -> char {
        match self.event {
            0..=9 => char::from(b'0' + self.event),
            10 => '*',
            11 => '#',
            12..=15 => char::from(b'A' + self.event - 12),
            _ => '!',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_round_trips_and_skips_csrc_and_padding() {
        let h = RtpHeader {
            payload_type: 8,
            marker: true,
            seq: 65535,
            timestamp: 160,
            ssrc: 0xdead_beef,
        };
        let mut out = Vec::new();
        write_rtp(&h, &[1, 2, 3], &mut out);
        let (back, payload) = parse_rtp(&out).expect("parse");
        assert_eq!((back, payload), (h, &[1u8, 2, 3][..]));
        // One CSRC and two bytes of padding.
        let mut p = vec![0xa1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9, 7, 0, 2];
        assert_eq!(parse_rtp(&p).map(|x| x.1), Some(&[7u8][..]));
        p[0] = 0x40;
        assert_eq!(parse_rtp(&p), None, "version 1 is refused");
        assert_eq!(parse_rtp(&[0x80, 0]), None);
    }

    #[test]
    fn reports_round_trip() {
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 40,
            lsr: 0x1234_5678,
            dlsr: 65536,
        };
        let mut out = Vec::new();
        write_report(
            9,
            Some((0x0000_0001_0002_0003, 160, 10, 1600)),
            Some(block),
            &mut out,
        );
        assert!(is_rtcp(&out));
        let info = parse_rtcp(&out).expect("parse");
        assert_eq!(info.sender_report, Some((9, 0x0001_0002)));
        assert_eq!(info.blocks, vec![block]);
        write_report(9, None, None, &mut out);
        assert_eq!(parse_rtcp(&out), Some(RtcpInfo::default()));
        assert_eq!(parse_rtcp(&[0x80, 201, 0, 9]), None, "length past the end");
    }

    #[test]
    fn telephone_events_read_and_write() {
        let e = TelephoneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(TelephoneEvent::parse(&e.to_bytes()), Some(e));
        assert_eq!(e.symbol(), '#');
    }
}
