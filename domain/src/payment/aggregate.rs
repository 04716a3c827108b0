//! The Payment aggregate: decides which of Stripe's reports are new facts, folds them. Stripe
//! delivers at least once and in any order, so every decision is "is this news?": a repeat
//! or a stale cumulative amount decides no event at all.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, CheckoutSessionId, DisputeId};
use crate::money::{Currency, Money};
use crate::payment::commands::{CheckoutTerms, DisputeStatus, FailureReason, PaymentCommand, MAX_BONUS_BPS};
use crate::payment::error::PaymentError;
use crate::payment::events::PaymentEvent;

/// Facts (events) one payment intent may hold: a purchase, a few partial refunds, a dispute or
/// two. A stream past this is refused rather than grown without bound.
pub const MAX_FACTS: usize = 64;
/// Tier names and dispute reasons are short codes.
pub const MAX_CODE_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Succeeded {
    pub account_id: AccountId,
    pub checkout_session_id: CheckoutSessionId,
    pub paid: Money,
    pub bonus: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Payment {
    /// Events folded so far: the stream's sequence of the last one.
    pub(crate) version: u64,
    pub(crate) currency: Option<Currency>,
    pub(crate) succeeded: Option<Succeeded>,
    pub(crate) pending: bool,
    pub(crate) failed: Option<FailureReason>,
    pub(crate) refunded_total_micros: i64,
    /// Known disputes: `true` once closed.
    pub(crate) disputes: BTreeMap<DisputeId, bool>,
    /// The money facts with their stream sequence, for the process manager's plan.
    pub(crate) facts: Vec<(u64, PaymentEvent)>,
}

impl Payment {
    pub fn succeeded(&self) -> Option<&Succeeded> {
        self.succeeded.as_ref()
    }
    pub fn version(&self) -> u64 {
        self.version
    }
    pub fn is_pending(&self) -> bool {
        self.pending && self.succeeded.is_none() && self.failed.is_none()
    }
    pub fn failed(&self) -> Option<FailureReason> {
        self.failed
    }
    pub fn refunded_total_micros(&self) -> i64 {
        self.refunded_total_micros
    }
    pub fn facts(&self) -> &[(u64, PaymentEvent)] {
        &self.facts
    }

    pub fn decide(&self, command: &PaymentCommand) -> Result<Vec<PaymentEvent>, PaymentError> {
        let events = match command {
            PaymentCommand::RecordCheckoutPaid {
                checkout_session_id,
                terms,
                paid,
            } => self.paid(checkout_session_id, terms, *paid)?,
            PaymentCommand::RecordCheckoutPending {
                checkout_session_id,
                account_id,
            } => {
                if self.pending || self.succeeded.is_some() || self.failed.is_some() {
                    vec![]
                } else {
                    vec![PaymentEvent::PaymentPending {
                        account_id: *account_id,
                        checkout_session_id: checkout_session_id.clone(),
                    }]
                }
            }
            PaymentCommand::RecordCheckoutFailed {
                checkout_session_id,
                reason,
            } => {
                // Once paid, a late failure or expiry of the session changes nothing.
                if self.succeeded.is_some() || self.failed.is_some() {
                    vec![]
                } else {
                    vec![PaymentEvent::PaymentFailed {
                        checkout_session_id: checkout_session_id.clone(),
                        reason: *reason,
                    }]
                }
            }
            PaymentCommand::RecordRefund {
                charge_id,
                refunded_total,
            } => {
                self.currency_of(*refunded_total)?;
                if let Some(s) = &self.succeeded {
                    if refunded_total.micros() > s.paid.micros() {
                        return Err(PaymentError::RefundExceedsPayment {
                            paid: s.paid,
                            refunded_total: *refunded_total,
                        });
                    }
                }
                if refunded_total.micros() <= self.refunded_total_micros {
                    vec![] // cumulative: a repeat or an older report of a smaller total
                } else {
                    vec![PaymentEvent::PaymentRefunded {
                        charge_id: charge_id.clone(),
                        refunded_total: *refunded_total,
                    }]
                }
            }
            PaymentCommand::RecordDispute {
                dispute_id,
                charge_id,
                amount,
                reason,
                status,
            } => {
                self.currency_of(*amount)?;
                if !amount.is_positive() {
                    return Err(PaymentError::AmountMustBePositive(*amount));
                }
                let mut events = Vec::new();
                let closed = match self.disputes.get(dispute_id) {
                    None => {
                        events.push(PaymentEvent::DisputeOpened {
                            dispute_id: dispute_id.clone(),
                            charge_id: charge_id.clone(),
                            amount: *amount,
                            reason: code("reason", reason)?,
                        });
                        false
                    }
                    Some(closed) => *closed,
                };
                if !closed && *status != DisputeStatus::Open {
                    events.push(PaymentEvent::DisputeClosed {
                        dispute_id: dispute_id.clone(),
                        won: *status == DisputeStatus::Won,
                    });
                }
                events
            }
        };
        if self.facts.len() + events.len() > MAX_FACTS {
            return Err(PaymentError::TooManyFacts(MAX_FACTS));
        }
        Ok(events)
    }

    fn paid(
        &self,
        session: &CheckoutSessionId,
        terms: &CheckoutTerms,
        paid: Money,
    ) -> Result<Vec<PaymentEvent>, PaymentError> {
        self.currency_of(paid)?;
        if !paid.is_positive() {
            return Err(PaymentError::AmountMustBePositive(paid));
        }
        if terms.bonus_bps > MAX_BONUS_BPS {
            return Err(PaymentError::BonusTooLarge(terms.bonus_bps));
        }
        if let Some(s) = &self.succeeded {
            // `completed` and `async_payment_succeeded` both report the same payment.
            if &s.checkout_session_id != session {
                return Err(PaymentError::OtherSession {
                    first: s.checkout_session_id.clone(),
                    other: session.clone(),
                });
            }
            if s.paid != paid {
                return Err(PaymentError::AmountChanged {
                    recorded: s.paid,
                    reported: paid,
                });
            }
            return Ok(vec![]);
        }
        let refunded = self.refunded_total_micros;
        if refunded > paid.micros() {
            return Err(PaymentError::RefundExceedsPayment {
                paid,
                refunded_total: Money::from_micros(refunded, paid.currency()),
            });
        }
        // Rounded down to the micro-unit: the bonus never exceeds its stated share.
        let bonus = paid.mul_div_floor(i64::from(terms.bonus_bps), i64::from(MAX_BONUS_BPS))?;
        Ok(vec![PaymentEvent::PaymentSucceeded {
            account_id: terms.account_id,
            checkout_session_id: session.clone(),
            paid,
            bonus,
            bonus_bps: terms.bonus_bps,
            tier: code("tier", &terms.tier)?,
            terms_version: terms.terms_version,
        }])
    }

    /// Every amount of one payment is in one currency.
    fn currency_of(&self, amount: Money) -> Result<(), PaymentError> {
        match self.currency {
            Some(c) if c != amount.currency() => Err(PaymentError::WrongCurrency {
                expected: c.to_string(),
                got: amount.currency().to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn apply_event(&mut self, event: &PaymentEvent) {
        self.version += 1;
        match event {
            PaymentEvent::PaymentSucceeded {
                account_id,
                checkout_session_id,
                paid,
                bonus,
                ..
            } => {
                self.currency = Some(paid.currency());
                self.succeeded = Some(Succeeded {
                    account_id: *account_id,
                    checkout_session_id: checkout_session_id.clone(),
                    paid: *paid,
                    bonus: *bonus,
                });
            }
            PaymentEvent::PaymentPending { .. } => self.pending = true,
            PaymentEvent::PaymentFailed { reason, .. } => self.failed = Some(*reason),
            PaymentEvent::PaymentRefunded { refunded_total, .. } => {
                self.currency = Some(refunded_total.currency());
                self.refunded_total_micros = self.refunded_total_micros.max(refunded_total.micros());
            }
            PaymentEvent::DisputeOpened {
                dispute_id, amount, ..
            } => {
                self.currency = Some(amount.currency());
                self.disputes.insert(dispute_id.clone(), false);
            }
            PaymentEvent::DisputeClosed { dispute_id, .. } => {
                self.disputes.insert(dispute_id.clone(), true);
            }
        }
        if !matches!(
            event,
            PaymentEvent::PaymentPending { .. } | PaymentEvent::PaymentFailed { .. }
        ) {
            self.facts.push((self.version, event.clone()));
        }
    }

    /// Folds one event; the same as cqrs-es's `apply` without taking ownership.
    pub fn fold(&mut self, event: &PaymentEvent) {
        self.apply_event(event);
    }
}

fn code(field: &'static str, value: &str) -> Result<String, PaymentError> {
    let value = value.trim();
    if value.chars().count() > MAX_CODE_CHARS {
        return Err(PaymentError::TextTooLong {
            field,
            max: MAX_CODE_CHARS,
        });
    }
    Ok(value.to_owned())
}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PaymentCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PaymentError> {
        for event in self.decide(&command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PaymentEvent) {
        self.apply_event(&event);
    }
}
