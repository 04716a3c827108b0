//! The offer set: tiers and the custom-amount range, their validation, and the terms one
//! purchase is made under.

use serde::{Deserialize, Serialize};

use super::minor;
use crate::money::{Currency, Money, MoneyError};

/// The `tier` a custom amount is bought under (in the Stripe metadata).
pub const CUSTOM_TIER: &str = "custom";
pub const MAX_TIERS: usize = 12;
/// A bonus is at most the paid amount again.
pub const MAX_BONUS_BPS: u32 = 10_000;
const MAX_TIER_ID_CHARS: usize = 32;
/// No single top-up above this many whole units of any currency.
const MAX_PRICE_UNITS: i64 = 100_000;

/// One tier: pay `price`, get `price` plus `bonus_bps` basis points of it as bonus credit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tier {
    /// Stable and URL-safe (`10`, `starter`): it names the tier in Stripe metadata.
    pub id: String,
    pub price: Money,
    pub bonus_bps: u32,
}

/// The bounds of an amount the customer types in; no bonus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomRange {
    pub min: Money,
    pub max: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offers {
    pub currency: Currency,
    pub tiers: Vec<Tier>,
    pub custom: Option<CustomRange>,
}

/// What the customer picked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Tier(String),
    Custom(Money),
}

/// The terms one purchase is made under: what goes into the Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseTerms {
    /// A tier id, or [`CUSTOM_TIER`].
    pub tier: String,
    pub price: Money,
    pub bonus_bps: u32,
    /// The version of the offer set these terms come from.
    pub terms_version: u32,
}

impl PurchaseTerms {
    /// The bonus credit these terms promise on `price` (rounded down to the micro-unit).
    pub fn bonus(&self) -> Result<Money, MoneyError> {
        self.price.mul_div_floor(i64::from(self.bonus_bps), 10_000)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffersError {
    #[error("offer at least one tier or a custom amount")]
    Empty,
    #[error("at most {MAX_TIERS} tiers")]
    TooManyTiers,
    #[error("tier `{0}`: an id is 1-32 lowercase letters, digits or dashes, and not `custom`")]
    BadTierId(String),
    #[error("tier `{0}` is listed twice")]
    DuplicateTier(String),
    #[error("{what}: {amount} is not in {currency}, the currency of these offers")]
    WrongCurrency {
        what: String,
        amount: String,
        currency: Currency,
    },
    #[error("{what}: the amount must be above zero and at most {MAX_PRICE_UNITS} units")]
    OutOfRange { what: String },
    #[error("{what}: {amount} is not a whole number of the currency's smallest unit")]
    NotWholeMinorUnits { what: String, amount: String },
    #[error("tier `{0}`: the bonus is at most 100 % ({MAX_BONUS_BPS} basis points)")]
    BonusTooLarge(String),
    #[error("the custom amount's minimum is above its maximum")]
    CustomRangeInverted,
    #[error("nothing changed: these are the offers in force")]
    Unchanged,
    #[error("there is no tier `{0}`; pick one of the offers shown")]
    UnknownTier(String),
    #[error("custom amounts are not offered")]
    NoCustomAmount,
    #[error("the amount must be between {min} and {max}")]
    CustomOutOfRange { min: String, max: String },
    #[error("no offers are set yet")]
    NotSet,
}

impl Offers {
    /// The launch offers of issue 8 in `currency`: 5, 10, 25 (+5 %), 50 (+10 %), and a
    /// custom amount from 5 to 500.
    pub fn defaults(currency: Currency) -> Result<Offers, MoneyError> {
        let tier = |id: &str, units: i64, bonus_bps: u32| -> Result<Tier, MoneyError> {
            Ok(Tier {
                id: id.to_owned(),
                price: Money::from_units(units, currency)?,
                bonus_bps,
            })
        };
        Ok(Offers {
            currency,
            tiers: vec![
                tier("5", 5, 0)?,
                tier("10", 10, 0)?,
                tier("25", 25, 500)?,
                tier("50", 50, 1_000)?,
            ],
            custom: Some(CustomRange {
                min: Money::from_units(5, currency)?,
                max: Money::from_units(500, currency)?,
            }),
        })
    }

    pub fn validate(&self) -> Result<(), OffersError> {
        if self.tiers.is_empty() && self.custom.is_none() {
            return Err(OffersError::Empty);
        }
        if self.tiers.len() > MAX_TIERS {
            return Err(OffersError::TooManyTiers);
        }
        for (i, tier) in self.tiers.iter().enumerate() {
            let id = &tier.id;
            let id_ok = !id.is_empty()
                && id.len() <= MAX_TIER_ID_CHARS
                && id != CUSTOM_TIER
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(OffersError::BadTierId(id.chars().take(40).collect()));
            }
            if self.tiers[..i].iter().any(|t| &t.id == id) {
                return Err(OffersError::DuplicateTier(id.clone()));
            }
            self.check_amount(&format!("tier `{id}`"), tier.price)?;
            if tier.bonus_bps > MAX_BONUS_BPS {
                return Err(OffersError::BonusTooLarge(id.clone()));
            }
        }
        if let Some(range) = &self.custom {
            self.check_amount("custom minimum", range.min)?;
            self.check_amount("custom maximum", range.max)?;
            if range.min.micros() > range.max.micros() {
                return Err(OffersError::CustomRangeInverted);
            }
        }
        Ok(())
    }

    fn check_amount(&self, what: &str, amount: Money) -> Result<(), OffersError> {
        if amount.currency() != self.currency {
            return Err(OffersError::WrongCurrency {
                what: what.to_owned(),
                amount: minor::display(amount),
                currency: self.currency,
            });
        }
        let max = Money::from_units(MAX_PRICE_UNITS, self.currency).map_err(|_| OffersError::OutOfRange {
            what: what.to_owned(),
        })?;
        if !amount.is_positive() || amount.micros() > max.micros() {
            return Err(OffersError::OutOfRange {
                what: what.to_owned(),
            });
        }
        if minor::to_minor(amount).is_none() {
            return Err(OffersError::NotWholeMinorUnits {
                what: what.to_owned(),
                amount: amount.amount_string(),
            });
        }
        Ok(())
    }

    /// The terms of `choice` under these offers, which are version `terms_version`.
    pub fn terms(&self, choice: &Choice, terms_version: u32) -> Result<PurchaseTerms, OffersError> {
        match choice {
            Choice::Tier(id) => {
                let tier = self
                    .tiers
                    .iter()
                    .find(|t| &t.id == id)
                    .ok_or_else(|| OffersError::UnknownTier(id.chars().take(40).collect()))?;
                Ok(PurchaseTerms {
                    tier: tier.id.clone(),
                    price: tier.price,
                    bonus_bps: tier.bonus_bps,
                    terms_version,
                })
            }
            Choice::Custom(amount) => {
                let range = self.custom.as_ref().ok_or(OffersError::NoCustomAmount)?;
                let out_of_range = || OffersError::CustomOutOfRange {
                    min: minor::display(range.min),
                    max: minor::display(range.max),
                };
                if amount.currency() != self.currency
                    || amount.micros() < range.min.micros()
                    || amount.micros() > range.max.micros()
                {
                    return Err(out_of_range());
                }
                self.check_amount("custom amount", *amount)?;
                Ok(PurchaseTerms {
                    tier: CUSTOM_TIER.to_owned(),
                    price: *amount,
                    bonus_bps: 0,
                    terms_version,
                })
            }
        }
    }
}
