//! The sweeper (docs/metering-protocol.md, "Sweeper"): calls silent too long are ended on
//! their own stream (`Sweep`: charged for the seconds last reported, the rest released by the
//! settlement), and reservations no live call holds are released once older than a grant's
//! validity. Candidates come from the read models (`active_calls`, `open_reservations`); the
//! decision is the Call's and the Account's, so a report that arrived meanwhile wins.

use chrono::{DateTime, Duration, Utc};
use ringledger_domain::account::{AccountCommand, ReleaseReason};
use ringledger_domain::call::{CallCommand, CallError};
use ringledger_domain::{AccountId, CallId, ReservationId};
use uuid::Uuid;

use super::{CallService, CallsError};
use crate::ledger::{CommandError, Envelope};

/// Calls and reservations looked at per sweep at most; the next sweep takes the rest.
pub const SWEEP_BATCH: i64 = 500;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub calls_swept: u32,
    pub reservations_released: u32,
}

impl CallService {
    /// Sweeps silent calls and releases orphaned reservations as of `now`.
    pub async fn sweep_once(&self, now: DateTime<Utc>) -> Result<SweepReport, CallsError> {
        let mut report = SweepReport::default();
        let validity = i64::from(self.config.policy.validity_seconds);
        let silent_since = now - Duration::seconds(2 * validity);
        let calls: Vec<Uuid> = sqlx::query_scalar(
            "SELECT call_id FROM active_calls WHERE last_activity_at < $1 ORDER BY last_activity_at LIMIT $2",
        )
        .bind(silent_since)
        .bind(SWEEP_BATCH)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| CallsError::Internal(e.to_string()))?;
        for id in calls {
            match self.drive(CallId(id), CallCommand::Sweep { now }).await {
                Ok(_) => report.calls_swept += 1,
                // Heard from meanwhile, ringing within its bound, or already over: not ours.
                Err(CallsError::Call(CallError::NotStale { .. } | CallError::CallOver(_))) => {}
                Err(e) => tracing::warn!(call_id = %id, error = %e, "sweeping a call failed"),
            }
        }
        report.reservations_released = self.release_orphans(now - Duration::seconds(validity)).await?;
        Ok(report)
    }

    /// Releases reservations older than `before` whose call is over or was never logged.
    async fn release_orphans(&self, before: DateTime<Utc>) -> Result<u32, CallsError> {
        let rows: Vec<(Uuid, Uuid, Option<String>)> = sqlx::query_as(
            "SELECT r.reservation_id, r.account_id, c.state FROM open_reservations r
               LEFT JOIN call_log c ON c.call_id = r.call_id
              WHERE r.reserved_at < $1 AND (c.call_id IS NULL OR c.state IN ('ended', 'failed'))
              ORDER BY r.reserved_at LIMIT $2",
        )
        .bind(before)
        .bind(SWEEP_BATCH)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| CallsError::Internal(e.to_string()))?;
        let mut released = 0;
        for (reservation, account, state) in rows {
            let reason = match state {
                Some(_) => ReleaseReason::CallEnded,
                None => ReleaseReason::Unused,
            };
            let command = AccountCommand::ReleaseReservation {
                reservation_id: ReservationId(reservation),
                reason,
            };
            let key = format!("release:{reservation}");
            match self
                .accounts
                .execute(AccountId(account), Envelope::with_key(command, key))
                .await
            {
                Ok(outcome) if !outcome.events.is_empty() => released += 1,
                Ok(_) => {}
                // Settled or released since the read model looked: nothing to do.
                Err(CommandError::Rejected(e)) => {
                    tracing::debug!(reservation_id = %reservation, error = %e, "not released")
                }
                Err(e) => {
                    tracing::warn!(reservation_id = %reservation, error = %e, "releasing a reservation failed")
                }
            }
        }
        Ok(released)
    }
}
