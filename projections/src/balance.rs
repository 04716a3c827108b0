//! The balance read model's pure fold: available, reserved, receivable, disputed and lifetime
//! totals of one account, from the postings of its events alone.

use ringledger_domain::account::AccountEvent;
use ringledger_domain::LedgerAccount;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    pub available_micros: i64,
    pub reserved_micros: i64,
    pub receivable_micros: i64,
    pub disputed_micros: i64,
    /// Money paid in through Stripe, net of nothing (refunds are tracked separately).
    pub lifetime_purchased_micros: i64,
    /// What calls have been charged to the customer.
    pub lifetime_spent_micros: i64,
    /// Sequence of the last event folded.
    pub last_sequence: u64,
}

impl BalanceView {
    /// Folds one event (at `sequence` in its stream) into the view.
    pub fn apply(&mut self, sequence: u64, event: &AccountEvent) {
        if let Some(postings) = event.postings() {
            for line in postings.lines() {
                let m = line.amount.micros();
                match line.account {
                    LedgerAccount::Available => {
                        self.available_micros = self.available_micros.saturating_add(m)
                    }
                    LedgerAccount::Reserved => self.reserved_micros = self.reserved_micros.saturating_add(m),
                    LedgerAccount::Receivable => {
                        self.receivable_micros = self.receivable_micros.saturating_add(m)
                    }
                    LedgerAccount::Disputed => self.disputed_micros = self.disputed_micros.saturating_add(m),
                    _ => {}
                }
            }
        }
        match event {
            AccountEvent::CreditPurchased { paid, .. } => {
                self.lifetime_purchased_micros = self.lifetime_purchased_micros.saturating_add(paid.micros());
            }
            AccountEvent::ReservationSettled { charged, .. } => {
                self.lifetime_spent_micros = self.lifetime_spent_micros.saturating_add(charged.micros());
            }
            _ => {}
        }
        self.last_sequence = sequence;
    }
}
