//! The double's objects and the JSON Stripe gives for them (the fields we and the webhook side
//! read, named and shaped as Stripe's API reference has them; amounts in minor units,
//! currencies lowercase).

use std::collections::BTreeMap;

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Open,
    Complete,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Unpaid,
    Paid,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub amount_total: i64,
    pub currency: String,
    pub product_name: String,
    pub client_reference_id: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub metadata: BTreeMap<String, String>,
    /// `payment_intent_data[metadata]`: copied to the payment intent when one is created.
    pub intent_metadata: BTreeMap<String, String>,
    pub created: i64,
    pub expires_at: i64,
    pub status: SessionStatus,
    pub payment_status: PaymentStatus,
    pub payment_intent: Option<String>,
    /// A "pay later" payment not yet settled.
    pub awaiting_settlement: bool,
}

impl Session {
    pub fn json(&self, public_url: &str) -> Value {
        json!({
            "id": self.id,
            "object": "checkout.session",
            "mode": "payment",
            "amount_subtotal": self.amount_total,
            "amount_total": self.amount_total,
            "currency": self.currency,
            "client_reference_id": self.client_reference_id,
            "metadata": self.metadata,
            "created": self.created,
            "expires_at": self.expires_at,
            "livemode": false,
            "payment_intent": self.payment_intent,
            "payment_status": match self.payment_status {
                PaymentStatus::Unpaid => "unpaid",
                PaymentStatus::Paid => "paid",
            },
            "status": match self.status {
                SessionStatus::Open => "open",
                SessionStatus::Complete => "complete",
                SessionStatus::Expired => "expired",
            },
            "success_url": self.success_url,
            "cancel_url": self.cancel_url,
            "url": (self.status == SessionStatus::Open).then(|| format!("{public_url}/c/pay/{}", self.id)),
        })
    }
}

/// A payment intent and its one charge (the double has no separate intent object to fetch).
#[derive(Debug, Clone)]
pub struct Payment {
    pub payment_intent: String,
    pub charge: String,
    pub amount: i64,
    pub currency: String,
    /// Cumulative, as Stripe reports it.
    pub amount_refunded: i64,
    pub succeeded: bool,
    pub created: i64,
    /// From the session's `payment_intent_data[metadata]`.
    pub metadata: BTreeMap<String, String>,
}

impl Payment {
    pub fn intent_json(&self) -> Value {
        json!({
            "id": self.payment_intent,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_received": if self.succeeded { self.amount } else { 0 },
            "currency": self.currency,
            "status": if self.succeeded { "succeeded" } else { "processing" },
            "latest_charge": self.charge,
            "metadata": self.metadata,
            "created": self.created,
            "livemode": false,
        })
    }

    pub fn charge_json(&self) -> Value {
        json!({
            "id": self.charge,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount,
            "amount_refunded": self.amount_refunded,
            "refunded": self.amount_refunded >= self.amount,
            "captured": true,
            "paid": self.succeeded,
            "status": if self.succeeded { "succeeded" } else { "pending" },
            "currency": self.currency,
            "payment_intent": self.payment_intent,
            "created": self.created,
            "livemode": false,
            "metadata": {},
        })
    }
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    pub payment_intent: String,
    pub created: i64,
    pub metadata: BTreeMap<String, String>,
}

impl Refund {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "currency": self.currency,
            "charge": self.charge,
            "payment_intent": self.payment_intent,
            "status": "succeeded",
            "created": self.created,
            "metadata": self.metadata,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub charge: String,
    pub payment_intent: String,
    /// `needs_response` while open, then `won` or `lost`.
    pub status: String,
    pub reason: String,
    pub created: i64,
}

impl Dispute {
    pub fn json(&self) -> Value {
        json!({
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "currency": self.currency,
            "charge": self.charge,
            "payment_intent": self.payment_intent,
            "status": self.status,
            "reason": self.reason,
            "created": self.created,
            "is_charge_refundable": false,
            "livemode": false,
            "metadata": {},
        })
    }
}

/// Stripe's error body.
pub fn error(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    json!({ "error": { "type": kind, "code": code, "param": param, "message": message } })
}

/// A Stripe-like id: `prefix_` and 24 random alphanumerics.
pub fn new_id(prefix: &str) -> String {
    use rand::distributions::{Alphanumeric, DistString};
    format!(
        "{prefix}_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 24)
    )
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
