//! The caller's facts a `start` is decided on, read fresh from the Account stream (not a
//! projection, which may lag): standing, currency, available, live calls (the distinct calls
//! holding reservations) and today's spend (what calls committed today). These give a clear
//! early denial; the final word is the Account's own, when it reserves the first grant under
//! the same limits (`ReserveCallCredit`), so two starts at once cannot both pass a limit.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use ringledger_domain::account::Account;
use ringledger_domain::call::{CallerFacts, Standing};
use ringledger_domain::{AccountId, CallId};

use super::CallsError;
use crate::ledger::AccountService;
use crate::store::PostgresStore;

pub(super) async fn gather(
    accounts: &AccountService<PostgresStore>,
    account_id: AccountId,
    call_id: CallId,
    now: DateTime<Utc>,
) -> Result<CallerFacts, CallsError> {
    let account: Account = accounts
        .ledger()
        .load(&account_id.to_string())
        .await
        .map_err(|e| CallsError::Internal(e.to_string()))?;
    let standing = if account.id().is_none() {
        Standing::NotOpen
    } else if account.is_banned() {
        Standing::Banned
    } else if !account.frozen_reasons().is_empty() {
        Standing::Frozen(account.frozen_reasons().iter().copied().collect())
    } else {
        Standing::Open
    };
    let currency = account.currency().unwrap_or(ringledger_domain::Currency::USD);
    let live: BTreeSet<CallId> = account
        .open_reservations()
        .values()
        .map(|r| r.call_id)
        .filter(|c| *c != call_id)
        .collect();
    Ok(CallerFacts {
        standing,
        currency,
        available: account.money(account.balances().available),
        live_calls: u32::try_from(live.len()).unwrap_or(u32::MAX),
        spent_today: account.spent_on(now.date_naive()),
        // Quotes are issued only for numbers the block list lets through.
        blocked: None,
    })
}
