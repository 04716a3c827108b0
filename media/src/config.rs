//! The gateway's configuration: defaults, then a TOML file (`--config`), then environment
//! variables `RINGLEDGER_MEDIA_<KEY>` (upper-case key). Secrets — the trunk password and the
//! metering secret `RINGLEDGER_MEDIA_SECRET` — come only from the environment: a file naming
//! one is refused. Every key is listed in docs/media.md.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use ringledger_domain::call::NodeId;
use serde::{Deserialize, Serialize};

use crate::sip::sdp::Codec;
use crate::sip::timers::Timers;

/// A secret string: never printed.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// This node's id as it registers with the api.
    pub node_id: String,
    /// The control HTTP server (`/v1/hangup`, `/metrics`, `/healthz`).
    pub control_addr: SocketAddr,
    /// How the api reaches the control server; default `http://{control_addr}`.
    pub control_url: Option<String>,
    /// Where browsers reach this node (part 2); registered with the api.
    pub public_ws_url: String,
    /// The SIP UDP socket.
    pub sip_addr: SocketAddr,
    /// Our SIP address as the trunk sees it (Via, Contact); default `sip_addr`.
    pub sip_public_addr: Option<SocketAddr>,
    /// Address RTP binds to and offers in SDP.
    pub media_ip: IpAddr,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// The trunk's SIP address.
    pub trunk_addr: SocketAddr,
    /// Host part of request URIs; default `trunk_addr`.
    pub trunk_host: Option<String>,
    pub trunk_username: Option<String>,
    /// Secret: `RINGLEDGER_MEDIA_TRUNK_PASSWORD` only.
    pub trunk_password: Option<Secret>,
    /// Caller id presented to the trunk (digits).
    pub caller_id: String,
    /// Codec preference, first preferred: `PCMA`, `PCMU`.
    pub codecs: Vec<String>,
    /// RFC 4733 payload type we offer.
    pub telephone_event_payload_type: u8,
    /// Base of the api's metering endpoint.
    pub api_url: String,
    /// Secret: `RINGLEDGER_MEDIA_SECRET` only; ≥ 32 bytes.
    pub media_secret: Option<Secret>,
    /// OPTIONS to the trunk every N seconds; 0 = off.
    pub options_keepalive_seconds: u64,
    pub max_calls: u32,
    /// On shutdown, how long active calls may go on before they are ended and reported.
    pub drain_seconds: u64,
    /// SIP timer T1 in ms (RFC 3261: 500).
    pub sip_t1_ms: u64,
    /// `pretty` or `json`.
    pub log_format: String,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            node_id: "media-1".into(),
            control_addr: SocketAddr::from(([127, 0, 0, 1], 7070)),
            control_url: None,
            public_ws_url: "ws://127.0.0.1:7070/ws".into(),
            sip_addr: SocketAddr::from(([127, 0, 0, 1], 5070)),
            sip_public_addr: None,
            media_ip: IpAddr::from([127, 0, 0, 1]),
            rtp_port_min: 40000,
            rtp_port_max: 40999,
            trunk_addr: SocketAddr::from(([127, 0, 0, 1], 5060)),
            trunk_host: None,
            trunk_username: None,
            trunk_password: None,
            caller_id: "15550000000".into(),
            codecs: vec!["PCMA".into(), "PCMU".into()],
            telephone_event_payload_type: 101,
            api_url: "http://127.0.0.1:8080".into(),
            media_secret: None,
            options_keepalive_seconds: 0,
            max_calls: 200,
            drain_seconds: 30,
            sip_t1_ms: 500,
            log_format: "pretty".into(),
        }
    }
}

const SECRET_KEYS: &[&str] = &["media_secret", "trunk_password"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} names the secret `{key}`; set it in the environment instead")]
    SecretInFile { path: String, key: &'static str },
    #[error("configuration is invalid: {0}")]
    Invalid(String),
}

impl MediaConfig {
    pub fn load(file: Option<&Path>) -> Result<MediaConfig, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(MediaConfig::default()));
        if let Some(path) = file {
            let from_file = Figment::from(Toml::file_exact(path));
            for key in SECRET_KEYS {
                if from_file.find_value(key).is_ok() {
                    return Err(ConfigError::SecretInFile {
                        path: path.display().to_string(),
                        key,
                    });
                }
            }
            figment = figment.merge(from_file);
        }
        // Figment hands keys over as written (`SECRET`): compare without case.
        let env = Env::prefixed("RINGLEDGER_MEDIA_")
            .map(|k| {
                if k.as_str().eq_ignore_ascii_case("secret") {
                    "media_secret".into()
                } else {
                    k.as_str().to_ascii_lowercase().into()
                }
            })
            .filter(|k| !k.as_str().eq_ignore_ascii_case("config"));
        let cfg: MediaConfig = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.validated()
    }

    pub fn validated(self) -> Result<MediaConfig, ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if let Err(e) = NodeId::parse(&self.node_id) {
            return bad(format!("node_id: {e}"));
        }
        if self.media_secret.as_ref().is_some_and(|s| s.expose().len() < 32) {
            return bad("RINGLEDGER_MEDIA_SECRET must be at least 32 bytes".into());
        }
        if self.rtp_port_min < 1024 || self.rtp_port_max <= self.rtp_port_min.saturating_add(1) {
            return bad(format!(
                "rtp_port_min..rtp_port_max ({}..{}) must be ≥ 1024 and hold at least one even/odd pair",
                self.rtp_port_min, self.rtp_port_max
            ));
        }
        if self.codecs.is_empty() || self.codec_list().len() != self.codecs.len() {
            return bad(format!("codecs {:?}: use PCMA and/or PCMU", self.codecs));
        }
        if !self.caller_id.bytes().all(|b| b.is_ascii_digit()) || self.caller_id.is_empty() {
            return bad("caller_id is digits only, e.g. 15550000000".into());
        }
        if !(50..=5000).contains(&self.sip_t1_ms) {
            return bad("sip_t1_ms is 50-5000".into());
        }
        Ok(self)
    }

    pub fn codec_list(&self) -> Vec<Codec> {
        self.codecs.iter().filter_map(|c| Codec::parse(c)).collect()
    }

    pub fn timers(&self) -> Timers {
        let t1 = std::time::Duration::from_millis(self.sip_t1_ms);
        Timers {
            t1,
            t2: Timers::default().t2.max(t1),
            t4: Timers::default().t4,
            d: (t1 * 64).max(std::time::Duration::from_secs(32)).min(t1 * 64),
        }
    }

    pub fn control_url(&self) -> String {
        self.control_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.control_addr))
    }

    pub fn sip_public(&self) -> SocketAddr {
        self.sip_public_addr.unwrap_or(self.sip_addr)
    }

    pub fn trunk_host(&self) -> String {
        self.trunk_host
            .clone()
            .unwrap_or_else(|| self.trunk_addr.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(MediaConfig::default().validated().is_ok());
        let short = MediaConfig {
            media_secret: Some(Secret::new("short")),
            ..Default::default()
        };
        assert!(short.validated().unwrap_err().to_string().contains("32 bytes"));
        let codec = MediaConfig {
            codecs: vec!["G729".into()],
            ..Default::default()
        };
        assert!(codec.validated().unwrap_err().to_string().contains("PCMA"));
        assert!(format!("{:?}", Secret::new("hunter2")).contains("redacted"));
    }
}
