//! The metering client (docs/metering-protocol.md): HTTP+JSON to the api with a fresh HS256
//! JWT per request, 2 s timeouts, retries with backoff (250 ms doubling to 4 s, ±20 %), and one
//! reporter task per call that keeps one report in flight and replaces it with a newer one.
//! A `stop` is retried for 10 minutes; at most 1,000 stops retry at once per node.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::call::wire::{
    ErrorBody, Grant, MeterError, RegisterAnswer, RegisterBody, Report, ReportAnswer, StartBody, StopAnswer,
};

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_START_MS: u64 = 250;
const BACKOFF_MAX_MS: u64 = 4_000;
/// `start` gives up after this long (the call token lives ≤ 120 s; the caller waits).
pub const START_GIVE_UP: Duration = Duration::from_secs(10);
pub const STOP_GIVE_UP: Duration = Duration::from_secs(600);
pub const MAX_RETRYING_STOPS: usize = 1_000;

static RETRYING_STOPS: AtomicUsize = AtomicUsize::new(0);
static ACTIVE_REPORTERS: AtomicUsize = AtomicUsize::new(0);

/// Reporters still running (a draining node waits for its stops to be delivered).
pub fn active_reporters() -> usize {
    ACTIVE_REPORTERS.load(Ordering::SeqCst)
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
}

/// One attempt's outcome.
enum Attempt {
    Ok(Value),
    /// A refusal not worth retrying.
    Refused(MeterError),
    /// Unreachable, timed out, or 503: retry (after at least `retry_after_ms` if given).
    Retry(Option<u64>, String),
}

#[derive(Clone)]
pub struct MeteringClient {
    http: reqwest::Client,
    base: String,
    node_id: String,
    secret: Vec<u8>,
}

impl MeteringClient {
    pub fn new(api_url: &str, node_id: &str, secret: &[u8]) -> anyhow::Result<MeteringClient> {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        Ok(MeteringClient {
            http,
            base: api_url.trim_end_matches('/').to_string(),
            node_id: node_id.to_string(),
            secret: secret.to_vec(),
        })
    }

    fn token(&self) -> Result<String, String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            iss: "ringledger-media",
            sub: &self.node_id,
            aud: "ringledger-metering",
            iat: now,
            exp: now + 60,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .map_err(|e| e.to_string())
    }

    async fn attempt<B: Serialize>(&self, path: &str, body: &B) -> Attempt {
        let token = match self.token() {
            Ok(t) => t,
            Err(e) => return Attempt::Refused(MeterError::unreachable(format!("cannot sign: {e}"))),
        };
        let sent = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(None, format!("api unreachable: {e}")),
        };
        let status = resp.status().as_u16();
        let text = resp.bytes().await.unwrap_or_default();
        if (200..300).contains(&status) {
            return match serde_json::from_slice(&text) {
                Ok(v) => Attempt::Ok(v),
                Err(e) => Attempt::Retry(None, format!("the api's answer is not JSON: {e}")),
            };
        }
        let err: ErrorBody = serde_json::from_slice(&text).unwrap_or(ErrorBody {
            code: "http_error".into(),
            message: format!("HTTP {status}"),
            retry_after_ms: None,
        });
        if status == 503 || status >= 500 {
            return Attempt::Retry(err.retry_after_ms, format!("{}: {}", err.code, err.message));
        }
        Attempt::Refused(MeterError {
            status: Some(status),
            code: err.code,
            message: err.message,
        })
    }

    /// Sends with retries until an answer, a refusal, or `give_up`.
    async fn send<B: Serialize>(&self, path: &str, body: &B, give_up: Duration) -> Result<Value, MeterError> {
        let deadline = tokio::time::Instant::now() + give_up;
        let mut backoff = BACKOFF_START_MS;
        loop {
            match self.attempt(path, body).await {
                Attempt::Ok(v) => return Ok(v),
                Attempt::Refused(e) => return Err(e),
                Attempt::Retry(after, why) => {
                    metrics::counter!("media_metering_retries_total").increment(1);
                    let wait = Duration::from_millis(jitter(backoff).max(after.unwrap_or(0)));
                    if tokio::time::Instant::now() + wait > deadline {
                        return Err(MeterError::unreachable(why));
                    }
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX_MS);
                }
            }
        }
    }

    pub async fn register(&self, body: &RegisterBody) -> Result<RegisterAnswer, MeterError> {
        let v = self.send("/metering/v1/register", body, REQUEST_TIMEOUT).await?;
        serde_json::from_value(v).map_err(|e| MeterError::unreachable(format!("register answer: {e}")))
    }

    pub async fn start(&self, body: &StartBody) -> Result<Grant, MeterError> {
        let v = self.send("/metering/v1/start", body, START_GIVE_UP).await?;
        serde_json::from_value(v).map_err(|e| MeterError::unreachable(format!("start answer: {e}")))
    }

    /// Starts the reporter of one call: put reports in the returned channel (newest wins);
    /// answers come back on `answers` with the call's key.
    pub fn reporter<K: Send + Clone + 'static>(
        &self,
        key: K,
        answers: mpsc::Sender<(K, u64, Result<ReportAnswer, MeterError>)>,
    ) -> watch::Sender<Option<Report>> {
        let (tx, rx) = watch::channel(None);
        let client = self.clone();
        ACTIVE_REPORTERS.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            client.run_reporter(key, rx, answers).await;
            ACTIVE_REPORTERS.fetch_sub(1, Ordering::SeqCst);
        });
        tx
    }

    async fn run_reporter<K: Clone>(
        &self,
        key: K,
        mut rx: watch::Receiver<Option<Report>>,
        answers: mpsc::Sender<(K, u64, Result<ReportAnswer, MeterError>)>,
    ) {
        let mut last_sent = 0u64;
        loop {
            let report = rx.borrow_and_update().clone();
            let Some(report) = report.filter(|r| r.seq() > last_sent) else {
                if rx.changed().await.is_err() {
                    return; // the call is gone and nothing is pending
                }
                continue;
            };
            last_sent = report.seq();
            let outcome = self.deliver(&report, &mut rx).await;
            let Some(result) = outcome else { continue }; // replaced by a newer report
            let over = report.is_stop() || matches!(&result, Err(e) if e.status == Some(410));
            metrics::counter!("media_metering_reports_total", "kind" => kind(&report), "ok" => result.is_ok().to_string())
                .increment(1);
            let _ = answers.try_send((key.clone(), report.seq(), result));
            if over {
                return;
            }
        }
    }

    /// Delivers one report; `None` when a newer one replaced it (never a stop).
    async fn deliver(
        &self,
        report: &Report,
        rx: &mut watch::Receiver<Option<Report>>,
    ) -> Option<Result<ReportAnswer, MeterError>> {
        let give_up = if report.is_stop() {
            STOP_GIVE_UP
        } else {
            Duration::from_secs(3600)
        };
        let deadline = tokio::time::Instant::now() + give_up;
        let mut backoff = BACKOFF_START_MS;
        let mut counted = false;
        let result = loop {
            match self.attempt(report.path(), report).await {
                Attempt::Ok(v) => break answer_of(report, v),
                Attempt::Refused(e) => break Err(e),
                Attempt::Retry(after, why) => {
                    metrics::counter!("media_metering_retries_total").increment(1);
                    if report.is_stop() && !counted {
                        counted = true;
                        if RETRYING_STOPS.fetch_add(1, Ordering::SeqCst) >= MAX_RETRYING_STOPS {
                            break Err(MeterError::unreachable("too many stops waiting; dropped"));
                        }
                    }
                    let wait = Duration::from_millis(jitter(backoff).max(after.unwrap_or(0)));
                    if tokio::time::Instant::now() + wait > deadline {
                        break Err(MeterError::unreachable(why));
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX_MS);
                    if report.is_stop() {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        changed = rx.changed() => {
                            let newer = rx.borrow().as_ref().is_some_and(|r| r.seq() > report.seq());
                            if changed.is_ok() && newer {
                                return None;
                            }
                        }
                    }
                }
            }
        };
        if counted {
            RETRYING_STOPS.fetch_sub(1, Ordering::SeqCst);
        }
        Some(result)
    }
}

fn kind(r: &Report) -> &'static str {
    match r {
        Report::Progress { .. } => "progress",
        Report::Interim { .. } => "interim",
        Report::Stop { .. } => "stop",
    }
}

fn answer_of(report: &Report, v: Value) -> Result<ReportAnswer, MeterError> {
    if report.is_stop() {
        return serde_json::from_value::<StopAnswer>(v)
            .map(ReportAnswer::Stopped)
            .map_err(|e| MeterError::unreachable(format!("stop answer: {e}")));
    }
    if v.get("granted_seconds").is_some() {
        return serde_json::from_value::<Grant>(v)
            .map(ReportAnswer::Grant)
            .map_err(|e| MeterError::unreachable(format!("grant: {e}")));
    }
    Ok(ReportAnswer::Acknowledged)
}

/// ±20 % jitter.
fn jitter(ms: u64) -> u64 {
    use rand::Rng;
    let f: f64 = rand::thread_rng().gen_range(0.8..1.2);
    (ms as f64 * f) as u64
}
