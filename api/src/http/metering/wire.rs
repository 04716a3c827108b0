//! The protocol's JSON bodies, parsed strictly at the edge into domain types, and the answers.

use ringledger_domain::call::{CallQuality, EndCause, NodeId, Progress, Reply};
use ringledger_domain::CallId;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgPool;

use super::error::MeteringError;

/// Parses a body, naming the field at fault (never echoing values: a number may be in it).
pub(super) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, MeteringError> {
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let field = text.split('`').nth(1).unwrap_or("body");
        MeteringError::malformed(&format!(
            "the body is not the protocol's JSON (at `{field}`, line {} column {})",
            e.line(),
            e.column()
        ))
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct Load {
    pub active_calls: u32,
    pub max_calls: u32,
    pub cpu_per_mille: u32,
}

#[derive(Debug, Deserialize)]
pub(super) struct RegisterBody {
    pub node_id: NodeId,
    pub control_url: String,
    pub public_ws_url: String,
    pub load: Load,
}

#[derive(Debug, Deserialize)]
pub(super) struct StartBody {
    pub call_token: String,
    pub quote_id: String,
    pub destination: String,
    #[serde(default)]
    pub leg_id: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct ProgressBody {
    pub call_id: CallId,
    pub seq: u64,
    #[serde(flatten)]
    pub progress: Progress,
}

#[derive(Debug, Deserialize)]
pub(super) struct InterimBody {
    pub call_id: CallId,
    pub seq: u64,
    pub talk_ms: u64,
}

#[derive(Debug, Deserialize)]
pub(super) struct StopBody {
    pub call_id: CallId,
    pub seq: u64,
    pub talk_ms: u64,
    pub cause: EndCause,
    #[serde(default)]
    pub quality: Option<CallQuality>,
}

/// Registration doubles as heartbeat; old `jti`s are forgotten on the way.
pub(super) async fn upsert_node(pool: &PgPool, b: &RegisterBody) -> Result<(), MeteringError> {
    let url_ok = |u: &str| u.len() <= 512 && !u.is_empty();
    if !url_ok(&b.control_url) || !url_ok(&b.public_ws_url) {
        return Err(MeteringError::malformed(
            "control_url and public_ws_url are 1-512 characters",
        ));
    }
    let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    sqlx::query(
        "INSERT INTO media_nodes (node_id, control_url, public_ws_url, active_calls, max_calls, cpu_per_mille, last_seen_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (node_id) DO UPDATE SET control_url = EXCLUDED.control_url,
             public_ws_url = EXCLUDED.public_ws_url, active_calls = EXCLUDED.active_calls,
             max_calls = EXCLUDED.max_calls, cpu_per_mille = EXCLUDED.cpu_per_mille, last_seen_at = now()",
    )
    .bind(b.node_id.as_str())
    .bind(&b.control_url)
    .bind(&b.public_ws_url)
    .bind(clamp(b.load.active_calls))
    .bind(clamp(b.load.max_calls))
    .bind(clamp(b.load.cpu_per_mille))
    .execute(pool)
    .await
    .map_err(MeteringError::internal)?;
    super::auth::forget_expired_jtis(pool).await
}

/// The answer for the node: a grant, a failure acknowledged, or the stop's settlement.
pub(super) fn reply_json(call_id: CallId, reply: &Reply) -> Value {
    match reply {
        Reply::Grant(g) => json!({
            "call_id": call_id,
            "seq": g.seq,
            "granted_seconds": g.granted_seconds,
            "seconds_left": g.seconds_left,
            "final_unit": g.final_unit,
            "valid_until": g.valid_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "validity_seconds": g.validity_seconds,
            "hangup": g.hangup,
        }),
        Reply::Failed { seq } => json!({ "call_id": call_id, "seq": seq, "state": "failed" }),
        Reply::Ended(s) => json!({
            "call_id": call_id,
            "seq": s.seq,
            "billed_seconds": s.billed_seconds,
            "cost_micros": s.cost.micros(),
            "charged_micros": s.charged.micros(),
            "currency": s.cost.currency(),
        }),
        Reply::Done => json!({ "call_id": call_id }),
    }
}
