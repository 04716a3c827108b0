//! The pure half of the fraud-signals projection: how one event changes a call's facts or an
//! account's, and the same fold over a whole slice of the log in memory (what-if mode uses it
//! to re-run the rules without writing anything).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use ringledger_domain::account::AccountEvent;
use ringledger_domain::call::CallEvent;
use ringledger_domain::fraud::{AccountFacts, CallFacts, Purchase};
use ringledger_domain::{AccountId, CallId};

use crate::event::RecordedEvent;
use crate::ProjectionError;

/// A `CallFlagged` as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagRow {
    pub call_id: CallId,
    pub account_id: AccountId,
    pub placed_at: DateTime<Utc>,
    pub rule: String,
    pub score: u16,
    pub evidence: String,
    pub flagged_at: DateTime<Utc>,
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Folds one Call event into the call's facts (`None` until `CallPlaced`).
pub fn fold_call(facts: &mut Option<CallFacts>, event: &CallEvent, at: DateTime<Utc>) {
    if let CallEvent::CallPlaced {
        call_id,
        account_id,
        country_iso,
        matched_prefix,
        tariff,
        placed_at,
        ..
    } = event
    {
        *facts = Some(CallFacts {
            call_id: *call_id,
            account_id: *account_id,
            placed_at: *placed_at,
            matched_prefix: matched_prefix.clone(),
            country_iso: country_iso.clone(),
            currency: tariff.rate_per_minute.currency().to_string(),
            rate_micros: tariff.rate_per_minute.micros(),
            answered: false,
            ended_at: None,
            billed_seconds: 0,
            cost_micros: 0,
        });
        return;
    }
    let Some(f) = facts.as_mut() else { return };
    match event {
        CallEvent::CallAnswered { .. } => f.answered = true,
        CallEvent::CallTicked {
            billed_seconds, cost, ..
        } => {
            f.answered = true;
            f.billed_seconds = count(*billed_seconds);
            f.cost_micros = cost.micros();
        }
        CallEvent::CallEnded {
            billed_seconds, cost, ..
        } => {
            f.answered = true;
            f.ended_at = Some(at);
            f.billed_seconds = count(*billed_seconds);
            f.cost_micros = cost.micros();
        }
        CallEvent::CallFailed { .. } => f.ended_at = Some(at),
        CallEvent::CallReRated { new_cost, .. } => f.cost_micros = new_cost.micros(),
        _ => {}
    }
}

/// The flag a `CallFlagged` records, given the call's facts.
pub fn flag_row(facts: &CallFacts, event: &CallEvent, at: DateTime<Utc>) -> Option<FlagRow> {
    match event {
        CallEvent::CallFlagged {
            rule,
            score,
            evidence,
        } => Some(FlagRow {
            call_id: facts.call_id,
            account_id: facts.account_id,
            placed_at: facts.placed_at,
            rule: rule.clone(),
            score: *score,
            evidence: evidence.clone(),
            flagged_at: at,
        }),
        _ => None,
    }
}

/// Folds one Account event into the account's facts.
pub fn fold_account(facts: &mut AccountFacts, event: &AccountEvent, at: DateTime<Utc>) {
    match event {
        AccountEvent::AccountOpened { .. } => facts.opened_at = Some(at),
        AccountEvent::CreditPurchased { paid, .. } => facts.purchases.push(Purchase {
            at,
            paid_micros: paid.micros(),
        }),
        _ => {}
    }
}

/// The signals of a slice of the log, in memory.
#[derive(Debug, Default)]
pub struct Signals {
    pub calls: HashMap<CallId, CallFacts>,
    pub accounts: HashMap<AccountId, AccountFacts>,
    pub flags: Vec<FlagRow>,
}

impl Signals {
    /// Folds one recorded event (Account or Call; others are ignored).
    pub fn apply(&mut self, recorded: &RecordedEvent) -> Result<(), ProjectionError> {
        match recorded.aggregate_type.as_str() {
            "Account" if matches!(recorded.event_type.as_str(), "AccountOpened" | "CreditPurchased") => {
                let id = AccountId(crate::account_uuid(recorded)?);
                let event: AccountEvent = recorded.decode()?;
                fold_account(self.accounts.entry(id).or_default(), &event, recorded.occurred_at);
            }
            "Call" => {
                let id = CallId(crate::stream_uuid(recorded, "call")?);
                let event: CallEvent = recorded.decode()?;
                let mut facts = self.calls.remove(&id);
                fold_call(&mut facts, &event, recorded.occurred_at);
                if let Some(f) = facts {
                    if let Some(flag) = flag_row(&f, &event, recorded.occurred_at) {
                        self.flags.push(flag);
                    }
                    self.calls.insert(id, f);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Each account's calls, oldest first.
    pub fn calls_by_account(&self) -> HashMap<AccountId, Vec<CallFacts>> {
        let mut by: HashMap<AccountId, Vec<CallFacts>> = HashMap::new();
        for c in self.calls.values() {
            by.entry(c.account_id).or_default().push(c.clone());
        }
        for calls in by.values_mut() {
            calls.sort_by_key(|c| (c.placed_at, c.call_id.0));
        }
        by
    }
}
