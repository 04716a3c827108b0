//! Correcting a rate: `RatesCorrected` on the corrections stream, with the old rates read from
//! the rate book, then the re-rating of the calls it covers queued as a durable job. The rate
//! book picks the correction up from its read model (`NOTIFY ringledger_rates`), so quotes in
//! the range use the corrected price at once.

use chrono::{DateTime, Utc};
use ringledger_domain::rates::correction::{
    CorrectRates, CorrectionError, CorrectionEvent, RatePair, RatesCorrected, CORRECTIONS_STREAM,
};
use ringledger_domain::{ActorId, Money};
use ringledger_projections::jobs::JobQueue;

use super::{RateError, RateService};
use crate::ledger::{CommandError, Envelope};

/// What an admin asks for. Without `selling_per_minute` the pricing rules set it from the new cost.
#[derive(Debug, Clone)]
pub struct CorrectionRequest {
    /// A destination prefix of the active deck (digits; a leading `+` is ignored).
    pub prefix: String,
    pub cost_per_minute: Money,
    pub selling_per_minute: Option<Money>,
    pub effective_from: DateTime<Utc>,
    pub effective_to: Option<DateTime<Utc>>,
    pub reason: String,
    pub actor: ActorId,
    /// A retried request with the same key records the correction once.
    pub idempotency_key: Option<String>,
}

impl RateService {
    /// Records the correction and queues its re-rating; returns the correction as recorded.
    pub async fn correct(&self, request: &CorrectionRequest) -> Result<RatesCorrected, RateError> {
        self.book().refresh(self.pool()).await?;
        let book = self.book().get();
        let deck_id = book.deck_id.ok_or(RateError::NoActiveDeck)?;
        let prefix = request.prefix.trim().trim_start_matches('+');
        let origin = self.config().origination_number.as_deref();
        let rated = book
            .rate_at(prefix, origin, request.effective_from)?
            .filter(|r| r.destination.prefix == prefix)
            .ok_or_else(|| {
                RateError::Invalid(format!(
                    "`{prefix}` is not a destination prefix of the active deck {deck_id}; correct one of the \
                     deck's own prefixes (see `ringledger-replay rates list --deck {deck_id}`)"
                ))
            })?;
        let currency = rated.price.cost_per_minute.currency();
        let selling = match request.selling_per_minute {
            Some(s) => s,
            None => {
                book.pricing
                    .sell(&rated.destination.iso, prefix, request.cost_per_minute)
                    .map_err(|e| RateError::Invalid(format!("pricing the corrected cost: {e}")))?
                    .selling
                    .rate_per_minute
            }
        };
        for m in [request.cost_per_minute, selling] {
            if m.currency() != currency {
                return Err(RateError::Invalid(format!(
                    "the active deck is in {currency}; give the corrected rates in {currency}"
                )));
            }
        }
        let command = CorrectRates {
            prefix: prefix.to_owned(),
            deck_id: Some(deck_id),
            old: RatePair {
                cost_per_minute: rated.price.cost_per_minute,
                selling_per_minute: rated.price.selling.rate_per_minute,
            },
            new: RatePair {
                cost_per_minute: request.cost_per_minute,
                selling_per_minute: selling,
            },
            effective_from: request.effective_from,
            effective_to: request.effective_to,
            reason: request.reason.clone(),
            actor: request.actor,
        };
        let envelope = match &request.idempotency_key {
            Some(key) => Envelope::with_key(command, key.clone()),
            None => Envelope::new(command),
        };
        let outcome = self
            .corrections
            .execute(CORRECTIONS_STREAM, envelope)
            .await
            .map_err(RateError::command::<CorrectionError>)?;
        let recorded = outcome
            .events
            .into_iter()
            .map(|c| match c.event {
                CorrectionEvent::RatesCorrected(r) => r,
            })
            .next()
            .ok_or_else(|| RateError::Store("the correction recorded no event".into()))?;
        tracing::info!(correction = %recorded.id(), prefix = %recorded.prefix, actor = %recorded.actor,
            "rates corrected");
        metrics::counter!("ringledger_rate_corrections_total").increment(1);
        crate::rerate::jobs::enqueue(&JobQueue::new(self.pool().clone()), recorded.number)
            .await
            .map_err(|e| {
                RateError::Store(format!(
                    "{} was recorded but its re-rating was not queued ({e}); run `ringledger-replay rates rerate {}`",
                    recorded.id(),
                    recorded.id()
                ))
            })?;
        Ok(recorded)
    }
}

impl From<CommandError<CorrectionError>> for RateError {
    fn from(e: CommandError<CorrectionError>) -> Self {
        RateError::command(e)
    }
}
