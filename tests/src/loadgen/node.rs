//! One simulated media node: registers with the api and heartbeats, signs a fresh JWT per
//! request (retries included), retries a report as docs/metering-protocol.md says (same body,
//! backoff 250 ms doubling to 4 s with ±20 % jitter, 2 s timeout, 503 and transport errors
//! only), and serves its control URL (`control.rs`) so the api can ask it to hang up a call.
//! A node can be killed: it stops sending anything and its control URL stops answering.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rand::Rng;
use ringledger_api::calls::token;
use ringledger_domain::call::NodeId;
use ringledger_domain::CallId;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use super::stats::Stats;

/// A report's timeout on the wire (the protocol's 2 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const SLOW_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// What the api answered.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 2xx and its body, with the round trip of the attempt that got it.
    Ok(Value, Duration),
    /// A 4xx/5xx the node does not retry (or a 503 past its deadline): status and body.
    Refused(u16, Value),
    /// No HTTP answer before the deadline (connection refused, timeouts), or the node died.
    Unreachable(String),
}

impl Answer {
    pub fn code(&self) -> Option<&str> {
        match self {
            Answer::Refused(_, body) => body["code"].as_str(),
            _ => None,
        }
    }
}

/// A hangup the api asked for: its reason string.
pub type HangupRx = watch::Receiver<Option<String>>;

pub struct Node {
    pub id: NodeId,
    api: String,
    secret: Arc<str>,
    http: reqwest::Client,
    pub control_url: String,
    pub stats: Arc<Stats>,
    pub(super) calls: Mutex<HashMap<CallId, watch::Sender<Option<String>>>>,
    /// `jti`s of the api's control requests, with their `exp`, to refuse replays.
    pub(super) seen_jtis: Mutex<HashMap<uuid::Uuid, i64>>,
    dead: watch::Sender<bool>,
    server_stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Node {
    /// Binds the control URL on loopback, serves it and registers with the api.
    pub async fn start(
        id: &str,
        api: &str,
        secret: Arc<str>,
        stats: Arc<Stats>,
    ) -> anyhow::Result<Arc<Node>> {
        let id = NodeId::parse(id).map_err(|e| anyhow::anyhow!("node id `{id}`: {e}"))?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let control_url = format!("http://{}", listener.local_addr()?);
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
        let (dead, _) = watch::channel(false);
        let (server_stop, stopped) = oneshot::channel::<()>();
        let node = Arc::new(Node {
            id,
            api: api.trim_end_matches('/').to_owned(),
            secret,
            http,
            control_url,
            stats,
            calls: Mutex::new(HashMap::new()),
            seen_jtis: Mutex::new(HashMap::new()),
            dead,
            server_stop: Mutex::new(Some(server_stop)),
        });
        let router = super::control::router(node.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        let heartbeat = node.register().await?;
        let beating = node.clone();
        tokio::spawn(async move { beating.heartbeat(heartbeat).await });
        Ok(node)
    }

    /// `register`, retried for up to 30 s; returns the heartbeat period the api asked for.
    async fn register(&self) -> anyhow::Result<Duration> {
        let active = self.calls.lock().map(|c| c.len()).unwrap_or(0);
        let body = json!({
            "node_id": self.id.as_str(), "control_url": self.control_url,
            "public_ws_url": format!("{}/ws", self.control_url.replace("http://", "ws://")),
            "load": {"active_calls": active, "max_calls": 100_000, "cpu_per_mille": 0},
        });
        let until = Instant::now() + Duration::from_secs(30);
        match self.send("register", &body, until).await {
            Answer::Ok(answer, _) => {
                let seconds = answer["heartbeat_seconds"].as_u64().unwrap_or(15).clamp(1, 300);
                Ok(Duration::from_secs(seconds))
            }
            other => Err(anyhow::anyhow!(
                "node {} could not register: {other:?}",
                self.id.as_str()
            ))
            .context("is the api up, and is RINGLEDGER_MEDIA_SECRET the api's?"),
        }
    }

    async fn heartbeat(self: Arc<Self>, every: Duration) {
        let mut dead = self.dead.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = dead.wait_for(|d| *d) => return,
            }
            if let Err(e) = self.register().await {
                tracing::warn!(node = %self.id.as_str(), error = %e, "heartbeat failed");
            }
        }
    }

    pub(super) fn secret_bytes(&self) -> &[u8] {
        self.secret.as_bytes()
    }

    pub fn is_dead(&self) -> bool {
        *self.dead.borrow()
    }

    /// Resolves when the node is killed.
    pub fn died(&self) -> watch::Receiver<bool> {
        self.dead.subscribe()
    }

    /// The node dies: no more reports, heartbeats or control answers.
    pub fn kill(&self) {
        let _ = self.dead.send(true);
        if let Ok(mut stop) = self.server_stop.lock() {
            if let Some(stop) = stop.take() {
                let _ = stop.send(());
            }
        }
    }

    /// Tracks a live call so the control URL can reach it.
    pub fn track(&self, call: CallId) -> HangupRx {
        let (tx, rx) = watch::channel(None);
        if let Ok(mut calls) = self.calls.lock() {
            calls.insert(call, tx);
        }
        rx
    }

    /// The calls this node holds now.
    pub fn calls_held(&self) -> Vec<CallId> {
        self.calls
            .lock()
            .map(|c| c.keys().copied().collect())
            .unwrap_or_default()
    }

    pub fn forget(&self, call: CallId) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.remove(&call);
        }
    }

    /// One POST with a fresh JWT.
    pub async fn post_once(&self, path: &str, body: &Value) -> Answer {
        let jwt = match token::mint_media(
            self.id.as_str(),
            self.secret.as_bytes(),
            Utc::now().timestamp(),
            30,
        ) {
            Ok(jwt) => jwt,
            Err(e) => return Answer::Unreachable(format!("signing a JWT: {e}")),
        };
        let started = Instant::now();
        // Reports time out after the protocol's 2 s; the protocol names no timeout for
        // `start` and `register`, which do more work: they get 10 s, so a loaded api is not
        // sent the same start again while it is still deciding the first.
        let timeout = match path {
            "start" | "register" => SLOW_REQUEST_TIMEOUT,
            _ => REQUEST_TIMEOUT,
        };
        let sent = self
            .http
            .post(format!("{}/metering/v1/{path}", self.api))
            .timeout(timeout)
            .bearer_auth(jwt)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                if (200..300).contains(&status) {
                    Answer::Ok(body, started.elapsed())
                } else {
                    Answer::Refused(status, body)
                }
            }
            Err(e) => Answer::Unreachable(e.to_string()),
        }
    }

    /// POSTs `body`, retrying 503s and transport errors with the protocol's backoff until
    /// `until`, or until the node dies.
    pub async fn send(&self, path: &str, body: &Value, until: Instant) -> Answer {
        let mut backoff = FIRST_BACKOFF;
        loop {
            if self.is_dead() {
                return Answer::Unreachable("the node is dead".into());
            }
            let answer = self.post_once(path, body).await;
            let retry = match &answer {
                Answer::Ok(..) => false,
                Answer::Refused(503, _) => {
                    self.stats.busy.add();
                    true
                }
                Answer::Refused(..) => false,
                Answer::Unreachable(_) => {
                    self.stats.transport_errors.add();
                    true
                }
            };
            let jitter = rand::thread_rng().gen_range(0.8..1.2);
            let pause = backoff.mul_f64(jitter);
            if !retry || Instant::now() + pause >= until {
                return answer;
            }
            self.stats.retries.add();
            let mut dead = self.died();
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = dead.wait_for(|d| *d) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
