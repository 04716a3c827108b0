//! The double's memory: sessions, payments, refunds, disputes, idempotency keys and events, and
//! the transitions the hosted page and the admin endpoints make. Each transition that Stripe
//! announces emits its event; delivery is `webhooks`' job.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde::Serialize;
use serde_json::{json, Value};

use super::objects::{self, Dispute, Payment, PaymentStatus, Refund, Session, SessionStatus};
use super::SimConfig;
use crate::stripe::client::API_VERSION;

/// Events kept at most; older ones are dropped (a development double, not an archive).
const MAX_EVENTS: usize = 10_000;
const MAX_IDEMPOTENCY_KEYS: usize = 10_000;
const SESSION_LIFETIME_SECS: i64 = 24 * 3_600;

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    pub attempt: u32,
    /// The endpoint's HTTP status; none when it could not be reached or timed out.
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub object_id: String,
    /// The event exactly as delivered (its JSON body).
    pub body: String,
    pub attempts: Vec<DeliveryAttempt>,
}

impl EventSummary {
    /// True once an attempt got a 2xx.
    pub fn delivered(&self) -> bool {
        self.attempts
            .iter()
            .any(|a| a.status.is_some_and(|s| (200..300).contains(&s)))
    }
}

#[derive(Default)]
pub(super) struct Store {
    pub sessions: HashMap<String, Session>,
    /// By payment intent id.
    pub payments: HashMap<String, Payment>,
    pub refunds: HashMap<String, Refund>,
    pub disputes: HashMap<String, Dispute>,
    /// Idempotency key -> (request fingerprint, status, body).
    pub idempotency: HashMap<String, (String, u16, Value)>,
    pub events: Vec<EventSummary>,
}

/// Why an admin or API transition was refused: HTTP status and Stripe error body.
pub(super) type Refusal = (u16, Value);

pub(super) fn missing(kind: &str, id: &str, param: &str) -> Refusal {
    let message = format!("No such {kind}: '{}'", id.chars().take(64).collect::<String>());
    (
        404,
        objects::error(
            "invalid_request_error",
            Some("resource_missing"),
            Some(param),
            &message,
        ),
    )
}

pub(super) fn invalid(code: Option<&str>, param: Option<&str>, message: &str) -> Refusal {
    (400, objects::error("invalid_request_error", code, param, message))
}

pub struct SimState {
    pub(super) config: SimConfig,
    public_url: String,
    webhook_url: RwLock<Option<String>>,
    store: Mutex<Store>,
    pub(super) http: reqwest::Client,
    pub(super) sends: Arc<tokio::sync::Semaphore>,
}

impl SimState {
    pub(super) fn new(config: SimConfig, public_url: String) -> anyhow::Result<SimState> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_millis(config.retry.attempt_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(SimState {
            webhook_url: RwLock::new(config.webhook_url.clone()),
            sends: Arc::new(tokio::sync::Semaphore::new(config.retry.max_in_flight.max(1))),
            config,
            public_url,
            store: Mutex::new(Store::default()),
            http,
        })
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub(super) fn webhook_url(&self) -> Option<String> {
        self.webhook_url.read().ok().and_then(|u| u.clone())
    }

    pub(super) fn set_webhook_url(&self, url: &str) {
        if let Ok(mut w) = self.webhook_url.write() {
            *w = Some(url.to_owned());
        }
    }

    pub(super) fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn events(&self) -> Vec<EventSummary> {
        self.store().events.clone()
    }

    /// Records an event of `kind` about `object` and returns its id; the caller sends it.
    pub(super) fn record_event(store: &mut Store, kind: &str, object: Value) -> String {
        let id = objects::new_id("evt");
        let created = objects::now();
        let object_id = object["id"].as_str().unwrap_or_default().to_owned();
        let body = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "type": kind,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "data": { "object": object },
        });
        if store.events.len() >= MAX_EVENTS {
            store.events.remove(0);
        }
        store.events.push(EventSummary {
            id: id.clone(),
            kind: kind.to_owned(),
            created,
            object_id,
            body: body.to_string(),
            attempts: Vec::new(),
        });
        id
    }

    pub(super) fn record_attempt(&self, event_id: &str, attempt: DeliveryAttempt) {
        let mut store = self.store();
        if let Some(e) = store.events.iter_mut().find(|e| e.id == event_id) {
            e.attempts.push(attempt);
        }
    }

    pub(super) fn event_body(&self, event_id: &str) -> Option<String> {
        self.store()
            .events
            .iter()
            .find(|e| e.id == event_id)
            .map(|e| e.body.clone())
    }

    /// The stored answer to `key`, or a conflict if it was used with other parameters.
    pub(super) fn idempotent(&self, key: &str, fingerprint: &str) -> Option<Refusal> {
        let store = self.store();
        let (seen, status, body) = store.idempotency.get(key)?;
        if seen == fingerprint {
            Some((*status, body.clone()))
        } else {
            Some((
                400,
                objects::error(
                    "idempotency_error",
                    None,
                    None,
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                ),
            ))
        }
    }

    pub(super) fn remember(&self, key: &str, fingerprint: &str, status: u16, body: &Value) {
        let mut store = self.store();
        if store.idempotency.len() >= MAX_IDEMPOTENCY_KEYS {
            store.idempotency.clear();
        }
        store
            .idempotency
            .entry(key.to_owned())
            .or_insert_with(|| (fingerprint.to_owned(), status, body.clone()));
    }

    pub(super) fn create_session(&self, new: NewSession) -> Value {
        let created = objects::now();
        let session = Session {
            id: objects::new_id("cs_test"),
            amount_total: new.amount_total,
            currency: new.currency,
            product_name: new.product_name,
            client_reference_id: new.client_reference_id,
            success_url: new.success_url,
            cancel_url: new.cancel_url,
            metadata: new.metadata,
            intent_metadata: new.intent_metadata,
            created,
            expires_at: created + SESSION_LIFETIME_SECS,
            status: SessionStatus::Open,
            payment_status: PaymentStatus::Unpaid,
            payment_intent: None,
            awaiting_settlement: false,
        };
        let json = session.json(&self.public_url);
        self.store().sessions.insert(session.id.clone(), session);
        json
    }

    pub(super) fn session(&self, id: &str) -> Option<Session> {
        self.store().sessions.get(id).cloned()
    }

    pub(super) fn payment_intent_json(&self, id: &str) -> Option<Value> {
        self.store().payments.get(id).map(Payment::intent_json)
    }

    pub(super) fn session_json(&self, id: &str) -> Option<Value> {
        self.session(id).map(|s| s.json(&self.public_url))
    }

    /// The customer paid: by card (`settled`) or by a method that settles later.
    /// Returns the `checkout.session.completed` event to send.
    pub(super) fn complete(&self, id: &str, settled: bool) -> Result<String, Refusal> {
        let mut store = self.store();
        let Some(session) = store.sessions.get_mut(id) else {
            return Err(missing("checkout session", id, "id"));
        };
        if session.status != SessionStatus::Open {
            return Err(invalid(None, None, "This Checkout Session is no longer open."));
        }
        let payment = Payment {
            payment_intent: objects::new_id("pi"),
            charge: objects::new_id("ch"),
            amount: session.amount_total,
            currency: session.currency.clone(),
            amount_refunded: 0,
            succeeded: settled,
            created: objects::now(),
            metadata: session.intent_metadata.clone(),
        };
        session.status = SessionStatus::Complete;
        session.payment_status = if settled {
            PaymentStatus::Paid
        } else {
            PaymentStatus::Unpaid
        };
        session.awaiting_settlement = !settled;
        session.payment_intent = Some(payment.payment_intent.clone());
        let json = session.json(&self.public_url);
        store.payments.insert(payment.payment_intent.clone(), payment);
        Ok(Self::record_event(&mut store, "checkout.session.completed", json))
    }

    /// A "pay later" payment settles: `async_payment_succeeded` or `_failed`.
    pub(super) fn settle(&self, id: &str, succeeded: bool) -> Result<String, Refusal> {
        let mut store = self.store();
        let Some(session) = store.sessions.get_mut(id) else {
            return Err(missing("checkout session", id, "id"));
        };
        if !session.awaiting_settlement {
            return Err(invalid(
                None,
                None,
                "This session has no payment waiting to settle.",
            ));
        }
        session.awaiting_settlement = false;
        if succeeded {
            session.payment_status = PaymentStatus::Paid;
        }
        let json = session.json(&self.public_url);
        let pi = session.payment_intent.clone().unwrap_or_default();
        if let Some(p) = store.payments.get_mut(&pi) {
            p.succeeded = succeeded;
        }
        let kind = if succeeded {
            "checkout.session.async_payment_succeeded"
        } else {
            "checkout.session.async_payment_failed"
        };
        Ok(Self::record_event(&mut store, kind, json))
    }

    pub(super) fn expire(&self, id: &str) -> Result<String, Refusal> {
        let mut store = self.store();
        let Some(session) = store.sessions.get_mut(id) else {
            return Err(missing("checkout session", id, "id"));
        };
        if session.status != SessionStatus::Open {
            return Err(invalid(
                None,
                None,
                "Only an open Checkout Session can be expired.",
            ));
        }
        session.status = SessionStatus::Expired;
        let json = session.json(&self.public_url);
        Ok(Self::record_event(&mut store, "checkout.session.expired", json))
    }

    /// Refunds `amount` (all that is left when `None`); returns the refund and the
    /// `charge.refunded` event.
    pub(super) fn refund(
        &self,
        payment_intent: &str,
        amount: Option<i64>,
        metadata: BTreeMap<String, String>,
    ) -> Result<(Value, String), Refusal> {
        let mut store = self.store();
        let Some(p) = store.payments.get_mut(payment_intent) else {
            return Err(missing("payment_intent", payment_intent, "payment_intent"));
        };
        if !p.succeeded {
            return Err(invalid(
                None,
                Some("payment_intent"),
                "This PaymentIntent has no successful charge to refund.",
            ));
        }
        let left = p.amount - p.amount_refunded;
        if left == 0 {
            return Err(invalid(
                Some("charge_already_refunded"),
                None,
                "Charge has already been refunded.",
            ));
        }
        let amount = amount.unwrap_or(left);
        if amount <= 0 || amount > left {
            return Err(invalid(
                Some("amount_too_large"),
                Some("amount"),
                &format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({left})"),
            ));
        }
        p.amount_refunded += amount;
        let refund = Refund {
            id: objects::new_id("re"),
            amount,
            currency: p.currency.clone(),
            charge: p.charge.clone(),
            payment_intent: p.payment_intent.clone(),
            created: objects::now(),
            metadata,
        };
        let charge = p.charge_json();
        let json = refund.json();
        store.refunds.insert(refund.id.clone(), refund);
        Ok((json, Self::record_event(&mut store, "charge.refunded", charge)))
    }

    pub(super) fn open_dispute(
        &self,
        payment_intent: &str,
        amount: Option<i64>,
        reason: &str,
    ) -> Result<(Value, String), Refusal> {
        let mut store = self.store();
        let Some(p) = store.payments.get(payment_intent) else {
            return Err(missing("payment_intent", payment_intent, "payment_intent"));
        };
        if !p.succeeded {
            return Err(invalid(None, None, "Only a successful payment can be disputed."));
        }
        let amount = amount.unwrap_or(p.amount);
        if amount <= 0 || amount > p.amount {
            return Err(invalid(
                None,
                Some("amount"),
                "A dispute is for at most the charge's amount.",
            ));
        }
        let dispute = Dispute {
            id: objects::new_id("dp"),
            amount,
            currency: p.currency.clone(),
            charge: p.charge.clone(),
            payment_intent: p.payment_intent.clone(),
            status: "needs_response".to_owned(),
            reason: reason.to_owned(),
            created: objects::now(),
        };
        let json = dispute.json();
        store.disputes.insert(dispute.id.clone(), dispute);
        let event = Self::record_event(&mut store, "charge.dispute.created", json.clone());
        Ok((json, event))
    }

    pub(super) fn close_dispute(&self, id: &str, won: bool) -> Result<(Value, String), Refusal> {
        let mut store = self.store();
        let Some(d) = store.disputes.get_mut(id) else {
            return Err(missing("dispute", id, "id"));
        };
        if d.status != "needs_response" {
            return Err(invalid(None, None, "This dispute is already closed."));
        }
        d.status = if won { "won" } else { "lost" }.to_owned();
        let json = d.json();
        let event = Self::record_event(&mut store, "charge.dispute.closed", json.clone());
        Ok((json, event))
    }
}

/// A session as the create endpoint parsed it.
pub(super) struct NewSession {
    pub amount_total: i64,
    pub currency: String,
    pub product_name: String,
    pub client_reference_id: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub metadata: BTreeMap<String, String>,
    pub intent_metadata: BTreeMap<String, String>,
}
