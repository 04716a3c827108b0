//! Forced hangup, api → media (docs/metering-protocol.md, "`hangup`"; the brief's
//! CallHangupJob). A call is asked to end when its final grant runs out and the node has not
//! stopped it (talk past the ceiling, or silence past the ceiling plus a grace), when its
//! account is frozen or banned, or when an admin ends it. Each is recorded on the Call stream
//! (`CallHangupRequested` with the reason; the call later ends with that cause) and then sent
//! by durable jobs on the `hangups` queue, at least once, with retries, backoff and a dead
//! letter:
//!
//! - `send_hangup` {call_id, reason}, keyed by (call, reason): POSTs `{control_url}/v1/hangup`
//!   to the node holding the call, signed with a fresh api JWT. 202 or 404 ends it; anything
//!   else is retried. A call already over needs nothing.
//! - `final_unit_expiry` {call_id, granted_seconds}, keyed by (call, ceiling), due when talk
//!   would pass a final ceiling plus the grace: asks for the hangup if the call still runs.
//! - `end_account_calls` {account_id}, enqueued by the `account_hangups` process manager for
//!   every freeze or ban: asks every live call of the account to end, if the account is
//!   still frozen or banned when it runs.
//!
//! Never logs a token, a secret or a number.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ringledger_domain::account::Account;
use ringledger_domain::call::{Call, CallCommand, CallError, HangupReason, Phase};
use ringledger_domain::{AccountId, CallId};
use ringledger_projections::calls::hangups::{EndAccountCalls, END_ACCOUNT_CALLS, HANGUP_QUEUE};
use ringledger_projections::jobs::{
    Backoff, ClaimedJob, JobError, JobKind, JobQueue, NewJob, QueueConfig, QueueName, Registry, WorkerPool,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{token, CallService, CallsError};

pub const SEND_HANGUP: &str = "send_hangup";
pub const FINAL_UNIT_EXPIRY: &str = "final_unit_expiry";
/// Attempts a `send_hangup` gets: 0.5 s doubling to 30 s, about 90 s in all, then the dead
/// letter (the sweeper still ends the call once it falls silent).
pub const SEND_ATTEMPTS: i32 = 8;
const EXPIRY_ATTEMPTS: i32 = 10;
/// How long the api waits for a node's answer to `hangup`.
pub const HANGUP_TIMEOUT_MS: u64 = 2_000;
/// Live calls one `end_account_calls` run looks at, at most (an account holds at most
/// `max_concurrent_calls`, itself at most 1,000).
const MAX_CALLS_PER_ACCOUNT: i64 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SendHangup {
    call_id: CallId,
    reason: HangupReason,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FinalUnitExpiry {
    call_id: CallId,
    granted_seconds: u64,
}

/// What a `send_hangup` run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The node accepted (202).
    Accepted,
    /// The node does not hold the call (404): the sweeper settles it.
    UnknownToNode,
    /// The call is over, or no hangup was asked for: nothing to send.
    Nothing,
}

fn queue() -> Result<QueueName, CallsError> {
    QueueName::parse(HANGUP_QUEUE).map_err(|e| CallsError::Internal(e.to_string()))
}

fn kind(name: &str) -> Result<JobKind, CallsError> {
    JobKind::parse(name).map_err(|e| CallsError::Internal(e.to_string()))
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::Retry(e.to_string())
}

impl CallService {
    /// Asks the node holding `call_id` to end it now with `reason` (admin action, freeze,
    /// ban, final unit): records `CallHangupRequested` (the first reason stands) and enqueues
    /// the `hangup`. A call already over is refused with `CallOver`.
    pub async fn request_hangup(
        &self,
        call_id: CallId,
        reason: HangupReason,
        now: DateTime<Utc>,
    ) -> Result<Call, CallsError> {
        let (call, _) = self
            .drive(call_id, CallCommand::RequestHangup { reason, now })
            .await?;
        metrics::counter!("ringledger_hangups_requested_total", "reason" => reason.as_str()).increment(1);
        tracing::info!(call_id = %call_id, reason = reason.as_str(), "hangup requested");
        Ok(call)
    }

    /// After each step of a live call: the `hangup` it asked for goes out, and a call on its
    /// final grant gets a timer for the moment its talk passes the ceiling plus the grace.
    /// Both are keyed, so repeating this for every report enqueues each once.
    pub(super) async fn follow_up(&self, call_id: CallId, call: &Call) -> Result<(), CallsError> {
        if call.phase().is_over() {
            return Ok(());
        }
        if let Some(reason) = call.hangup() {
            let payload = serde_json::to_value(SendHangup { call_id, reason })
                .map_err(|e| CallsError::Internal(e.to_string()))?;
            let job = NewJob::new(queue()?, kind(SEND_HANGUP)?, payload)
                .with_idempotency_key(format!("{call_id}:{}", reason.as_str()))
                .with_max_attempts(SEND_ATTEMPTS);
            self.jobs
                .enqueue(&job)
                .await
                .map_err(|e| CallsError::Internal(e.to_string()))?;
            return Ok(());
        }
        if let Some(due) = self.final_unit_deadline(call) {
            let granted_seconds = call.granted_seconds();
            let payload = serde_json::to_value(FinalUnitExpiry {
                call_id,
                granted_seconds,
            })
            .map_err(|e| CallsError::Internal(e.to_string()))?;
            let job = NewJob::new(queue()?, kind(FINAL_UNIT_EXPIRY)?, payload)
                .with_idempotency_key(format!("{call_id}:{granted_seconds}"))
                .with_run_at(due)
                .with_max_attempts(EXPIRY_ATTEMPTS);
            self.jobs
                .enqueue(&job)
                .await
                .map_err(|e| CallsError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// When an answered call on its final grant should have stopped: its talk reaches the
    /// ceiling (counted from its last answered report, at which talk was known) plus the grace.
    fn final_unit_deadline(&self, call: &Call) -> Option<DateTime<Utc>> {
        if call.final_unit().is_none() || call.phase() != Phase::Answered || call.hangup().is_some() {
            return None;
        }
        let left = call.granted_seconds().saturating_sub(call.talk_seconds());
        let grace = u64::from(self.config.final_unit_grace_seconds);
        let seconds = i64::try_from(left.saturating_add(grace)).ok()?;
        Some(call.last_activity_at()? + chrono::Duration::seconds(seconds))
    }

    /// `final_unit_expiry`: the call still runs past its final ceiling plus the grace, so
    /// the api asks the node to end it.
    async fn expire_final_unit(&self, call_id: CallId, now: DateTime<Utc>) -> Result<(), JobError> {
        let call = self.load(call_id).await.map_err(retry)?;
        if call.phase().is_over() || call.hangup().is_some() {
            return Ok(());
        }
        match self.final_unit_deadline(&call) {
            None => Ok(()),
            Some(due) if due > now => Err(JobError::Retry(format!(
                "call {call_id} reported since; its final grant runs out at {due}"
            ))),
            Some(_) => match self.request_hangup(call_id, HangupReason::FinalUnit, now).await {
                Ok(_) | Err(CallsError::Call(CallError::CallOver(_))) => Ok(()),
                Err(e) => Err(retry(e)),
            },
        }
    }

    /// `end_account_calls`: if the account is (still) banned or frozen, every call holding
    /// credit on it, or live in the `active_calls` read model, is asked to end. The Account
    /// stream is read fresh, so a call whose first grant was reserved just before the freeze
    /// is found even if the read model has not caught up.
    pub async fn end_account_calls(
        &self,
        account_id: AccountId,
        now: DateTime<Utc>,
    ) -> Result<u32, CallsError> {
        let account: Account = self
            .accounts
            .ledger()
            .load(&account_id.to_string())
            .await
            .map_err(|e| CallsError::Internal(e.to_string()))?;
        let reason = if account.is_banned() {
            HangupReason::AccountBanned
        } else if !account.frozen_reasons().is_empty() {
            HangupReason::AccountFrozen
        } else {
            return Ok(0);
        };
        let mut calls: Vec<Uuid> = account
            .open_reservations()
            .values()
            .map(|r| r.call_id.0)
            .collect();
        let listed: Vec<Uuid> =
            sqlx::query_scalar("SELECT call_id FROM active_calls WHERE account_id = $1 LIMIT $2")
                .bind(account_id.0)
                .bind(MAX_CALLS_PER_ACCOUNT)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| CallsError::Internal(e.to_string()))?;
        calls.extend(listed);
        calls.sort();
        calls.dedup();
        let mut asked = 0;
        for id in calls {
            match self.request_hangup(CallId(id), reason, now).await {
                Ok(_) => asked += 1,
                Err(CallsError::Call(CallError::CallOver(_) | CallError::UnknownCall)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(asked)
    }

    /// `send_hangup`: POSTs `hangup` to the node holding the call, with the reason the Call
    /// recorded (the first one asked for).
    pub async fn send_hangup(&self, call_id: CallId) -> Result<Sent, JobError> {
        let call = self.load(call_id).await.map_err(retry)?;
        let (Some(terms), Some(reason)) = (call.terms(), call.hangup()) else {
            return Ok(Sent::Nothing);
        };
        if call.phase().is_over() {
            return Ok(Sent::Nothing);
        }
        let node = terms.node_id.as_str();
        let control_url: Option<String> =
            sqlx::query_scalar("SELECT control_url FROM media_nodes WHERE node_id = $1")
                .bind(node)
                .fetch_optional(&self.pool)
                .await?;
        let control_url = control_url.ok_or_else(|| {
            JobError::Permanent(format!(
                "media node {node} never registered; the sweeper ends call {call_id}"
            ))
        })?;
        let secret = self.media_secret.as_ref().ok_or_else(|| {
            JobError::Retry("RINGLEDGER_MEDIA_SECRET is not set; hangups cannot be signed".to_owned())
        })?;
        let jwt =
            token::mint_api(node, secret.expose().as_bytes(), Utc::now().timestamp(), 30).map_err(retry)?;
        let body = serde_json::json!({
            "call_id": call_id,
            "reason": reason.as_str(),
            "message": message(reason),
        });
        let url = format!("{}/v1/hangup", control_url.trim_end_matches('/'));
        let sent = self
            .http
            .post(&url)
            .bearer_auth(jwt)
            .json(&body)
            .timeout(Duration::from_millis(HANGUP_TIMEOUT_MS))
            .send()
            .await;
        let outcome = match sent {
            Ok(r) if r.status().is_success() => Ok(Sent::Accepted),
            Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => Ok(Sent::UnknownToNode),
            Ok(r) => Err(JobError::Retry(format!(
                "node {node} answered hangup with {}",
                r.status()
            ))),
            Err(e) => Err(JobError::Retry(format!(
                "node {node} did not take the hangup: {}",
                e.without_url()
            ))),
        };
        let result = match &outcome {
            Ok(Sent::Accepted) => "accepted",
            Ok(_) => "unknown_call",
            Err(_) => "failed",
        };
        metrics::counter!("ringledger_hangups_sent_total", "result" => result).increment(1);
        tracing::info!(call_id = %call_id, node, reason = reason.as_str(), result, "hangup sent");
        outcome
    }

    async fn load(&self, call_id: CallId) -> Result<Call, CallsError> {
        self.calls
            .load(&call_id.to_string())
            .await
            .map_err(|e| CallsError::Internal(e.to_string()))
    }
}

/// The `message` of a hangup, for people.
fn message(reason: HangupReason) -> &'static str {
    match reason {
        HangupReason::FinalUnit => "the call's credit is used up",
        HangupReason::MaxDuration => "the call reached its maximum duration",
        HangupReason::AccountFrozen => "the account is frozen",
        HangupReason::AccountBanned => "the account is banned",
        HangupReason::Admin => "an administrator ended the call",
    }
}

/// The `hangups` queue's workers: quick polls and short backoffs, because a hangup is worth
/// seconds of talk the customer does not pay for.
pub async fn spawn_pool(calls: CallService, jobs: JobQueue) -> anyhow::Result<WorkerPool> {
    let send = calls.clone();
    let expire = calls.clone();
    let registry = Registry::new()
        .register_fn(kind(SEND_HANGUP)?, move |job: ClaimedJob| {
            let calls = send.clone();
            async move {
                let p: SendHangup = job.payload_as()?;
                calls.send_hangup(p.call_id).await.map(|_| ())
            }
        })
        .register_fn(kind(FINAL_UNIT_EXPIRY)?, move |job: ClaimedJob| {
            let calls = expire.clone();
            async move {
                let p: FinalUnitExpiry = job.payload_as()?;
                calls.expire_final_unit(p.call_id, Utc::now()).await
            }
        })
        .register_fn(kind(END_ACCOUNT_CALLS)?, move |job: ClaimedJob| {
            let calls = calls.clone();
            async move {
                let p: EndAccountCalls = job.payload_as()?;
                let asked = calls
                    .end_account_calls(AccountId(p.account_id), Utc::now())
                    .await
                    .map_err(retry)?;
                tracing::info!(account_id = %p.account_id, trigger = %p.trigger, asked, "account's calls asked to end");
                Ok(())
            }
        });
    let config = QueueConfig {
        concurrency: 8,
        poll_ms: 500,
        job_timeout_ms: 30_000,
        backoff: Backoff {
            base_ms: 500,
            cap_ms: 30_000,
            jitter_percent: 20,
        },
        ..QueueConfig::default()
    };
    Ok(WorkerPool::spawn(jobs, queue()?, registry, config)?)
}
