//! The processes' bodies, kept out of `main.rs` so tests can run them in-process: `serve`
//! (register, control server, drain on shutdown) and `dial`.

use std::time::Duration;

use anyhow::Context;
use ringledger_domain::call::NodeId;
use ringledger_domain::E164;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::call::machine::Notice;
use crate::call::wire::{Load, RegisterBody};
use crate::config::MediaConfig;
use crate::control::{self, ControlState};
use crate::driver::{Node, NodeEvent, Place};
use crate::metering::{self, MeteringClient};
use crate::rtp::session::Source;

pub fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn metering_client(cfg: &MediaConfig) -> anyhow::Result<MeteringClient> {
    let secret = cfg
        .media_secret
        .as_ref()
        .context("RINGLEDGER_MEDIA_SECRET is not set: the api refuses unsigned metering requests")?;
    MeteringClient::new(&cfg.api_url, &cfg.node_id, secret.expose().as_bytes())
}

/// Runs the gateway until SIGINT/SIGTERM, then drains.
pub async fn serve(cfg: MediaConfig) -> anyhow::Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    let client = metering_client(&cfg)?;
    let node = Node::bind(cfg.clone(), client.clone())
        .await
        .context("binding the SIP socket")?;
    let handle = node.handle();
    tracing::info!(sip = %node.sip_addr()?, node_id = %cfg.node_id, "media gateway listening");
    let listener = tokio::net::TcpListener::bind(cfg.control_addr)
        .await
        .context("binding the control server")?;
    let state = ControlState::new(
        handle.clone(),
        cfg.node_id.clone(),
        cfg.media_secret.as_ref().map(|s| s.expose().as_bytes().to_vec()),
        metrics,
    );
    tokio::spawn(async move { axum::serve(listener, control::router(state)).await });
    let reg = tokio::spawn(register_loop(cfg.clone(), client, handle.clone()));
    let node_task = tokio::spawn(node.run());
    shutdown_signal().await;
    tracing::info!("draining: no new calls; active calls end within drain_seconds");
    reg.abort();
    let _ = handle.tx.send(NodeEvent::Drain).await;
    let _ = node_task.await;
    // Deliver the last stops before exiting (bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while metering::active_reporters() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

async fn register_loop(cfg: MediaConfig, client: MeteringClient, node: crate::driver::NodeHandle) {
    let mut failures = 0u64;
    loop {
        let body = RegisterBody {
            node_id: cfg.node_id.clone(),
            control_url: cfg.control_url(),
            public_ws_url: cfg.public_ws_url.clone(),
            load: Load {
                active_calls: node.active_calls().await as u32,
                max_calls: cfg.max_calls,
                cpu_per_mille: 0,
            },
        };
        let every = match client.register(&body).await {
            Ok(a) => {
                if failures > 0 {
                    tracing::info!(after_failures = failures, "registered with the api");
                }
                failures = 0;
                metrics::counter!("media_registrations_total", "ok" => "true").increment(1);
                Duration::from_secs(a.heartbeat_seconds.clamp(1, 300))
            }
            Err(e) => {
                // Every failure counts in metrics; the log says it once, then every 30th time.
                if failures % 30 == 0 {
                    tracing::warn!(code = %e.code, message = %e.message, failures, "registration with the api failed; retrying every 2 s");
                }
                failures += 1;
                metrics::counter!("media_registrations_total", "ok" => "false").increment(1);
                Duration::from_secs(2)
            }
        };
        tokio::time::sleep(every).await;
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[derive(Debug, clap::Args)]
pub struct DialArgs {
    /// The number to call, E.164 (`+442079460958`).
    pub number: String,
    /// The account to charge (its id). With `RINGLEDGER_CALL_TOKEN_SECRET` set (development),
    /// `dial` signs the call token itself; otherwise pass `--call-token`.
    #[arg(long)]
    pub account: String,
    /// A quote for this number and account (`GET /api/rates/quote` gives `quote_id`).
    #[arg(long, env = "RINGLEDGER_QUOTE_ID")]
    pub quote_id: String,
    /// A call token naming this node (from `/api/webrtc/token`).
    #[arg(long, env = "RINGLEDGER_CALL_TOKEN")]
    pub call_token: Option<String>,
    /// Hang up after this many seconds of talk (default: wait for the other side or the grant).
    #[arg(long)]
    pub hangup_after: Option<u64>,
    /// Tone frequency of the generated audio.
    #[arg(long, default_value_t = 1000.0)]
    pub tone_hz: f32,
}

#[derive(Serialize)]
struct CallClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    acc: uuid::Uuid,
    node: &'a str,
    iat: i64,
    exp: i64,
    jti: uuid::Uuid,
}

fn call_token(cfg: &MediaConfig, args: &DialArgs) -> anyhow::Result<String> {
    if let Some(t) = &args.call_token {
        return Ok(t.clone());
    }
    let secret = std::env::var("RINGLEDGER_CALL_TOKEN_SECRET")
        .context("pass --call-token, or set RINGLEDGER_CALL_TOKEN_SECRET (development) to sign one")?;
    let account = uuid::Uuid::parse_str(&args.account).context("--account is the account's id (a UUID)")?;
    NodeId::parse(&cfg.node_id)?;
    let now = chrono::Utc::now().timestamp();
    let claims = CallClaims {
        iss: "ringledger-api",
        aud: "ringledger-call",
        sub: "ringledger-media-dial",
        acc: account,
        node: &cfg.node_id,
        iat: now,
        exp: now + 120,
        jti: uuid::Uuid::new_v4(),
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// Places one call and prints what happens; the exit code is 0 for an answered call.
pub async fn dial(cfg: MediaConfig, args: DialArgs) -> anyhow::Result<i32> {
    let destination = E164::parse(&args.number, None)
        .map_err(|e| anyhow::anyhow!("{e}; give the number in E.164 form, e.g. +442079460958"))?;
    let token = call_token(&cfg, &args)?;
    let client = metering_client(&cfg)?;
    let node = Node::bind(cfg, client).await.context("binding the SIP socket")?;
    let handle = node.handle();
    let node_task = tokio::spawn(node.run());
    let (tx, mut rx) = mpsc::channel(64);
    println!("dialling {}", destination.masked());
    let key = handle
        .place(Place {
            destination,
            call_token: token,
            quote_id: args.quote_id.clone(),
            source: Source::Tone(args.tone_hz),
            notices: Some(tx),
        })
        .await
        .map_err(anyhow::Error::msg)?;
    let mut code = 1;
    let mut hangup_at: Option<tokio::time::Instant> = None;
    loop {
        let sleep = hangup_at.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            n = rx.recv() => {
                let Some(n) = n else { break };
                match n {
                    Notice::Denied { code: c, message } => { println!("denied: {c}: {message}"); break; }
                    Notice::Granted { granted_seconds, final_unit } => {
                        println!("granted: {granted_seconds} s{}", if final_unit { " (final)" } else { "" });
                    }
                    Notice::Ringing => println!("ringing"),
                    Notice::Answered => {
                        println!("answered");
                        code = 0;
                        hangup_at = args.hangup_after.map(|s| tokio::time::Instant::now() + Duration::from_secs(s));
                    }
                    Notice::Failed { cause, sip_status } => {
                        println!("failed: {}{}", json_name(&cause), sip_status.map(|s| format!(" (SIP {s})")).unwrap_or_default());
                        break;
                    }
                    Notice::Held(h) => println!("{}", if h { "held by the trunk" } else { "resumed" }),
                    Notice::Media { sent_packets, received_packets } => {
                        println!("rtp: sent {sent_packets} packets, received {received_packets}");
                    }
                    Notice::Ended { cause, talk_ms } => {
                        println!("ended: {} after {talk_ms} ms", json_name(&cause));
                        break;
                    }
                }
            }
            _ = tokio::time::sleep_until(sleep), if hangup_at.is_some() => {
                hangup_at = None;
                let _ = handle.tx.send(NodeEvent::CallerHangup(key)).await;
            }
            _ = tokio::signal::ctrl_c() => {
                let _ = handle.tx.send(NodeEvent::CallerHangup(key)).await;
            }
        }
    }
    let _ = handle.tx.send(NodeEvent::Drain).await;
    let _ = tokio::time::timeout(Duration::from_secs(40), node_task).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while metering::active_reporters() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(code)
}

fn json_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
