//! Stripe's event payloads, parsed at the edge into our types: the envelope every webhook
//! carries, and the three objects we act on (checkout.session, charge, dispute). A payload
//! that passes [`Envelope::parse`] is recorded; [`fact`] turns a recorded event into the
//! Payment command it means, or says why there is nothing to do. Never logs a payload: it
//! holds personal data (names, emails, card country).

use std::collections::HashMap;

use ringledger_domain::payment::{CheckoutTerms, DisputeStatus, FailureReason, PaymentCommand};
use ringledger_domain::{AccountId, ChargeId, CheckoutSessionId, Currency, DisputeId, Money, PaymentId};
use serde::Deserialize;

/// The event types the webhook job handles; any other is recorded and ignored.
pub const HANDLED_TYPES: &[&str] = &[
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];

pub fn is_handled(event_type: &str) -> bool {
    HANDLED_TYPES.contains(&event_type)
}

/// The event envelope (`id`, `type`, `created`, `livemode`, `api_version`, `data.object`).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub created: i64,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub api_version: Option<String>,
    pub data: Data,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Data {
    pub object: serde_json::Value,
}

/// Why a payload is not a Stripe event we can record (answered 400).
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("body is not a Stripe event: {0}")]
    Json(String),
    #[error("event id is not 1-255 letters, digits, `_` or `-`")]
    BadId,
    #[error("event type is not 1-128 printable characters")]
    BadType,
}

impl Envelope {
    pub fn parse(raw: &[u8]) -> Result<Envelope, EnvelopeError> {
        let envelope: Envelope = serde_json::from_slice(raw).map_err(|e| {
            // serde's message names a line and column, never the payload's content.
            EnvelopeError::Json(format!(
                "{} at line {} column {}",
                classify(&e),
                e.line(),
                e.column()
            ))
        })?;
        if !stripe_id_ok(&envelope.id) {
            return Err(EnvelopeError::BadId);
        }
        let t = &envelope.event_type;
        if t.is_empty() || t.len() > 128 || !t.chars().all(|c| c.is_ascii_graphic()) {
            return Err(EnvelopeError::BadType);
        }
        Ok(envelope)
    }
}

fn classify(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "missing or mistyped field",
        serde_json::error::Category::Eof => "truncated JSON",
    }
}

/// Stripe ids (`evt_…`, `pi_…`, `ch_…`) are ASCII letters, digits and underscores.
pub fn stripe_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The event id of a body that may not be a valid event (for logging a refusal), if it has a
/// plausible one.
pub fn event_id_hint(raw: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: String,
    }
    let id = serde_json::from_slice::<IdOnly>(raw).ok()?.id;
    stripe_id_ok(&id).then_some(id)
}

#[derive(Debug, Deserialize)]
struct CheckoutSession {
    id: String,
    payment_intent: Option<String>,
    payment_status: String,
    amount_total: Option<i64>,
    currency: Option<String>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Charge {
    id: String,
    payment_intent: Option<String>,
    amount_refunded: i64,
    currency: String,
}

#[derive(Debug, Deserialize)]
struct Dispute {
    id: String,
    charge: String,
    payment_intent: Option<String>,
    amount: i64,
    currency: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

/// What a recorded event means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// A fact about one payment intent.
    Payment {
        payment_id: PaymentId,
        command: PaymentCommand,
    },
    /// Nothing to record, and why (kept as the inbox row's outcome).
    Nothing(String),
}

/// Why a recorded event cannot be acted on: Stripe sent something we do not understand. Never
/// retried by itself (it would fail the same way); a person looks at the dead letter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} {object_id}: {problem}")]
pub struct FactError {
    pub event_type: String,
    pub object_id: String,
    pub problem: String,
}

pub fn fact(envelope: &Envelope) -> Result<Fact, FactError> {
    let object = &envelope.data.object;
    let fail = |problem: String| FactError {
        event_type: envelope.event_type.clone(),
        object_id: object
            .get("id")
            .and_then(|v| v.as_str())
            .filter(|id| stripe_id_ok(id))
            .unwrap_or("?")
            .to_owned(),
        problem,
    };
    let decode = |what: &str| format!("the {what} object does not have Stripe's shape");
    match envelope.event_type.as_str() {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => {
            let session: CheckoutSession = serde_json::from_value(object.clone())
                .map_err(|e| fail(format!("{}: {}", decode("checkout.session"), e)))?;
            checkout_fact(&envelope.event_type, session).map_err(fail)
        }
        "charge.refunded" => {
            let charge: Charge = serde_json::from_value(object.clone())
                .map_err(|e| fail(format!("{}: {}", decode("charge"), e)))?;
            refund_fact(charge).map_err(fail)
        }
        "charge.dispute.created" | "charge.dispute.closed" => {
            let dispute: Dispute = serde_json::from_value(object.clone())
                .map_err(|e| fail(format!("{}: {}", decode("dispute"), e)))?;
            dispute_fact(dispute).map_err(fail)
        }
        other => Ok(Fact::Nothing(format!("event type {other} is not handled"))),
    }
}

fn checkout_fact(event_type: &str, s: CheckoutSession) -> Result<Fact, String> {
    let session = CheckoutSessionId::parse(&s.id).map_err(|e| e.to_string())?;
    let Some(pi) = s.payment_intent.as_deref() else {
        return Ok(Fact::Nothing(format!(
            "checkout session {session} has no payment intent"
        )));
    };
    let payment_id = PaymentId::parse(pi).map_err(|e| e.to_string())?;
    let command = match event_type {
        "checkout.session.expired" => PaymentCommand::RecordCheckoutFailed {
            checkout_session_id: session,
            reason: FailureReason::Expired,
        },
        "checkout.session.async_payment_failed" => PaymentCommand::RecordCheckoutFailed {
            checkout_session_id: session,
            reason: FailureReason::AsyncPaymentFailed,
        },
        _ => {
            let terms = terms(&s)?;
            match s.payment_status.as_str() {
                "paid" => {
                    let amount = s.amount_total.ok_or("amount_total is missing")?;
                    let currency = s.currency.as_deref().ok_or("currency is missing")?;
                    PaymentCommand::RecordCheckoutPaid {
                        checkout_session_id: session,
                        terms,
                        paid: money(amount, currency)?,
                    }
                }
                "unpaid" => PaymentCommand::RecordCheckoutPending {
                    checkout_session_id: session,
                    account_id: terms.account_id,
                },
                "no_payment_required" => {
                    return Ok(Fact::Nothing(format!(
                        "checkout session {session}: no payment required, nothing to credit"
                    )))
                }
                other => return Err(format!("unknown payment_status `{}`", short(other))),
            }
        }
    };
    Ok(Fact::Payment { payment_id, command })
}

/// The terms in the session's metadata; `client_reference_id`, when set, must name the same
/// account.
fn terms(s: &CheckoutSession) -> Result<CheckoutTerms, String> {
    let get = |key: &str| {
        s.metadata
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("metadata.{key} is missing"))
    };
    let account_id = AccountId::parse(get("account_id")?).map_err(|e| e.to_string())?;
    if let Some(reference) = s.client_reference_id.as_deref() {
        if AccountId::parse(reference).ok() != Some(account_id) {
            return Err("client_reference_id does not name the account in metadata.account_id".to_owned());
        }
    }
    let number = |key: &str| -> Result<u32, String> {
        get(key)?
            .parse::<u32>()
            .map_err(|_| format!("metadata.{key} is not a whole number"))
    };
    Ok(CheckoutTerms {
        account_id,
        tier: get("tier")?.to_owned(),
        terms_version: number("terms_version")?,
        bonus_bps: number("bonus_bps")?,
    })
}

fn refund_fact(c: Charge) -> Result<Fact, String> {
    let charge_id = ChargeId::parse(&c.id).map_err(|e| e.to_string())?;
    let Some(pi) = c.payment_intent.as_deref() else {
        return Ok(Fact::Nothing(format!(
            "charge {charge_id} has no payment intent: not one of ours"
        )));
    };
    Ok(Fact::Payment {
        payment_id: PaymentId::parse(pi).map_err(|e| e.to_string())?,
        command: PaymentCommand::RecordRefund {
            charge_id,
            refunded_total: money(c.amount_refunded, &c.currency)?,
        },
    })
}

fn dispute_fact(d: Dispute) -> Result<Fact, String> {
    let dispute_id = DisputeId::parse(&d.id).map_err(|e| e.to_string())?;
    let Some(pi) = d.payment_intent.as_deref() else {
        return Ok(Fact::Nothing(format!(
            "dispute {dispute_id} has no payment intent: not one of ours"
        )));
    };
    let status = match d.status.as_str() {
        "won" | "warning_closed" => DisputeStatus::Won,
        "lost" => DisputeStatus::Lost,
        _ => DisputeStatus::Open,
    };
    Ok(Fact::Payment {
        payment_id: PaymentId::parse(pi).map_err(|e| e.to_string())?,
        command: PaymentCommand::RecordDispute {
            dispute_id,
            charge_id: ChargeId::parse(&d.charge).map_err(|e| e.to_string())?,
            amount: money(d.amount, &d.currency)?,
            reason: d.reason.unwrap_or_default().chars().take(64).collect(),
            status,
        },
    })
}

/// Stripe's minor-unit amount and lower-case currency as `Money`, exactly.
fn money(minor: i64, currency: &str) -> Result<Money, String> {
    let currency = Currency::parse(&currency.to_ascii_uppercase()).map_err(|e| e.to_string())?;
    if minor < 0 {
        return Err(format!("amount {minor} is negative"));
    }
    Money::from_minor(minor, currency).map_err(|e| e.to_string())
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(event_type: &str, object: serde_json::Value) -> Envelope {
        let raw = json!({"id": "evt_1", "type": event_type, "created": 1, "livemode": false,
                         "api_version": "2024-06-20", "data": {"object": object}});
        Envelope::parse(raw.to_string().as_bytes()).unwrap()
    }

    fn session(status: &str) -> serde_json::Value {
        let account = "0190a5b4-0000-7000-8000-000000000001";
        json!({"id": "cs_1", "object": "checkout.session", "payment_intent": "pi_1",
               "payment_status": status, "status": "complete", "amount_total": 2500, "currency": "usd",
               "client_reference_id": account,
               "metadata": {"account_id": account, "tier": "t25", "terms_version": "2", "bonus_bps": "500"}})
    }

    #[test]
    fn a_paid_session_is_credited_from_stripes_amount_in_micro_units() {
        let fact = fact(&envelope("checkout.session.completed", session("paid"))).unwrap();
        let Fact::Payment { payment_id, command } = fact else {
            panic!("{fact:?}")
        };
        assert_eq!(payment_id.as_str(), "pi_1");
        match command {
            PaymentCommand::RecordCheckoutPaid { paid, terms, .. } => {
                assert_eq!(paid.micros(), 25_000_000);
                assert_eq!((terms.bonus_bps, terms.terms_version), (500, 2));
            }
            other => panic!("{other:?}"),
        }
        let pending = fact_of("checkout.session.completed", session("unpaid"));
        assert!(matches!(pending, PaymentCommand::RecordCheckoutPending { .. }));
    }

    fn fact_of(t: &str, o: serde_json::Value) -> PaymentCommand {
        match fact(&envelope(t, o)).unwrap() {
            Fact::Payment { command, .. } => command,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refunds_and_disputes_name_their_payment_intent() {
        let charge = json!({"id": "ch_1", "payment_intent": "pi_1", "amount": 2500,
                            "amount_refunded": 1000, "refunded": false, "currency": "usd"});
        assert!(matches!(
            fact_of("charge.refunded", charge),
            PaymentCommand::RecordRefund { refunded_total, .. } if refunded_total.micros() == 10_000_000
        ));
        let dispute = json!({"id": "dp_1", "charge": "ch_1", "payment_intent": "pi_1", "amount": 2500,
                             "currency": "usd", "status": "lost", "reason": "fraudulent"});
        assert!(matches!(
            fact_of("charge.dispute.closed", dispute),
            PaymentCommand::RecordDispute {
                status: DisputeStatus::Lost,
                ..
            }
        ));
    }

    #[test]
    fn bad_objects_and_envelopes_are_refused_with_a_reason() {
        let mut s = session("paid");
        s["metadata"]["bonus_bps"] = json!("five");
        let err = fact(&envelope("checkout.session.completed", s)).unwrap_err();
        assert!(err.problem.contains("bonus_bps"), "{err}");
        let mut s = session("paid");
        s["client_reference_id"] = json!("0190a5b4-0000-7000-8000-000000000002");
        assert!(fact(&envelope("checkout.session.completed", s)).is_err());
        assert!(Envelope::parse(b"{not json").is_err());
        assert!(Envelope::parse(br#"{"id":"evt 1","type":"x","created":1,"data":{"object":{}}}"#).is_err());
        let unknown = fact(&envelope("customer.created", json!({"id": "cus_1"}))).unwrap();
        assert!(matches!(unknown, Fact::Nothing(_)));
    }
}
