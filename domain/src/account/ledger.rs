//! A draft of one event's postings, tracking the customer's balances as flows are added, so
//! the posting rules read as sentences: money arriving pays `receivable` first; money leaving
//! comes from `available` first and any shortfall becomes `receivable`.

use crate::account::aggregate::CustomerBalances;
use crate::account::error::AccountError;
use crate::money::{Currency, Money};
use crate::postings::{LedgerAccount, Postings, PostingsBuilder};

pub(crate) struct Draft {
    currency: Currency,
    balances: CustomerBalances,
    builder: PostingsBuilder,
}

impl Draft {
    pub(crate) fn new(currency: Currency, balances: CustomerBalances) -> Draft {
        Draft {
            currency,
            balances,
            builder: PostingsBuilder::new(),
        }
    }

    fn money(&self, micros: i64) -> Money {
        Money::from_micros(micros, self.currency)
    }

    /// Moves `amount` between two ledger accounts.
    pub(crate) fn flow(
        &mut self,
        from: LedgerAccount,
        to: LedgerAccount,
        amount: Money,
    ) -> Result<(), AccountError> {
        self.builder.flow(from, to, amount).map_err(AccountError::money)?;
        let micros = amount.micros();
        // A balance must stay negatable (never i64::MIN), like every Money.
        let in_range = |v: Option<i64>| v.filter(|v| *v != i64::MIN).ok_or(AccountError::Overflow);
        if let Some(slot) = self.balances.slot(from) {
            *slot = in_range(slot.checked_sub(micros))?;
        }
        if let Some(slot) = self.balances.slot(to) {
            *slot = in_range(slot.checked_add(micros))?;
        }
        Ok(())
    }

    /// Money arriving for the customer from `from`: it pays what is owed first, the rest
    /// becomes available.
    pub(crate) fn credit(&mut self, from: LedgerAccount, amount: Money) -> Result<(), AccountError> {
        let owed = self.money(
            self.balances
                .receivable
                .checked_neg()
                .ok_or(AccountError::Overflow)?
                .max(0),
        );
        let to_receivable = amount.min(owed).map_err(AccountError::money)?;
        let rest = amount.checked_sub(to_receivable).map_err(AccountError::money)?;
        self.flow(from, LedgerAccount::Receivable, to_receivable)?;
        self.flow(from, LedgerAccount::Available, rest)
    }

    /// Money leaving the customer towards `to`: from `available` as far as it goes, the
    /// shortfall owed (`receivable`).
    pub(crate) fn debit(&mut self, to: LedgerAccount, amount: Money) -> Result<(), AccountError> {
        let available = self.money(self.balances.available.max(0));
        let from_available = amount.min(available).map_err(AccountError::money)?;
        let shortfall = amount.checked_sub(from_available).map_err(AccountError::money)?;
        self.flow(LedgerAccount::Available, to, from_available)?;
        self.flow(LedgerAccount::Receivable, to, shortfall)
    }

    /// The balanced postings and the customer's balances after them.
    pub(crate) fn finish(self) -> Result<(Postings, CustomerBalances), AccountError> {
        let postings = self.builder.build().map_err(AccountError::Postings)?;
        debug_assert!(self.balances.available >= 0 && self.balances.reserved >= 0);
        debug_assert!(self.balances.disputed >= 0 && self.balances.receivable <= 0);
        Ok((postings, self.balances))
    }
}
