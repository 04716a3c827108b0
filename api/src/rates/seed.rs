//! Development only: a fresh database gets a small sample rate deck (imported through the
//! normal job and activated), so a person running `scripts/dev` can ask for quotes at once.
//! Production never seeds anything.

use std::time::Duration;

use chrono::Utc;
use ringledger_domain::{ActorId, Currency};
use uuid::Uuid;

use super::{ImportRequest, RateError, RateService};

const SAMPLE: &[u8] = include_bytes!("../../data/sample-rate-deck.csv");

/// Imports and activates the sample deck when the log holds no deck at all; returns at once,
/// the import running on the `rates` queue and the activation in a task that waits for it.
pub async fn seed_development_deck(service: &RateService) -> Result<(), RateError> {
    let any: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = 'RateDeck')")
            .fetch_one(service.pool())
            .await?;
    if any {
        return Ok(());
    }
    let request = ImportRequest {
        file_name: "sample-rate-deck.csv".into(),
        format: None,
        currency: Currency::USD,
        effective_from: Utc::now(),
        // The system itself, not a person.
        actor: ActorId(Uuid::nil()),
    };
    let submitted = service.submit_import(SAMPLE.to_vec(), &request).await?;
    tracing::info!(deck = %submitted.deck_id, "development: importing the sample rate deck");
    let service = service.clone();
    tokio::spawn(async move {
        for _ in 0..600 {
            match service.import_status(submitted.id).await {
                Ok(s) if s.status == "imported" => {
                    match service.activate(s.deck_id, request.actor, false).await {
                        Ok(()) => tracing::info!(deck = %s.deck_id, "development: sample rate deck active"),
                        Err(e) => {
                            tracing::warn!(error = %e, "development: activating the sample deck failed")
                        }
                    }
                    return;
                }
                Ok(s) if s.is_finished() => {
                    tracing::warn!(status = %s.status, "development: the sample deck was not imported");
                    return;
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    });
    Ok(())
}
