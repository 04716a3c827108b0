//! Selling prices: the deck holds our cost; the admin's pricing rules turn it into the rate a
//! caller pays — percent markup, a minimum margin per minute, per-country and per-prefix
//! overrides (a fixed rate, or their own markup and margin), a rounding step for the selling
//! rate, and the billing plan per country. Setting a price is not rounding a charge: charges
//! are rounded only in `rating`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money, MoneyError};
use crate::rating::{BillingPlan, RatingError, Tariff};

/// 100% in basis points.
pub const BASIS_POINTS: u32 = 10_000;
/// A markup above 100x is a typo, not a price.
pub const MAX_MARKUP_BP: u32 = 100 * BASIS_POINTS;
/// Overrides per kind at most.
pub const MAX_OVERRIDES: usize = 10_000;

/// A billing plan as the admin writes it (micro-units; the deck's currency applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub connect_fee_micros: i64,
    pub first_increment_seconds: u32,
    pub next_increment_seconds: u32,
}

impl PlanTerms {
    pub const PER_SECOND: PlanTerms = PlanTerms {
        connect_fee_micros: 0,
        first_increment_seconds: 1,
        next_increment_seconds: 1,
    };

    pub fn plan(&self, currency: Currency) -> Result<BillingPlan, RatingError> {
        BillingPlan::new(
            Money::from_micros(self.connect_fee_micros, currency),
            self.first_increment_seconds,
            self.next_increment_seconds,
        )
    }
}

/// What a country or prefix changes; unset fields fall through to the next level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriceOverride {
    /// A fixed selling rate per minute; markup and minimum margin do not apply.
    pub rate_per_minute_micros: Option<i64>,
    pub markup_bp: Option<u32>,
    pub min_margin_per_minute_micros: Option<i64>,
    pub plan: Option<PlanTerms>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PricingRules {
    /// Markup on our cost in basis points (3000 = 30%).
    pub markup_bp: u32,
    /// The selling rate is at least cost + this, per minute.
    pub min_margin_per_minute_micros: i64,
    /// The selling rate is rounded up to a multiple of this (100 = $0.0001); 1 leaves it as is.
    pub rounding_step_micros: i64,
    pub default_plan: PlanTerms,
    /// By the deck's country code (`GB`, `AN`, `ZZ`, ...).
    pub countries: BTreeMap<String, PriceOverride>,
    /// By destination prefix (digits); the longest prefix of the matched one wins.
    pub prefixes: BTreeMap<String, PriceOverride>,
}

impl Default for PricingRules {
    fn default() -> Self {
        PricingRules {
            markup_bp: 3_000,
            min_margin_per_minute_micros: 2_000,
            rounding_step_micros: 100,
            default_plan: PlanTerms::PER_SECOND,
            countries: BTreeMap::new(),
            prefixes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("markup {0} bp is above the allowed {MAX_MARKUP_BP} bp (100x)")]
    MarkupTooHigh(u32),
    #[error("{what} cannot be negative (got {micros} micro-units)")]
    Negative { what: &'static str, micros: i64 },
    #[error("the rounding step must be at least 1 micro-unit (got {0})")]
    RoundingStep(i64),
    #[error("prefix override `{0}` must be 1-15 digits")]
    BadPrefix(String),
    #[error("country override `{0}` must be a two-letter code")]
    BadCountry(String),
    #[error("at most {MAX_OVERRIDES} {0} overrides")]
    TooMany(&'static str),
    #[error("billing plan: {0}")]
    Plan(#[from] RatingError),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Where a selling price's terms came from, shown beside the price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "key", rename_all = "snake_case")]
pub enum PriceSource {
    Default,
    Country(String),
    Prefix(String),
}

/// Our cost and the caller's price for one destination, with the margin beside them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SellingPrice {
    pub selling: Tariff,
    pub cost_per_minute: Money,
    pub margin_per_minute: Money,
    pub source: PriceSource,
}

impl PricingRules {
    pub fn validate(&self) -> Result<(), PricingError> {
        check_markup(self.markup_bp)?;
        non_negative("minimum margin", self.min_margin_per_minute_micros)?;
        if self.rounding_step_micros < 1 {
            return Err(PricingError::RoundingStep(self.rounding_step_micros));
        }
        check_plan(&self.default_plan)?;
        for (kind, map) in [("country", &self.countries), ("prefix", &self.prefixes)] {
            if map.len() > MAX_OVERRIDES {
                return Err(PricingError::TooMany(kind));
            }
        }
        for (iso, o) in &self.countries {
            if iso.len() != 2 || !iso.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(PricingError::BadCountry(iso.clone()));
            }
            check_override(o)?;
        }
        for (prefix, o) in &self.prefixes {
            if prefix.is_empty() || prefix.len() > 15 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(PricingError::BadPrefix(prefix.clone()));
            }
            check_override(o)?;
        }
        Ok(())
    }

    /// The override for the longest prefix of `matched_prefix` that has one.
    fn prefix_override(&self, matched_prefix: &str) -> Option<(&str, &PriceOverride)> {
        (1..=matched_prefix.len())
            .rev()
            .find_map(|n| self.prefixes.get_key_value(&matched_prefix[..n]))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// The selling price for a destination of country `iso`, matched on `matched_prefix`, that
    /// costs us `cost_per_minute`.
    pub fn sell(
        &self,
        iso: &str,
        matched_prefix: &str,
        cost_per_minute: Money,
    ) -> Result<SellingPrice, PricingError> {
        non_negative("cost", cost_per_minute.micros())?;
        let by_prefix = self.prefix_override(matched_prefix);
        let by_country = self.countries.get(iso);
        let pick = |f: fn(&PriceOverride) -> Option<i64>| {
            by_prefix
                .and_then(|(_, o)| f(o))
                .or_else(|| by_country.and_then(f))
        };
        let source = match (by_prefix, by_country) {
            (Some((p, _)), _) => PriceSource::Prefix(p.to_owned()),
            (None, Some(_)) => PriceSource::Country(iso.to_owned()),
            (None, None) => PriceSource::Default,
        };
        let currency = cost_per_minute.currency();
        let rate = match pick(|o| o.rate_per_minute_micros) {
            Some(fixed) => fixed,
            None => {
                let markup = pick(|o| o.markup_bp.map(i64::from)).unwrap_or(i64::from(self.markup_bp));
                let margin =
                    pick(|o| o.min_margin_per_minute_micros).unwrap_or(self.min_margin_per_minute_micros);
                let marked_up = mul_bp_ceil(cost_per_minute.micros(), markup)?;
                let floor = cost_per_minute
                    .micros()
                    .checked_add(margin)
                    .ok_or(MoneyError::Overflow)?;
                round_up(marked_up.max(floor), self.rounding_step_micros)?
            }
        };
        let plan_terms = by_prefix
            .and_then(|(_, o)| o.plan)
            .or_else(|| by_country.and_then(|o| o.plan))
            .unwrap_or(self.default_plan);
        let selling = Tariff::new(Money::from_micros(rate, currency), plan_terms.plan(currency)?)?;
        Ok(SellingPrice {
            margin_per_minute: selling.rate_per_minute.checked_sub(cost_per_minute)?,
            selling,
            cost_per_minute,
            source,
        })
    }
}

fn check_markup(bp: u32) -> Result<(), PricingError> {
    if bp > MAX_MARKUP_BP {
        return Err(PricingError::MarkupTooHigh(bp));
    }
    Ok(())
}

fn non_negative(what: &'static str, micros: i64) -> Result<(), PricingError> {
    if micros < 0 {
        return Err(PricingError::Negative { what, micros });
    }
    Ok(())
}

fn check_plan(plan: &PlanTerms) -> Result<(), PricingError> {
    plan.plan(Currency::USD)?;
    Ok(())
}

fn check_override(o: &PriceOverride) -> Result<(), PricingError> {
    if let Some(bp) = o.markup_bp {
        check_markup(bp)?;
    }
    if let Some(r) = o.rate_per_minute_micros {
        non_negative("fixed rate", r)?;
    }
    if let Some(m) = o.min_margin_per_minute_micros {
        non_negative("minimum margin", m)?;
    }
    if let Some(p) = &o.plan {
        check_plan(p)?;
    }
    Ok(())
}

/// `micros × (1 + bp/10000)`, rounded up to the micro-unit.
fn mul_bp_ceil(micros: i64, bp: i64) -> Result<i64, MoneyError> {
    let n = i128::from(micros) * i128::from(i64::from(BASIS_POINTS) + bp);
    let d = i128::from(BASIS_POINTS);
    let q = n.div_euclid(d) + i128::from(n.rem_euclid(d) != 0);
    i64::try_from(q).map_err(|_| MoneyError::Overflow)
}

fn round_up(micros: i64, step: i64) -> Result<i64, MoneyError> {
    let rem = micros.rem_euclid(step);
    if rem == 0 {
        Ok(micros)
    } else {
        micros.checked_add(step - rem).ok_or(MoneyError::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn usd(micros: i64) -> Money {
        Money::from_micros(micros, Currency::USD)
    }

    #[test]
    fn markup_and_minimum_margin_take_the_higher_then_round_up() {
        let rules = PricingRules::default();
        // 0.0135 * 1.3 = 0.01755 -> 0.0176; cost + 0.002 = 0.0155: markup wins.
        let p = rules.sell("GB", "447", usd(13_500)).expect("priced");
        assert_eq!(p.selling.rate_per_minute, usd(17_600));
        assert_eq!(p.margin_per_minute, usd(4_100));
        assert_eq!(p.source, PriceSource::Default);
        // 0.001 * 1.3 = 0.0013; cost + 0.002 = 0.003: the minimum margin wins.
        let p = rules.sell("US", "1", usd(1_000)).expect("priced");
        assert_eq!(p.selling.rate_per_minute, usd(3_000));
    }

    #[test]
    fn prefix_overrides_beat_country_overrides_field_by_field() {
        let mut rules = PricingRules::default();
        rules.countries.insert(
            "GB".into(),
            PriceOverride {
                markup_bp: Some(5_000),
                plan: Some(PlanTerms {
                    connect_fee_micros: 10_000,
                    first_increment_seconds: 60,
                    next_increment_seconds: 1,
                }),
                ..PriceOverride::default()
            },
        );
        rules.prefixes.insert(
            "447".into(),
            PriceOverride {
                rate_per_minute_micros: Some(99_000),
                ..PriceOverride::default()
            },
        );
        let mobile = rules.sell("GB", "44791", usd(13_500)).expect("priced");
        assert_eq!(mobile.selling.rate_per_minute, usd(99_000));
        assert_eq!(
            mobile.selling.plan.first_increment_seconds, 60,
            "plan falls through to the country"
        );
        assert_eq!(mobile.source, PriceSource::Prefix("447".into()));
        let landline = rules.sell("GB", "4420", usd(10_000)).expect("priced");
        assert_eq!(landline.selling.rate_per_minute, usd(15_000));
        assert_eq!(landline.source, PriceSource::Country("GB".into()));
    }

    #[test]
    fn a_fixed_rate_below_cost_shows_a_negative_margin() {
        let mut rules = PricingRules::default();
        rules.prefixes.insert(
            "881".into(),
            PriceOverride {
                rate_per_minute_micros: Some(1_000),
                ..PriceOverride::default()
            },
        );
        let p = rules.sell("ZZ", "8816", usd(5_000_000)).expect("priced");
        assert_eq!(p.margin_per_minute, usd(1_000 - 5_000_000));
    }

    #[test]
    fn validation_names_the_bad_rule() {
        let mut rules = PricingRules::default();
        rules.prefixes.insert("44a".into(), PriceOverride::default());
        assert_eq!(rules.validate(), Err(PricingError::BadPrefix("44a".into())));
        let rules = PricingRules {
            rounding_step_micros: 0,
            ..PricingRules::default()
        };
        assert_eq!(rules.validate(), Err(PricingError::RoundingStep(0)));
        let rules = PricingRules {
            markup_bp: MAX_MARKUP_BP + 1,
            ..PricingRules::default()
        };
        assert_eq!(
            rules.validate(),
            Err(PricingError::MarkupTooHigh(MAX_MARKUP_BP + 1))
        );
    }

    proptest! {
        #[test]
        fn the_selling_rate_covers_cost_markup_and_margin_on_the_step(
            cost in 0i64..50_000_000,
            markup in 0u32..50_000,
            margin in 0i64..1_000_000,
            step in 1i64..100_000,
        ) {
            let rules = PricingRules {
                markup_bp: markup,
                min_margin_per_minute_micros: margin,
                rounding_step_micros: step,
                ..PricingRules::default()
            };
            let p = rules.sell("FR", "33", usd(cost)).expect("priced");
            let rate = p.selling.rate_per_minute.micros();
            prop_assert_eq!(rate % step, 0);
            prop_assert!(rate >= cost + margin);
            prop_assert!(i128::from(rate) * 10_000 >= i128::from(cost) * i128::from(10_000 + markup));
            // Not more than one step above the larger requirement.
            let need = (cost + margin).max(((i128::from(cost) * i128::from(10_000 + markup) + 9_999) / 10_000) as i64);
            prop_assert!(rate - need < step);
            prop_assert_eq!(p.margin_per_minute.micros(), rate - cost);
        }
    }
}
