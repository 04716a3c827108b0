//! Double-entry postings: (ledger account, signed amount) pairs that always sum to zero.
//!
//! A `Postings` value cannot be built, or deserialised, unless its amounts sum to zero in one
//! currency. A balance is the sum of postings and nothing else.
//!
//! Signs: a posting is a flow of value, the source negative and the destination positive. So a
//! customer's `available`, `reserved` and `disputed` hold the customer's money (never below
//! zero), `receivable` is at or below zero (its magnitude is what the customer owes), and the
//! house's accounts carry the other side (`stripe_clearing` goes negative as money comes in,
//! `revenue_calls` grows positive as calls are charged).

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};

/// The ledger accounts of ARCHITECTURE.md. Customer accounts belong to the Account stream the
/// posting sits on; house accounts are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerAccount {
    Available,
    Reserved,
    Receivable,
    Disputed,
    StripeClearing,
    RevenueCalls,
    Promotions,
    Adjustments,
    Overrun,
}

impl LedgerAccount {
    pub const CUSTOMER: [LedgerAccount; 4] = [
        LedgerAccount::Available,
        LedgerAccount::Reserved,
        LedgerAccount::Receivable,
        LedgerAccount::Disputed,
    ];

    pub fn is_customer(self) -> bool {
        Self::CUSTOMER.contains(&self)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerAccount::Available => "available",
            LedgerAccount::Reserved => "reserved",
            LedgerAccount::Receivable => "receivable",
            LedgerAccount::Disputed => "disputed",
            LedgerAccount::StripeClearing => "stripe_clearing",
            LedgerAccount::RevenueCalls => "revenue_calls",
            LedgerAccount::Promotions => "promotions",
            LedgerAccount::Adjustments => "adjustments",
            LedgerAccount::Overrun => "overrun",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: LedgerAccount,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostingsError {
    #[error("postings must move some money; an empty set is not a money event")]
    Empty,
    #[error("postings sum to {0}, not zero")]
    Unbalanced(Money),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// A balanced, non-empty set of postings in one currency. Zero-amount lines are dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Posting>", into = "Vec<Posting>")]
pub struct Postings(Vec<Posting>);

impl Postings {
    pub fn new(lines: Vec<Posting>) -> Result<Postings, PostingsError> {
        let lines: Vec<Posting> = lines.into_iter().filter(|p| !p.amount.is_zero()).collect();
        let first = lines.first().ok_or(PostingsError::Empty)?;
        let mut sum = Money::zero(first.amount.currency());
        for line in &lines {
            sum = sum.checked_add(line.amount)?;
        }
        if !sum.is_zero() {
            return Err(PostingsError::Unbalanced(sum));
        }
        Ok(Postings(lines))
    }

    pub fn lines(&self) -> &[Posting] {
        &self.0
    }

    pub fn currency(&self) -> Currency {
        // Non-empty by construction.
        self.0
            .first()
            .map(|p| p.amount.currency())
            .unwrap_or(Currency::USD)
    }

    /// The net movement on one ledger account (zero if it is not touched).
    pub fn net(&self, account: LedgerAccount) -> Money {
        let mut sum = Money::zero(self.currency());
        for line in self.0.iter().filter(|p| p.account == account) {
            // Lines share a currency and were summed without overflow at construction, and a
            // subset of them cannot overflow where the whole did not in the same direction.
            sum = sum.checked_add(line.amount).unwrap_or(sum);
        }
        sum
    }
}

impl TryFrom<Vec<Posting>> for Postings {
    type Error = PostingsError;
    fn try_from(lines: Vec<Posting>) -> Result<Self, Self::Error> {
        Postings::new(lines)
    }
}

impl From<Postings> for Vec<Posting> {
    fn from(p: Postings) -> Vec<Posting> {
        p.0
    }
}

/// Collects flows (`from` -> `to`) and builds balanced postings.
#[derive(Debug, Default)]
pub struct PostingsBuilder {
    lines: Vec<Posting>,
}

impl PostingsBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves `amount` from one ledger account to another (skipped when zero).
    pub fn flow(
        &mut self,
        from: LedgerAccount,
        to: LedgerAccount,
        amount: Money,
    ) -> Result<&mut Self, MoneyError> {
        if !amount.is_zero() {
            self.lines.push(Posting {
                account: from,
                amount: amount.checked_neg()?,
            });
            self.lines.push(Posting { account: to, amount });
        }
        Ok(self)
    }

    pub fn build(self) -> Result<Postings, PostingsError> {
        let mut merged: Vec<Posting> = Vec::with_capacity(self.lines.len());
        for line in self.lines {
            match merged.iter_mut().find(|m| m.account == line.account) {
                Some(m) => m.amount = m.amount.checked_add(line.amount)?,
                None => merged.push(line),
            }
        }
        Postings::new(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(m: i64) -> Money {
        Money::from_micros(m, Currency::USD)
    }

    #[test]
    fn unbalanced_postings_cannot_be_built_or_deserialised() {
        let lines = vec![
            Posting {
                account: LedgerAccount::Available,
                amount: usd(10),
            },
            Posting {
                account: LedgerAccount::StripeClearing,
                amount: usd(-9),
            },
        ];
        assert_eq!(Postings::new(lines), Err(PostingsError::Unbalanced(usd(1))));
        assert_eq!(Postings::new(vec![]), Err(PostingsError::Empty));
        let json = r#"[{"account":"available","amount":{"amount":"1","currency":"USD"}}]"#;
        assert!(serde_json::from_str::<Postings>(json).is_err());
    }

    #[test]
    fn builder_merges_flows_per_account() {
        let mut b = PostingsBuilder::new();
        b.flow(LedgerAccount::Reserved, LedgerAccount::RevenueCalls, usd(3))
            .unwrap();
        b.flow(LedgerAccount::Reserved, LedgerAccount::Available, usd(7))
            .unwrap();
        let p = b.build().unwrap();
        assert_eq!(p.net(LedgerAccount::Reserved), usd(-10));
        assert_eq!(p.lines().len(), 3);
        let back: Postings = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
}
