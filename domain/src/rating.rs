//! Rating: the one place where a charge is rounded.
//!
//! Talk time is billed up to the plan's increments, then the amount up to the whole micro-unit.
//! `cost(0) = 0`: a call never answered costs nothing. A tick charges `cost(now) - cost(prev)`,
//! so the ticks of a call add up to `cost(total)` exactly, whatever the tick length.

use serde::{Deserialize, Serialize};

use crate::money::{Money, MoneyError};

/// Connect fee and billing increments (60/60, 1/1, 6/6, 60/1, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingPlan {
    pub connect_fee: Money,
    pub first_increment_seconds: u32,
    pub next_increment_seconds: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error("billing increments must be at least one second (got {first}/{next})")]
    ZeroIncrement { first: u32, next: u32 },
    #[error("a billing increment of {0} seconds is longer than the allowed 3600")]
    IncrementTooLong(u32),
    #[error("a price cannot be negative (got {0})")]
    NegativePrice(Money),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

const MAX_INCREMENT_SECONDS: u32 = 3_600;

impl BillingPlan {
    pub fn new(
        connect_fee: Money,
        first_increment_seconds: u32,
        next_increment_seconds: u32,
    ) -> Result<BillingPlan, RatingError> {
        if first_increment_seconds == 0 || next_increment_seconds == 0 {
            return Err(RatingError::ZeroIncrement {
                first: first_increment_seconds,
                next: next_increment_seconds,
            });
        }
        for inc in [first_increment_seconds, next_increment_seconds] {
            if inc > MAX_INCREMENT_SECONDS {
                return Err(RatingError::IncrementTooLong(inc));
            }
        }
        if connect_fee.is_negative() {
            return Err(RatingError::NegativePrice(connect_fee));
        }
        Ok(BillingPlan {
            connect_fee,
            first_increment_seconds,
            next_increment_seconds,
        })
    }

    /// Per-second billing with no connect fee.
    pub fn per_second(connect_fee: Money) -> BillingPlan {
        BillingPlan {
            connect_fee,
            first_increment_seconds: 1,
            next_increment_seconds: 1,
        }
    }

    /// Seconds billed for `talk_seconds` of talk: 0 stays 0; otherwise at least the first
    /// increment, then whole next increments.
    pub fn billed_seconds(&self, talk_seconds: u64) -> u64 {
        let first = u64::from(self.first_increment_seconds);
        let next = u64::from(self.next_increment_seconds);
        if talk_seconds == 0 {
            0
        } else if talk_seconds <= first {
            first
        } else {
            first + (talk_seconds - first).div_ceil(next) * next
        }
    }
}

/// A selling price: a rate per minute under a billing plan, in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    pub rate_per_minute: Money,
    pub plan: BillingPlan,
}

impl Tariff {
    pub fn new(rate_per_minute: Money, plan: BillingPlan) -> Result<Tariff, RatingError> {
        if rate_per_minute.is_negative() {
            return Err(RatingError::NegativePrice(rate_per_minute));
        }
        if rate_per_minute.currency() != plan.connect_fee.currency() {
            return Err(MoneyError::CurrencyMismatch {
                left: rate_per_minute.currency(),
                right: plan.connect_fee.currency(),
            }
            .into());
        }
        Ok(Tariff {
            rate_per_minute,
            plan,
        })
    }

    /// What `talk_seconds` of talk costs: 0 for 0; otherwise the connect fee plus the rate for
    /// the billed seconds, rounded up to the whole micro-unit.
    pub fn cost(&self, talk_seconds: u64) -> Result<Money, MoneyError> {
        let currency = self.rate_per_minute.currency();
        let billed = self.plan.billed_seconds(talk_seconds);
        if billed == 0 {
            return Ok(Money::zero(currency));
        }
        let numerator = i128::from(self.rate_per_minute.micros()) * i128::from(billed);
        let talk = numerator.div_euclid(60) + i128::from(numerator.rem_euclid(60) != 0);
        let talk = i64::try_from(talk).map_err(|_| MoneyError::Overflow)?;
        Money::from_micros(talk, currency).checked_add(self.plan.connect_fee)
    }

    /// The charge for one metering tick: `cost(now) - cost(prev)`.
    pub fn tick_charge(&self, prev_seconds: u64, now_seconds: u64) -> Result<Money, MoneyError> {
        self.cost(now_seconds)?.checked_sub(self.cost(prev_seconds)?)
    }

    /// The longest talk time whose cost fits within `budget` (0 if not even the first
    /// increment fits). Used to turn a reserved amount into granted seconds.
    pub fn seconds_affordable(&self, budget: Money, cap_seconds: u64) -> Result<u64, MoneyError> {
        if self.cost(1)? > budget {
            return Ok(0);
        }
        let (mut lo, mut hi) = (1u64, cap_seconds.max(1));
        if self.cost(hi)? <= budget {
            return Ok(hi);
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.cost(mid)? <= budget {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }
}

impl PartialOrd for Money {
    /// Amounts of different currencies are not comparable.
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        (self.currency() == other.currency()).then(|| self.micros().cmp(&other.micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use proptest::prelude::*;

    const USD: Currency = Currency::USD;

    fn tariff(rate: i64, fee: i64, first: u32, next: u32) -> Tariff {
        let plan = BillingPlan::new(Money::from_micros(fee, USD), first, next).unwrap();
        Tariff::new(Money::from_micros(rate, USD), plan).unwrap()
    }

    #[test]
    fn examples_from_the_common_plans() {
        // 0.0135/min, per-second: 61 s = 0.0135 * 61/60 = 0.013725 exactly.
        assert_eq!(tariff(13_500, 0, 1, 1).cost(61).unwrap().micros(), 13_725);
        // 60/60: 61 s bills two minutes.
        assert_eq!(tariff(13_500, 0, 60, 60).cost(61).unwrap().micros(), 27_000);
        // 60/1: first minute whole, then per second.
        assert_eq!(tariff(60_000, 0, 60, 1).cost(1).unwrap().micros(), 60_000);
        assert_eq!(tariff(60_000, 0, 60, 1).cost(61).unwrap().micros(), 61_000);
        // 6/6 with a connect fee; 7 s bills 12 s; 0.01/min * 12/60 = 0.002 + 0.05 fee.
        assert_eq!(tariff(10_000, 50_000, 6, 6).cost(7).unwrap().micros(), 52_000);
        // Rounding up to the micro-unit: 1 s at 0.000059/min is 0.00000098.. -> 1 micro.
        assert_eq!(tariff(59, 0, 1, 1).cost(1).unwrap().micros(), 1);
        // Never answered: nothing, not even the connect fee.
        assert_eq!(tariff(10_000, 50_000, 6, 6).cost(0).unwrap().micros(), 0);
    }

    #[test]
    fn refuses_bad_plans() {
        assert!(BillingPlan::new(Money::zero(USD), 0, 1).is_err());
        assert!(BillingPlan::new(Money::from_micros(-1, USD), 1, 1).is_err());
        let plan = BillingPlan::per_second(Money::zero(USD));
        assert!(Tariff::new(Money::from_micros(1, Currency::EUR), plan).is_err());
    }

    fn any_tariff() -> impl Strategy<Value = Tariff> {
        (
            0i64..5_000_000,
            0i64..1_000_000,
            prop_oneof![Just(1u32), Just(6), Just(30), Just(60)],
            prop_oneof![Just(1u32), Just(6), Just(60)],
        )
            .prop_map(|(rate, fee, first, next)| tariff(rate, fee, first, next))
    }

    proptest! {
        #[test]
        fn cost_is_zero_at_zero_and_monotonic(t in any_tariff(), a in 0u64..20_000, b in 0u64..20_000) {
            prop_assert_eq!(t.cost(0).unwrap().micros(), 0);
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(t.cost(lo).unwrap().micros() <= t.cost(hi).unwrap().micros());
        }

        #[test]
        fn billed_seconds_round_up_to_the_increment(t in any_tariff(), s in 1u64..20_000) {
            let billed = t.plan.billed_seconds(s);
            let first = u64::from(t.plan.first_increment_seconds);
            let next = u64::from(t.plan.next_increment_seconds);
            prop_assert!(billed >= s);
            prop_assert!(billed >= first);
            prop_assert!(billed == first || (billed - first) % next == 0);
            prop_assert!(billed - s < first.max(next));
            // Rounded up to the whole micro-unit, never more than one micro above exact.
            let exact = i128::from(t.rate_per_minute.micros()) * i128::from(billed);
            let talk = i128::from(t.cost(s).unwrap().micros() - t.plan.connect_fee.micros());
            prop_assert!(talk * 60 >= exact && talk * 60 - exact < 60);
        }

        #[test]
        fn ticks_add_up_to_the_total(t in any_tariff(), steps in proptest::collection::vec(0u64..400, 0..60)) {
            let mut now = 0u64;
            let mut charged = 0i64;
            for step in steps {
                let next = now + step;
                charged += t.tick_charge(now, next).unwrap().micros();
                now = next;
            }
            prop_assert_eq!(charged, t.cost(now).unwrap().micros());
        }

        #[test]
        fn affordable_seconds_fit_the_budget(t in any_tariff(), budget in 0i64..50_000_000) {
            let budget = Money::from_micros(budget, USD);
            let s = t.seconds_affordable(budget, 14_400).unwrap();
            prop_assert!(t.cost(s).unwrap() <= budget);
            if s > 0 && s < 14_400 {
                prop_assert!(t.cost(s + 1).unwrap() > budget);
            }
        }
    }
}
