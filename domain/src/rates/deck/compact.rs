//! The wire form of a chunk's rows: the currency once, then one JSON array per row
//! (`[line, iso, country, description, "441,442", "1", cost_micros, connect_fee_micros, first,
//! next]`). A deck is hundreds of thousands of rows; repeating field names and money objects
//! on every row made the log three times larger and its encoding the import's bottleneck.

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::money::{Currency, Money};
use crate::rates::DeckRow;
use crate::rating::BillingPlan;

type WireRow<'a> = (u64, &'a str, &'a str, &'a str, String, String, i64, i64, u32, u32);
type OwnedRow = (u64, String, String, String, String, String, i64, i64, u32, u32);

#[derive(Serialize)]
struct Out<'a> {
    currency: Option<Currency>,
    rows: Vec<WireRow<'a>>,
}

#[derive(Deserialize)]
struct In {
    currency: Option<Currency>,
    rows: Vec<OwnedRow>,
}

pub fn serialize<S: Serializer>(rows: &[DeckRow], s: S) -> Result<S::Ok, S::Error> {
    let currency = rows.first().map(|r| r.cost_per_minute.currency());
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mismatch =
            Some(r.cost_per_minute.currency()) != currency || Some(r.plan.connect_fee.currency()) != currency;
        if mismatch {
            return Err(S::Error::custom(format!(
                "line {}: a chunk holds one currency",
                r.line
            )));
        }
        out.push((
            r.line,
            r.iso.as_str(),
            r.country.as_str(),
            r.description.as_str(),
            r.destination_prefixes.join(","),
            r.origination_prefixes.join(","),
            r.cost_per_minute.micros(),
            r.plan.connect_fee.micros(),
            r.plan.first_increment_seconds,
            r.plan.next_increment_seconds,
        ));
    }
    Out { currency, rows: out }.serialize(s)
}

fn split(list: &str) -> Vec<String> {
    if list.is_empty() {
        Vec::new()
    } else {
        list.split(',').map(str::to_owned).collect()
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DeckRow>, D::Error> {
    let wire = In::deserialize(d)?;
    let Some(currency) = wire.currency else {
        return if wire.rows.is_empty() {
            Ok(Vec::new())
        } else {
            Err(D::Error::custom("rows without a currency"))
        };
    };
    wire.rows
        .into_iter()
        .map(
            |(line, iso, country, description, dest, orig, cost, fee, first, next)| {
                Ok(DeckRow {
                    line,
                    iso,
                    country,
                    description,
                    destination_prefixes: split(&dest),
                    origination_prefixes: split(&orig),
                    cost_per_minute: Money::from_micros(cost, currency),
                    plan: BillingPlan {
                        connect_fee: Money::from_micros(fee, currency),
                        first_increment_seconds: first,
                        next_increment_seconds: next,
                    },
                })
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::ids::DeckId;
    use crate::money::{Currency, Money};
    use crate::rates::deck::DeckEvent;
    use crate::rates::DeckRow;
    use crate::rating::BillingPlan;

    fn digits() -> impl Strategy<Value = String> {
        "[0-9]{1,8}"
    }

    fn row() -> impl Strategy<Value = DeckRow> {
        (
            1u64..1_000_000,
            "[A-Z]{0,2}",
            ".{0,20}",
            ".{0,30}",
            proptest::collection::vec(digits(), 1..4),
            proptest::collection::vec(digits(), 0..3),
            0i64..10_000_000,
            0i64..1_000_000,
            1u32..120,
            1u32..120,
        )
            .prop_map(
                |(line, iso, country, description, dest, orig, cost, fee, first, next)| DeckRow {
                    line,
                    iso,
                    country,
                    description,
                    destination_prefixes: dest,
                    origination_prefixes: orig,
                    cost_per_minute: Money::from_micros(cost, Currency::EUR),
                    plan: BillingPlan {
                        connect_fee: Money::from_micros(fee, Currency::EUR),
                        first_increment_seconds: first,
                        next_increment_seconds: next,
                    },
                },
            )
    }

    proptest! {
        #[test]
        fn a_chunk_reads_back_as_the_rows_it_was_written_from(rows in proptest::collection::vec(row(), 0..20)) {
            let event = DeckEvent::RateDeckRowsImported { deck_id: DeckId::new_v7(), chunk: 3, rows };
            let json = serde_json::to_string(&event).expect("encodes");
            let back: DeckEvent = serde_json::from_str(&json).expect("decodes");
            prop_assert_eq!(&back, &event);
            let direct: crate::rates::deck::RowsImported = serde_json::from_str(&json).expect("decodes alone");
            let DeckEvent::RateDeckRowsImported { rows, .. } = event else { unreachable!() };
            prop_assert_eq!(direct.rows, rows);
        }
    }

    #[test]
    fn a_chunk_in_two_currencies_does_not_encode() {
        let usd = DeckRow {
            line: 2,
            iso: "GB".into(),
            country: "United Kingdom".into(),
            description: String::new(),
            destination_prefixes: vec!["44".into()],
            origination_prefixes: vec![],
            cost_per_minute: Money::from_micros(1, Currency::USD),
            plan: BillingPlan::per_second(Money::zero(Currency::USD)),
        };
        let mut eur = usd.clone();
        eur.cost_per_minute = Money::from_micros(1, Currency::EUR);
        let event = DeckEvent::RateDeckRowsImported {
            deck_id: DeckId::new_v7(),
            chunk: 0,
            rows: vec![usd, eur],
        };
        assert!(serde_json::to_string(&event).is_err());
    }
}
