//! The process manager's plan, as a pure function: the Account command each money fact of a
//! payment becomes, with its idempotency key, in the order the Account must see them. The
//! purchase comes first whatever Stripe delivered before it (a refund or dispute can arrive
//! first); the rest follow in the order they were recorded. The key names the fact's place in
//! the Payment stream, so running the whole plan again, after a crash or a repeat delivery,
//! appends nothing twice: the Account's idempotency keys answer the steps already done.

use crate::account::AccountCommand;
use crate::ids::{AccountId, PaymentId};
use crate::payment::aggregate::Payment;
use crate::payment::events::PaymentEvent;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStep {
    pub account_id: AccountId,
    /// `payment:{payment intent}:{sequence of the fact in the Payment stream}`.
    pub idempotency_key: String,
    pub command: AccountCommand,
}

/// Every Account step of `payment` so far (none before it succeeded).
pub fn account_steps(payment_id: &PaymentId, payment: &Payment) -> Vec<AccountStep> {
    let Some(succeeded) = payment.succeeded() else {
        return Vec::new();
    };
    let mut facts: Vec<&(u64, PaymentEvent)> = payment.facts().iter().collect();
    // Stable: the purchase first, everything else keeps its recorded order.
    facts.sort_by_key(|(_, e)| !matches!(e, PaymentEvent::PaymentSucceeded { .. }));
    facts
        .into_iter()
        .filter_map(|(sequence, event)| {
            let command = command_for(payment_id, event)?;
            Some(AccountStep {
                account_id: succeeded.account_id,
                idempotency_key: format!("payment:{payment_id}:{sequence}"),
                command,
            })
        })
        .collect()
}

fn command_for(payment_id: &PaymentId, event: &PaymentEvent) -> Option<AccountCommand> {
    let payment_id = payment_id.clone();
    Some(match event {
        PaymentEvent::PaymentSucceeded {
            checkout_session_id,
            paid,
            bonus,
            ..
        } => AccountCommand::PurchaseCredit {
            payment_id,
            paid: *paid,
            bonus: *bonus,
            checkout_session_id: Some(checkout_session_id.clone()),
        },
        PaymentEvent::PaymentRefunded {
            charge_id,
            refunded_total,
        } => AccountCommand::RecordRefund {
            payment_id,
            refunded_total: *refunded_total,
            charge_id: Some(charge_id.clone()),
        },
        PaymentEvent::DisputeOpened {
            dispute_id, amount, ..
        } => AccountCommand::OpenDispute {
            dispute_id: dispute_id.clone(),
            payment_id,
            amount: *amount,
        },
        PaymentEvent::DisputeClosed { dispute_id, won } => {
            let dispute_id = dispute_id.clone();
            if *won {
                AccountCommand::WinDispute { dispute_id }
            } else {
                AccountCommand::LoseDispute { dispute_id }
            }
        }
        PaymentEvent::PaymentPending { .. } | PaymentEvent::PaymentFailed { .. } => return None,
    })
}
