//! Webhook delivery as Stripe does it: each event POSTed as JSON with a fresh
//! `Stripe-Signature` per attempt; anything but a 2xx within the timeout is retried with
//! exponential backoff (Stripe's spans three days; here milliseconds to seconds, configurable).
//! Every delivery runs on its own task, so events arrive in no guaranteed order.

use std::sync::Arc;
use std::time::Duration;

use super::objects;
use super::state::{DeliveryAttempt, SimState};
use crate::stripe::signature;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub first_retry_ms: u64,
    pub max_retry_ms: u64,
    /// How long the endpoint has to answer one attempt.
    pub attempt_timeout_ms: u64,
    /// Deliveries sending at once at most.
    pub max_in_flight: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            first_retry_ms: 1_000,
            max_retry_ms: 60_000,
            attempt_timeout_ms: 10_000,
            max_in_flight: 64,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1_u64 << attempt.saturating_sub(1).min(20);
        Duration::from_millis(self.first_retry_ms.saturating_mul(factor).min(self.max_retry_ms))
    }
}

/// Sends `event_id` on a task of its own, retrying until a 2xx or the attempts run out.
pub(super) fn deliver(state: &Arc<SimState>, event_id: String) {
    let state = state.clone();
    tokio::spawn(async move {
        let Some(body) = state.event_body(&event_id) else {
            return;
        };
        let policy = state.config.retry.clone();
        for attempt in 1..=policy.max_attempts.max(1) {
            let Some(url) = state.webhook_url() else {
                tracing::info!(event = %event_id, "stripe-sim: no webhook URL set; event recorded only");
                return;
            };
            let outcome = send_once(&state, &url, &body).await;
            let ok = outcome.as_ref().is_ok_and(|s| (200..300).contains(s));
            let (status, error) = match outcome {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            let label = if ok { "delivered" } else { "failed" };
            metrics::counter!("ringledger_stripe_sim_webhook_attempts_total", "outcome" => label)
                .increment(1);
            let error_text = error.as_deref();
            tracing::info!(event = %event_id, attempt, status, error = error_text, "stripe-sim: webhook attempt");
            state.record_attempt(
                &event_id,
                DeliveryAttempt {
                    attempt,
                    status,
                    error,
                    at: objects::now(),
                },
            );
            if ok {
                return;
            }
            if attempt < policy.max_attempts {
                tokio::time::sleep(policy.backoff(attempt)).await;
            }
        }
        tracing::warn!(event = %event_id, "stripe-sim: webhook gave up after every attempt");
    });
}

async fn send_once(state: &SimState, url: &str, body: &str) -> Result<u16, String> {
    let _permit = state.sends.acquire().await.map_err(|e| e.to_string())?;
    let header = signature::header(
        &[state.config.webhook_secret.expose()],
        objects::now(),
        body.as_bytes(),
    );
    let res = state
        .http
        .post(url)
        .header("Stripe-Signature", header)
        .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
        .header(
            reqwest::header::USER_AGENT,
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else {
                e.without_url().to_string()
            }
        })?;
    Ok(res.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy {
            first_retry_ms: 100,
            max_retry_ms: 500,
            ..RetryPolicy::default()
        };
        let waits: Vec<u128> = (1..=5).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
    }
}
