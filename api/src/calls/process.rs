//! One step of a call's process: run a command on the Call, then do what its decision asks on
//! the Account — reserve a grant (`ReserveCredit` keyed by call and grant number, capped by
//! what the account holds, then `RecordGrant` or `RefuseGrant`), or settle the call
//! (`SettleCall` keyed by call). Steps are keyed, so repeating any of them changes nothing.

use chrono::{DateTime, Utc};
use ringledger_domain::account::{AccountCommand, AccountError, AccountEvent, CallCreditLimits};
use ringledger_domain::call::{Call, CallCommand, CallError, FinalUnitReason, Reply};
use ringledger_domain::{AccountId, CallId, Money, ReservationId};
use uuid::Uuid;

use super::{CallService, CallsError};
use crate::ledger::{CommandError, Envelope};

/// Namespace of reservation ids derived from (call, grant number).
const NS_RESERVATION: Uuid = Uuid::from_u128(0x6f1c_2a8e_52d4_4b0e_9a3f_0c1d_7e55_a001);

/// What the Account said to a reservation.
enum Reserved {
    Yes {
        reservation_id: ReservationId,
        amount: Money,
    },
    No(FinalUnitReason),
}

impl CallService {
    /// Runs `command` on the call, then the Account steps its decision asks for.
    pub(super) async fn drive(
        &self,
        call_id: CallId,
        command: CallCommand,
    ) -> Result<(Call, Reply), CallsError> {
        let resume = matches!(command, CallCommand::PlaceCall(_));
        let call = match self.call_command(call_id, command).await {
            Ok(call) => call,
            // A start whose first grant was never recorded (a crash, or a retry racing the
            // first attempt): resume from the stored call; the keyed steps make it safe.
            Err(CallsError::Call(CallError::GrantPending)) if resume => self
                .calls
                .load(&call_id.to_string())
                .await
                .map_err(|e| CallsError::Internal(e.to_string()))?,
            Err(e) => return Err(e),
        };
        let decision = call.decision_after(vec![])?;
        let call = match decision.grant {
            Some(grant) => self.fund(call_id, &call, grant.amount, Utc::now()).await?,
            None => call,
        };
        let decision = call.decision_after(vec![])?;
        if let (Some(cost), Some(terms)) = (decision.settle, call.terms()) {
            self.settle(terms.account_id, call_id, cost).await?;
        }
        self.follow_up(call_id, &call).await?;
        Ok((call, decision.reply))
    }

    /// Runs one command on the Call stream and returns the state after it.
    async fn call_command(&self, call_id: CallId, command: CallCommand) -> Result<Call, CallsError> {
        match self
            .calls
            .execute(&call_id.to_string(), Envelope::new(command))
            .await
        {
            Ok(outcome) => outcome
                .state
                .ok_or_else(|| CallsError::Internal("the call ledger returned no state".into())),
            Err(CommandError::Rejected(e)) => Err(CallsError::Call(e)),
            Err(CommandError::Busy | CommandError::Conflict(_)) => Err(CallsError::Busy),
            Err(e) => Err(CallsError::Internal(e.to_string())),
        }
    }

    /// Reserves a grant of up to `amount` on the account, then records it on the call (or
    /// records that the account refused it).
    async fn fund(
        &self,
        call_id: CallId,
        call: &Call,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Call, CallsError> {
        let terms = call.terms().ok_or(CallsError::Call(CallError::UnknownCall))?;
        let number = call.grants().saturating_add(1);
        let command = match self
            .reserve(terms.account_id, call_id, number, amount, now)
            .await?
        {
            Reserved::Yes {
                reservation_id,
                amount,
            } => CallCommand::RecordGrant {
                reservation_id,
                amount,
                now,
            },
            Reserved::No(reason) => CallCommand::RefuseGrant { reason, now },
        };
        self.call_command(call_id, command).await
    }

    /// `ReserveCallCredit` keyed by (call, grant number): all of `amount` if the account holds
    /// it and the daily spend cap leaves it, else what both allow, else a refusal with the
    /// reason. The account decides the call limits on its own stream, so calls starting at
    /// once cannot both pass a limit.
    async fn reserve(
        &self,
        account: AccountId,
        call_id: CallId,
        number: u32,
        amount: Money,
        now: DateTime<Utc>,
    ) -> Result<Reserved, CallsError> {
        let reservation_id = ReservationId(Uuid::new_v5(
            &NS_RESERVATION,
            format!("{call_id}/{number}").as_bytes(),
        ));
        let key = format!("reserve:{call_id}:{number}");
        let limits = self.config.limits;
        let credit_limits = CallCreditLimits {
            max_live_calls: limits.max_concurrent_calls,
            daily_spend_cap: Money::from_micros(limits.daily_spend_cap_micros, amount.currency()),
            day: now.date_naive(),
        };
        let mut amount = amount;
        // Each retry asks for less (what the account or the cap has left), so three suffice.
        for _ in 0..3 {
            let command = AccountCommand::ReserveCallCredit {
                reservation_id,
                call_id,
                amount,
                limits: credit_limits,
            };
            match self
                .accounts
                .execute(account, Envelope::with_key(command, key.clone()))
                .await
            {
                Ok(outcome) => {
                    // A replayed key answers with the amount first reserved.
                    let reserved = outcome.events.iter().find_map(|c| match &c.event {
                        AccountEvent::CreditReserved { amount, .. } => Some(*amount),
                        _ => None,
                    });
                    return Ok(match reserved {
                        Some(amount) => Reserved::Yes {
                            reservation_id,
                            amount,
                        },
                        None => Reserved::No(FinalUnitReason::CreditExhausted),
                    });
                }
                Err(CommandError::Rejected(AccountError::InsufficientFunds { available, .. }))
                    if available.is_positive() && available < amount =>
                {
                    amount = available;
                }
                Err(CommandError::Rejected(AccountError::DailySpendCap { left, .. }))
                    if left.is_positive() && left < amount =>
                {
                    amount = left;
                }
                Err(CommandError::Rejected(e)) => return Ok(Reserved::No(refusal(&e))),
                Err(CommandError::Busy | CommandError::Conflict(_)) => return Err(CallsError::Busy),
                Err(e) => return Err(CallsError::Internal(e.to_string())),
            }
        }
        Ok(Reserved::No(FinalUnitReason::CreditExhausted))
    }

    /// `SettleCall` once per call: charges `min(cost, reserved)`, returns the rest.
    async fn settle(&self, account: AccountId, call_id: CallId, cost: Money) -> Result<(), CallsError> {
        let command = AccountCommand::SettleCall { call_id, cost };
        match self
            .accounts
            .execute(account, Envelope::with_key(command, format!("settle:{call_id}")))
            .await
        {
            Ok(_) => Ok(()),
            Err(CommandError::Rejected(e)) => {
                // Settled by another path already (a later settle finds nothing reserved).
                tracing::warn!(call_id = %call_id, error = %e, "settlement refused by the account");
                Ok(())
            }
            Err(CommandError::Busy | CommandError::Conflict(_)) => Err(CallsError::Busy),
            Err(e) => Err(CallsError::Internal(e.to_string())),
        }
    }
}

fn refusal(e: &AccountError) -> FinalUnitReason {
    match e {
        AccountError::Frozen(_) => FinalUnitReason::AccountFrozen,
        AccountError::Banned => FinalUnitReason::AccountBanned,
        AccountError::ConcurrentCalls { .. } => FinalUnitReason::ConcurrentCalls,
        AccountError::DailySpendCap { .. } => FinalUnitReason::DailySpendCap,
        _ => FinalUnitReason::CreditExhausted,
    }
}
