//! SDP offer/answer (RFC 3264, RFC 4566) for one audio stream: PCMU (0) and PCMA (8) passed
//! through, and RFC 4733 telephone-event. We write offers and answers and read the peer's;
//! anything else in the peer's SDP is ignored. A body we cannot use is a clear error, never a
//! panic.

use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    pub fn parse(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// Media direction (RFC 3264 §5.1); `sendonly`/`inactive` from the trunk means hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction to answer with (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the peer's direction puts us on hold (they will not send).
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }
}

/// What we offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub rtp_port: u16,
    /// In order of preference.
    pub codecs: Vec<Codec>,
    /// Payload type for telephone-event, if offered/accepted.
    pub telephone_event: Option<u8>,
    pub direction: Direction,
    /// Session id and version (o= line); the version grows with each new body.
    pub session_id: u64,
    pub version: u64,
}

impl LocalMedia {
    pub fn to_sdp(&self) -> String {
        let ip = match self.address {
            IpAddr::V4(_) => "IP4",
            IpAddr::V6(_) => "IP6",
        };
        let mut pts: Vec<String> = self.codecs.iter().map(|c| c.payload_type().to_string()).collect();
        if let Some(te) = self.telephone_event {
            pts.push(te.to_string());
        }
        let mut s = String::new();
        let _ = write!(
            s,
            "v=0\r\no=ringledger {} {} IN {ip} {addr}\r\ns=-\r\nc=IN {ip} {addr}\r\nt=0 0\r\nm=audio {} RTP/AVP {}\r\n",
            self.session_id,
            self.version,
            self.rtp_port,
            pts.join(" "),
            addr = self.address
        );
        for c in &self.codecs {
            let _ = write!(s, "a=rtpmap:{} {}/8000\r\n", c.payload_type(), c.name());
        }
        if let Some(te) = self.telephone_event {
            let _ = write!(s, "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n");
        }
        let _ = write!(s, "a=ptime:20\r\na={}\r\n", self.direction.attr());
        s
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the SDP has no audio stream (m=audio)")]
    NoAudio,
    #[error("the SDP has no connection address (c=) for its audio stream")]
    NoAddress,
    #[error("the SDP line `{0}` is malformed")]
    Malformed(String),
    #[error("the peer offers none of our codecs (PCMU, PCMA)")]
    NoCommonCodec,
}

/// The peer's audio stream, as far as we use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    pub address: IpAddr,
    pub rtp_port: u16,
    /// The peer's payload types in its order, restricted to PCMU/PCMA.
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    pub direction: Direction,
}

impl RemoteMedia {
    /// Parses the first `m=audio` stream (session-level `c=` and direction as fallbacks).
    pub fn parse(body: &str) -> Result<RemoteMedia, SdpError> {
        let mut session_addr = None;
        let mut session_dir = Direction::SendRecv;
        let mut media: Option<(u16, Vec<u8>)> = None;
        let mut media_addr = None;
        let mut media_dir = None;
        let mut rtpmaps: Vec<(u8, String)> = Vec::new();
        let mut in_audio = false;
        for line in body.lines().map(str::trim) {
            // `get`, not indexing: a peer's non-ASCII byte must not split a character.
            let (Some(kind), Some(value)) = (line.get(..2), line.get(2..)) else {
                continue;
            };
            match kind {
                "m=" => {
                    if media.is_some() {
                        break; // only the first audio stream matters
                    }
                    let parts: Vec<&str> = value.split_whitespace().collect();
                    in_audio = parts.first() == Some(&"audio");
                    if in_audio {
                        let port = parts
                            .get(1)
                            .and_then(|p| p.split('/').next())
                            .and_then(|p| p.parse().ok())
                            .ok_or_else(|| SdpError::Malformed(line.into()))?;
                        let pts = parts.iter().skip(3).filter_map(|p| p.parse().ok()).collect();
                        media = Some((port, pts));
                    }
                }
                "c=" => {
                    let addr = value
                        .split_whitespace()
                        .nth(2)
                        .and_then(|a| a.split('/').next())
                        .and_then(|a| a.parse::<IpAddr>().ok())
                        .ok_or_else(|| SdpError::Malformed(line.into()))?;
                    if in_audio {
                        media_addr = Some(addr);
                    } else if media.is_none() {
                        session_addr = Some(addr);
                    }
                }
                "a=" => {
                    let dir = match value {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    if let Some(d) = dir {
                        if in_audio {
                            media_dir = Some(d);
                        } else if media.is_none() {
                            session_dir = d;
                        }
                    } else if let Some(map) = value.strip_prefix("rtpmap:") {
                        if in_audio {
                            let (pt, enc) = map.split_once(' ').unwrap_or((map, ""));
                            if let Ok(pt) = pt.parse() {
                                rtpmaps.push((pt, enc.to_ascii_lowercase()));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let (rtp_port, pts) = media.ok_or(SdpError::NoAudio)?;
        let address = media_addr.or(session_addr).ok_or(SdpError::NoAddress)?;
        let codec_of = |pt: u8| -> Option<Codec> {
            match rtpmaps.iter().find(|(p, _)| *p == pt) {
                Some((_, enc)) => Codec::parse(enc.split('/').next().unwrap_or("")),
                None => match pt {
                    0 => Some(Codec::Pcmu),
                    8 => Some(Codec::Pcma),
                    _ => None,
                },
            }
        };
        let codecs = pts.iter().filter_map(|&pt| codec_of(pt)).collect();
        let telephone_event = rtpmaps
            .iter()
            .find(|(p, enc)| enc.starts_with("telephone-event/8000") && pts.contains(p))
            .map(|(p, _)| *p);
        Ok(RemoteMedia {
            address,
            rtp_port,
            codecs,
            telephone_event,
            direction: media_dir.unwrap_or(session_dir),
        })
    }

    /// The codec both sides use: the peer's first one that we also have. In an answer to our
    /// offer the peer's order decides; when we answer, `ours` is our preference.
    pub fn choose(&self, ours: &[Codec]) -> Result<Codec, SdpError> {
        self.codecs
            .iter()
            .copied()
            .find(|c| ours.contains(c))
            .ok_or(SdpError::NoCommonCodec)
    }

    /// Whether the peer put the stream on hold (sendonly/inactive or a 0.0.0.0 address).
    pub fn is_hold(&self) -> bool {
        self.direction.is_hold() || self.address.is_unspecified() || self.rtp_port == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> LocalMedia {
        LocalMedia {
            address: "192.0.2.10".parse().expect("ip"),
            rtp_port: 40000,
            codecs: vec![Codec::Pcma, Codec::Pcmu],
            telephone_event: Some(101),
            direction: Direction::SendRecv,
            session_id: 7,
            version: 1,
        }
    }

    #[test]
    fn our_offer_reads_back_as_it_was_written() {
        let text = ours().to_sdp();
        assert!(text.contains("m=audio 40000 RTP/AVP 8 0 101\r\n"), "{text}");
        assert!(text.contains("a=fmtp:101 0-16"));
        let back = RemoteMedia::parse(&text).expect("parse");
        assert_eq!(back.codecs, vec![Codec::Pcma, Codec::Pcmu]);
        assert_eq!(back.telephone_event, Some(101));
        assert_eq!(back.rtp_port, 40000);
        assert_eq!(back.direction, Direction::SendRecv);
    }

    #[test]
    fn a_sipp_style_answer_picks_the_common_codec_and_event_type() {
        let answer = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 96\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:96 telephone-event/8000\r\n";
        let m = RemoteMedia::parse(answer).expect("parse");
        assert_eq!(m.choose(&[Codec::Pcma, Codec::Pcmu]), Ok(Codec::Pcmu));
        assert_eq!(m.telephone_event, Some(96));
        assert_eq!(m.address, "127.0.0.1".parse::<IpAddr>().expect("ip"));
        assert!(!m.is_hold());
    }

    #[test]
    fn hold_is_sendonly_inactive_or_a_null_address() {
        let hold = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 6000 RTP/AVP 8\r\na=sendonly\r\n";
        assert!(RemoteMedia::parse(hold).expect("hold").is_hold());
        let old = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 6000 RTP/AVP 8\r\n";
        assert!(RemoteMedia::parse(old).expect("old hold").is_hold());
        let back = "v=0\r\nc=IN IP4 10.0.0.1\r\na=inactive\r\nm=audio 6000 RTP/AVP 8\r\na=sendrecv\r\n";
        assert!(!RemoteMedia::parse(back).expect("unhold").is_hold());
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
    }

    #[test]
    fn unusable_bodies_are_named() {
        assert_eq!(RemoteMedia::parse("v=0\r\n"), Err(SdpError::NoAudio));
        assert_eq!(
            RemoteMedia::parse("v=0\r\nm=audio 5 RTP/AVP 0\r\n"),
            Err(SdpError::NoAddress)
        );
        let g729 = RemoteMedia::parse("c=IN IP4 1.2.3.4\r\nm=audio 5 RTP/AVP 18\r\n").expect("p");
        assert_eq!(
            RemoteMedia::parse("é=x\r\nv=0\r\n"),
            Err(SdpError::NoAudio),
            "no panic on UTF-8"
        );
        assert_eq!(g729.choose(&[Codec::Pcmu]), Err(SdpError::NoCommonCodec));
        assert!(matches!(
            RemoteMedia::parse("c=IN IP4 nowhere\r\nm=audio 5 RTP/AVP 0\r\n"),
            Err(SdpError::Malformed(_))
        ));
    }
}
