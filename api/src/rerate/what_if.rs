//! What-if: the ended calls of a period priced against a draft deck, with the same arithmetic a
//! correction's re-rating does (the call's own plan and talk time, the one rating function;
//! the customer is only ever refunded; our cost at the draft's cost), reading the
//! `call_margins` read model and writing nothing. The admin judges a deck before activating it
//! or correcting rates from it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use ringledger_domain::call::our_cost;
use ringledger_domain::rates::formats::{DeckReader, ReadOptions};
use ringledger_domain::rates::lookup::{PrefixEntry, PrefixTable};
use ringledger_domain::rates::pricing::PricingRules;
use ringledger_domain::rates::DeckRow;
use ringledger_domain::{Currency, Tariff};
use sqlx::PgPool;

use super::RerateError;
use ringledger_projections::margins::{MarginRow, COLUMNS};

/// A deck file read into memory for pricing (never appended anywhere).
pub struct DraftDeck {
    rows: Vec<DeckRow>,
    table: PrefixTable<u32>,
    pub currency: Currency,
    /// Rows the reader refused (listed by `rates import` of the same file).
    pub bad_rows: u64,
}

impl DraftDeck {
    pub fn read(bytes: &[u8], currency: Currency) -> Result<DraftDeck, RerateError> {
        let reader = DeckReader::new(bytes, ReadOptions::new(currency))
            .map_err(|e| RerateError::Invalid(format!("draft deck: {e}")))?;
        let (mut rows, mut keys, mut bad_rows) = (Vec::new(), Vec::new(), 0u64);
        for item in reader {
            match item {
                Ok(row) => {
                    let index = u32::try_from(rows.len())
                        .map_err(|_| RerateError::Invalid("draft deck: too many rows".into()))?;
                    for d in &row.destination_prefixes {
                        if row.origination_prefixes.is_empty() {
                            keys.push(PrefixEntry {
                                destination: d.clone(),
                                origin: None,
                                value: index,
                            });
                        }
                        for o in &row.origination_prefixes {
                            keys.push(PrefixEntry {
                                destination: d.clone(),
                                origin: Some(o.clone()),
                                value: index,
                            });
                        }
                    }
                    rows.push(row);
                }
                Err(e) if e.is_fatal() => return Err(RerateError::Invalid(format!("draft deck: {e}"))),
                Err(_) => bad_rows += 1,
            }
        }
        let table = PrefixTable::build(keys).map_err(|e| RerateError::Invalid(format!("draft deck: {e}")))?;
        Ok(DraftDeck {
            rows,
            table,
            currency,
            bad_rows,
        })
    }

    /// The draft's row for a call's matched prefix (its longest prefix in the draft).
    fn row_for(&self, prefix: &str, origin: Option<&str>) -> Option<&DeckRow> {
        let found = self.table.lookup(prefix, origin)?;
        self.rows.get(*found.value as usize)
    }
}

/// Differences over one account, one country, or everything (`scope` = `account`, `country`,
/// `total`). Amounts in micro-units of `currency`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WhatIfLine {
    pub scope: &'static str,
    pub key: String,
    pub currency: String,
    pub calls: u64,
    pub changed_calls: u64,
    pub revenue_before_micros: i64,
    pub revenue_after_micros: i64,
    pub refund_micros: i64,
    pub our_cost_before_micros: i64,
    pub our_cost_after_micros: i64,
    pub margin_before_micros: i64,
    pub margin_after_micros: i64,
}

impl WhatIfLine {
    fn add(&mut self, call: &Priced) {
        self.calls += 1;
        self.changed_calls += u64::from(call.changed());
        self.revenue_before_micros += call.revenue_before;
        self.revenue_after_micros += call.revenue_after;
        self.refund_micros += call.revenue_before - call.revenue_after;
        self.our_cost_before_micros += call.our_cost_before;
        self.our_cost_after_micros += call.our_cost_after;
        self.margin_before_micros += call.revenue_before - call.our_cost_before;
        self.margin_after_micros += call.revenue_after - call.our_cost_after;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct WhatIf {
    pub accounts: Vec<WhatIfLine>,
    pub countries: Vec<WhatIfLine>,
    pub total: WhatIfLine,
    /// Calls whose prefix the draft does not price (left out of every line).
    pub not_in_draft: u64,
}

/// One call priced both ways.
struct Priced {
    revenue_before: i64,
    revenue_after: i64,
    our_cost_before: i64,
    our_cost_after: i64,
}

impl Priced {
    fn changed(&self) -> bool {
        self.revenue_before != self.revenue_after || self.our_cost_before != self.our_cost_after
    }
}

/// Prices the ended calls placed in `[from, to)` against `draft` (selling rates from
/// `pricing`, as a correction made from the draft would set them). Reads only.
pub async fn what_if(
    pool: &PgPool,
    draft: &DraftDeck,
    pricing: &PricingRules,
    origin: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<WhatIf, RerateError> {
    let mut accounts: BTreeMap<String, WhatIfLine> = BTreeMap::new();
    let mut countries: BTreeMap<String, WhatIfLine> = BTreeMap::new();
    let mut out = WhatIf::default();
    out.total.scope = "total";
    out.total.currency = draft.currency.to_string();
    let sql = format!(
        "SELECT {COLUMNS} FROM call_margins WHERE state = 'ended' AND placed_at >= $1 AND placed_at < $2"
    );
    let mut rows = sqlx::query(&sql).bind(from).bind(to).fetch(pool);
    while let Some(record) = rows.try_next().await? {
        let row = MarginRow::from_row(&record)?;
        if row.currency != draft.currency.as_str() {
            continue;
        }
        let Some(deck_row) = draft.row_for(&row.matched_prefix, origin) else {
            out.not_in_draft += 1;
            continue;
        };
        let priced = price(&row, deck_row, pricing)?;
        let account = row.account_id;
        for (map, scope, key) in [
            (&mut accounts, "account", account.to_string()),
            (&mut countries, "country", row.country_iso.clone()),
        ] {
            let line = map.entry(key.clone()).or_insert_with(|| WhatIfLine {
                scope,
                key,
                currency: draft.currency.to_string(),
                ..WhatIfLine::default()
            });
            line.add(&priced);
        }
        out.total.add(&priced);
    }
    out.accounts = accounts.into_values().collect();
    out.countries = countries.into_values().collect();
    Ok(out)
}

/// The call under the draft: what a correction to the draft's rates would leave it at.
fn price(row: &MarginRow, deck_row: &DeckRow, pricing: &PricingRules) -> Result<Priced, RerateError> {
    let bad = |e: &dyn std::fmt::Display| {
        RerateError::Invalid(format!("pricing prefix {}: {e}", row.matched_prefix))
    };
    let currency = deck_row.cost_per_minute.currency();
    let plan = row.plan().ok_or_else(|| {
        RerateError::Invalid(format!("call on prefix {} has no valid plan", row.matched_prefix))
    })?;
    let selling = pricing
        .sell(&deck_row.iso, &row.matched_prefix, deck_row.cost_per_minute)
        .map_err(|e| bad(&e))?
        .selling
        .rate_per_minute;
    let talk = row.talk_seconds();
    let tariff = Tariff {
        rate_per_minute: selling,
        plan,
    };
    let priced = tariff.cost(talk).map_err(|e| bad(&e))?.micros();
    let revenue_after = row.revenue_micros.min(priced.min(row.reserved_micros));
    let our_cost_after = our_cost(deck_row.cost_per_minute, &plan, talk).map_err(|e| bad(&e))?;
    let our_cost_before = row.our_cost_micros.unwrap_or(our_cost_after.micros());
    debug_assert_eq!(our_cost_after.currency(), currency);
    Ok(Priced {
        revenue_before: row.revenue_micros,
        revenue_after,
        our_cost_before,
        our_cost_after: our_cost_after.micros(),
    })
}
