//! The StripeWebhookJob's work and the process manager: one recorded event becomes at most one
//! Payment command (keyed by the Stripe event id), then the Payment's whole plan runs on the
//! Account, each step keyed by its fact's place in the Payment stream. Steps done before
//! (by an earlier delivery, or a run that died half-way) answer from the store's idempotency
//! table and append nothing, so a crash anywhere is repaired by running again.

use ringledger_domain::account::{AccountCommand, AccountError};
use ringledger_domain::payment::{account_steps, AccountStep, Payment, PaymentCommand, PaymentError};
use ringledger_domain::PaymentId;
use ringledger_projections::jobs::JobError;

use super::{inbox, receipt, PaymentService};
use crate::ledger::{CommandError, Envelope};
use crate::stripe::event::{fact, Envelope as StripeEnvelope, Fact};

/// What processing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// The fact was recorded (or found recorded) and the plan run: `new_steps` Account commands
    /// appended events this time.
    Applied {
        payment_id: PaymentId,
        steps: usize,
        new_steps: usize,
    },
    /// Nothing to record, and why.
    Nothing(String),
    /// Processed before (a job that ran again after finishing its work).
    AlreadyProcessed,
}

/// One Account step's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDone {
    Appended,
    /// The key was used before: the first outcome stands.
    Replayed,
}

fn retry<E: std::error::Error>(what: &str, e: CommandError<E>) -> JobError {
    match e {
        CommandError::Rejected(e) => JobError::Permanent(format!("{what} refused: {e}")),
        CommandError::BadKey => JobError::Permanent(format!("{what}: bad idempotency key")),
        other => JobError::Retry(format!("{what}: {other}")),
    }
}

impl PaymentService {
    /// Processes recorded event `event_id` (the job's whole run).
    pub async fn process_event(&self, event_id: &str) -> Result<Processed, JobError> {
        let row = inbox::load(&self.pool, event_id)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("event {event_id} is not in the inbox")))?;
        if row.status != "received" {
            return Ok(Processed::AlreadyProcessed);
        }
        let payload = row.payload.ok_or_else(|| {
            JobError::Permanent(format!(
                "event {event_id}: its payload was purged before it was processed"
            ))
        })?;
        let envelope = StripeEnvelope::parse(payload.as_bytes())
            .map_err(|e| JobError::Permanent(format!("event {event_id}: {e}")))?;
        let processed = match fact(&envelope).map_err(|e| JobError::Permanent(e.to_string()))? {
            Fact::Nothing(why) => {
                inbox::mark_processed(&self.pool, event_id, &why, None).await?;
                Processed::Nothing(why)
            }
            Fact::Payment { payment_id, command } => {
                let payment = self.record_fact(event_id, &payment_id, command).await?;
                let steps = account_steps(&payment_id, &payment);
                let mut new_steps = 0;
                for step in &steps {
                    if self.apply_step(&payment_id, step).await? == StepDone::Appended {
                        new_steps += 1;
                    }
                }
                let outcome = format!(
                    "{}: payment {payment_id}, {} account steps ({new_steps} new)",
                    envelope.event_type,
                    steps.len()
                );
                inbox::mark_processed(&self.pool, event_id, &outcome, Some(payment_id.as_str())).await?;
                Processed::Applied {
                    payment_id,
                    steps: steps.len(),
                    new_steps,
                }
            }
        };
        let label = match &processed {
            Processed::Applied { .. } => "applied",
            Processed::Nothing(_) => "nothing",
            Processed::AlreadyProcessed => "already",
        };
        metrics::counter!("ringledger_stripe_events_processed_total", "outcome" => label).increment(1);
        tracing::info!(event_id, event_type = %envelope.event_type, outcome = label, "stripe event processed");
        Ok(processed)
    }

    /// Records one Stripe fact on its Payment stream (idempotent by the Stripe event id) and
    /// returns the Payment as it stands after it.
    pub async fn record_fact(
        &self,
        event_id: &str,
        payment_id: &PaymentId,
        command: PaymentCommand,
    ) -> Result<Payment, JobError> {
        let key = format!("stripe:{event_id}");
        let outcome = self
            .payments
            .execute(payment_id.as_str(), Envelope::with_key(command, key))
            .await
            .map_err(|e: CommandError<PaymentError>| retry(&format!("payment {payment_id}"), e))?;
        match outcome.state {
            // A replayed key carries the state when the answer was read; fresh state otherwise.
            Some(state) if !outcome.replayed => Ok(state),
            _ => self
                .payments
                .load(payment_id.as_str())
                .await
                .map_err(|e| JobError::Retry(format!("loading payment {payment_id}: {e}"))),
        }
    }

    /// Runs one step of a Payment's plan on its Account; a purchase also enqueues its receipt.
    pub async fn apply_step(&self, payment_id: &PaymentId, step: &AccountStep) -> Result<StepDone, JobError> {
        let outcome = self
            .accounts
            .execute(
                step.account_id,
                Envelope::with_key(step.command.clone(), step.idempotency_key.clone()),
            )
            .await
            .map_err(|e: CommandError<AccountError>| {
                retry(
                    &format!("account step {} of payment {payment_id}", step.idempotency_key),
                    e,
                )
            })?;
        if let AccountCommand::PurchaseCredit {
            paid,
            bonus,
            checkout_session_id,
            ..
        } = &step.command
        {
            // Enqueued on every run (its own key dedups it): a crash between the credit and
            // this line must not lose the receipt.
            receipt::enqueue(
                &self.pool,
                step.account_id,
                payment_id,
                checkout_session_id.as_ref(),
                *paid,
                *bonus,
            )
            .await
            .map_err(|e| JobError::Retry(format!("receipt for payment {payment_id}: {e}")))?;
        }
        Ok(if outcome.replayed {
            StepDone::Replayed
        } else {
            StepDone::Appended
        })
    }
}
