//! The metering protocol's JSON (docs/metering-protocol.md), as the media node writes and
//! reads it. Defined here, not shared with the api crate (media depends on the domain only);
//! the shared vocabulary (causes, progress, quality, hangup reasons) comes from the domain.

use ringledger_domain::call::{CallQuality, EndCause, HangupReason, Progress};
use ringledger_domain::CallId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize)]
pub struct Load {
    pub active_calls: u32,
    pub max_calls: u32,
    pub cpu_per_mille: u32,
}

/// `POST /metering/v1/register`, at start-up and every `heartbeat_seconds`.
#[derive(Debug, Clone, Serialize)]
pub struct RegisterBody {
    pub node_id: String,
    pub control_url: String,
    pub public_ws_url: String,
    pub load: Load,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegisterAnswer {
    pub node_id: String,
    pub heartbeat_seconds: u64,
    pub interim_seconds: u64,
}

/// `POST /metering/v1/start`. The destination is in the body only; never logged.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct StartBody {
    pub call_token: String,
    pub quote_id: String,
    pub destination: String,
    pub leg_id: String,
    pub sent_at: String,
}

impl std::fmt::Debug for StartBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartBody")
            .field("leg_id", &self.leg_id)
            .finish_non_exhaustive()
    }
}

/// A grant (the answer to `start`, `progress` ringing/answered and `interim`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub call_id: CallId,
    pub seq: u64,
    pub granted_seconds: u64,
    pub seconds_left: u64,
    pub final_unit: bool,
    pub valid_until: String,
    pub validity_seconds: u64,
    #[serde(default)]
    pub hangup: Option<String>,
    /// Only in the answer to `start`.
    #[serde(default)]
    pub max_ring_seconds: Option<u64>,
    #[serde(default)]
    pub max_call_seconds: Option<u64>,
    #[serde(default)]
    pub interim_seconds: Option<u64>,
}

/// A report after `start`; its path is `report.path()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Report {
    Progress {
        call_id: CallId,
        seq: u64,
        #[serde(flatten)]
        progress: Progress,
    },
    Interim {
        call_id: CallId,
        seq: u64,
        talk_ms: u64,
    },
    Stop {
        call_id: CallId,
        seq: u64,
        talk_ms: u64,
        cause: EndCause,
        /// Filled by the driver from the RTP statistics just before sending.
        quality: Option<CallQuality>,
    },
}

impl Report {
    pub fn path(&self) -> &'static str {
        match self {
            Report::Progress { .. } => "/metering/v1/progress",
            Report::Interim { .. } => "/metering/v1/interim",
            Report::Stop { .. } => "/metering/v1/stop",
        }
    }

    pub fn seq(&self) -> u64 {
        match self {
            Report::Progress { seq, .. } | Report::Interim { seq, .. } | Report::Stop { seq, .. } => *seq,
        }
    }

    pub fn call_id(&self) -> CallId {
        match self {
            Report::Progress { call_id, .. }
            | Report::Interim { call_id, .. }
            | Report::Stop { call_id, .. } => *call_id,
        }
    }

    pub fn is_stop(&self) -> bool {
        matches!(self, Report::Stop { .. })
    }
}

/// The answer to `stop`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StopAnswer {
    pub call_id: CallId,
    pub seq: u64,
    pub billed_seconds: u64,
    pub cost_micros: i64,
    pub charged_micros: i64,
    pub currency: String,
}

/// What a report's answer was, as the call logic needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportAnswer {
    Grant(Grant),
    /// `progress failed` acknowledged.
    Acknowledged,
    Stopped(StopAnswer),
}

/// Every non-2xx answer's body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

/// A request the api could not answer: a refusal (status and body), or none at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterError {
    /// `None`: the api was unreachable until the driver gave up.
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
}

impl MeterError {
    pub fn unreachable(message: impl Into<String>) -> MeterError {
        MeterError {
            status: None,
            code: "api_unreachable".into(),
            message: message.into(),
        }
    }
}

/// `POST {control_url}/v1/hangup` from the api.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HangupBody {
    pub call_id: CallId,
    pub reason: HangupReason,
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringledger_domain::call::{FailCause, LegQuality};
    use serde_json::json;

    fn id() -> CallId {
        CallId(uuid::Uuid::from_u128(7))
    }

    #[test]
    fn reports_serialise_as_the_protocol_document_shows() {
        let failed = Report::Progress {
            call_id: id(),
            seq: 2,
            progress: Progress::Failed {
                cause: FailCause::Busy,
                sip_status: Some(486),
            },
        };
        assert_eq!(
            serde_json::to_value(&failed).expect("json"),
            json!({"call_id": id(), "seq": 2, "state": "failed", "cause": "busy", "sip_status": 486})
        );
        let ringing = Report::Progress {
            call_id: id(),
            seq: 1,
            progress: Progress::Ringing,
        };
        assert_eq!(
            serde_json::to_value(&ringing).expect("json"),
            json!({"call_id": id(), "seq": 1, "state": "ringing"})
        );
        let q = LegQuality {
            rtt_ms: 21,
            jitter_ms: 2,
            loss_per_mille: 0,
        };
        let stop = Report::Stop {
            call_id: id(),
            seq: 12,
            talk_ms: 61480,
            cause: EndCause::CallerHangup,
            quality: Some(CallQuality { browser: q, trunk: q }),
        };
        let v = serde_json::to_value(&stop).expect("json");
        assert_eq!(v["cause"], "caller_hangup");
        assert_eq!(v["quality"]["trunk"]["rtt_ms"], 21);
        assert_eq!(stop.path(), "/metering/v1/stop");
    }

    #[test]
    fn a_grant_reads_from_the_api_answer() {
        let g: Grant = serde_json::from_value(json!({
            "call_id": id(), "seq": 0, "granted_seconds": 96, "seconds_left": 59, "final_unit": false,
            "valid_until": "2026-11-25T12:01:12Z", "validity_seconds": 30, "hangup": null,
            "max_ring_seconds": 60, "max_call_seconds": 14400, "interim_seconds": 6,
            "rate": {"amount": "0.013500", "currency": "USD"}
        }))
        .expect("grant");
        assert_eq!(
            (g.granted_seconds, g.max_ring_seconds, g.interim_seconds),
            (96, Some(60), Some(6))
        );
        let h: HangupBody =
            serde_json::from_value(json!({"call_id": id(), "reason": "account_frozen", "message": "frozen"}))
                .expect("hangup");
        assert_eq!(h.reason, HangupReason::AccountFrozen);
    }
}
