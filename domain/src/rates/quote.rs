//! Quotes: what a caller is shown before dialling — the destination, the selling rate and plan,
//! and the longest call their available credit buys — with an id and an expiry. The call's
//! `start` names the quote and is charged by it, so the price shown is the price charged.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, DeckId, QuoteId};
use crate::money::{Money, MoneyError};
use crate::rates::pricing::SellingPrice;
use crate::rating::Tariff;

/// Quotes live this long unless configured otherwise.
pub const DEFAULT_QUOTE_TTL_SECONDS: i64 = 600;

/// Where a number landed in the active deck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    /// Country code of the matched deck row (may be non-ISO, e.g. `ZZ`).
    pub iso: String,
    pub country: String,
    pub description: String,
    /// The deck prefix the number matched (digits).
    pub prefix: String,
    pub deck_id: DeckId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub id: QuoteId,
    pub account_id: AccountId,
    pub destination: Destination,
    pub price: SellingPrice,
    /// The credit the quote was computed from.
    pub available: Money,
    /// The longest talk time `available` pays for under `price.selling`, capped.
    pub max_seconds: u64,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Quote {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: QuoteId,
        account_id: AccountId,
        destination: Destination,
        price: SellingPrice,
        available: Money,
        cap_seconds: u64,
        issued_at: DateTime<Utc>,
        ttl_seconds: i64,
    ) -> Result<Quote, MoneyError> {
        let max_seconds = max_talk_seconds(&price.selling, available, cap_seconds)?;
        Ok(Quote {
            id,
            account_id,
            destination,
            price,
            available,
            max_seconds,
            issued_at,
            expires_at: issued_at + Duration::seconds(ttl_seconds.max(1)),
        })
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

/// The largest talk time `t ≤ cap_seconds` whose cost is within `available` (0 when not even
/// the first billed increment is). Exact: it uses the one rating function charges use.
pub fn max_talk_seconds(selling: &Tariff, available: Money, cap_seconds: u64) -> Result<u64, MoneyError> {
    if available.is_negative() || cap_seconds == 0 {
        return Ok(0);
    }
    selling.seconds_affordable(available, cap_seconds)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::money::Currency;
    use crate::rating::BillingPlan;

    fn usd(micros: i64) -> Money {
        Money::from_micros(micros, Currency::USD)
    }

    #[test]
    fn no_credit_buys_no_time_and_a_minute_plan_buys_whole_minutes() {
        let per_minute =
            Tariff::new(usd(60_000), BillingPlan::new(usd(0), 60, 60).expect("plan")).expect("tariff");
        assert_eq!(max_talk_seconds(&per_minute, usd(0), 3_600), Ok(0));
        assert_eq!(max_talk_seconds(&per_minute, usd(-5), 3_600), Ok(0));
        // $0.15 buys two whole minutes at $0.06/min billed 60/60.
        assert_eq!(max_talk_seconds(&per_minute, usd(150_000), 3_600), Ok(120));
        assert_eq!(
            max_talk_seconds(&per_minute, usd(10_000_000), 3_600),
            Ok(3_600),
            "capped"
        );
    }

    proptest! {
        #[test]
        fn the_quoted_maximum_is_the_largest_duration_whose_cost_fits(
            rate in 0i64..5_000_000,
            fee in 0i64..200_000,
            first in 1u32..120,
            next in 1u32..120,
            available in -1_000i64..50_000_000,
            cap in 1u64..20_000,
        ) {
            let plan = BillingPlan::new(usd(fee), first, next).expect("plan");
            let tariff = Tariff::new(usd(rate), plan).expect("tariff");
            let max = max_talk_seconds(&tariff, usd(available), cap).expect("no overflow");
            prop_assert!(max <= cap);
            if max > 0 {
                prop_assert!(tariff.cost(max).expect("cost").micros() <= available);
            }
            if max < cap {
                prop_assert!(tariff.cost(max + 1).expect("cost").micros() > available);
            }
        }
    }
}
