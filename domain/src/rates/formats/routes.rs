//! Duplicate detection: the same destination prefix priced twice for the same origination.
//!
//! Memory grows with the distinct (origination, destination) prefix pairs, not with the file:
//! about 40 bytes a pair, so 500,000 prefixes cost some 20 MB. `Limits::max_routes` bounds it.
//! It must never keep rows or text, only packed prefixes, a line and a price.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use super::error::{Origin, RowErrorKind};
use super::fields::excerpt;
use crate::money::Money;
use crate::rates::DeckRow;

/// A prefix of up to 15 digits packed as `value << 4 | length`, so `"1"` and `"01"` differ
/// and 0 (length 0) means "any origin".
type PrefixCode = u64;

const ANY_ORIGIN: PrefixCode = 0;

fn code(prefix: &str) -> PrefixCode {
    let value = prefix.bytes().fold(0u64, |v, b| {
        v.wrapping_mul(10).wrapping_add(u64::from(b.wrapping_sub(b'0')))
    });
    debug_assert!(prefix.len() <= 15 && prefix.bytes().all(|b| b.is_ascii_digit()));
    value << 4 | prefix.len() as u64
}

pub(super) struct Routes {
    /// (origination, destination) -> (line, price in micro-units).
    seen: HashMap<(PrefixCode, PrefixCode), (u64, i64)>,
    /// Pairs the current row has added, to take back if a later pair is a duplicate.
    added: Vec<(PrefixCode, PrefixCode)>,
    max: usize,
}

impl Routes {
    pub(super) fn new(max: usize) -> Routes {
        Routes {
            seen: HashMap::new(),
            added: Vec::new(),
            max,
        }
    }

    /// Records every pair of `row`, or reports the first pair an earlier line already priced.
    /// A rejected row records nothing, so later lines are compared with good rows only. One
    /// lookup per pair: with 500k prefixes the map outgrows the cache and each probe is a miss.
    pub(super) fn record(&mut self, row: &DeckRow) -> Result<(), RowErrorKind> {
        if self.seen.len().saturating_add(pair_count(row)) > self.max {
            return Err(RowErrorKind::TooManyRoutes { max: self.max });
        }
        self.added.clear();
        let result = self.insert_pairs(row);
        if result.is_err() {
            for key in &self.added {
                self.seen.remove(key);
            }
        }
        result
    }

    fn insert_pairs(&mut self, row: &DeckRow) -> Result<(), RowErrorKind> {
        let any = [String::new()];
        let origins = if row.origination_prefixes.is_empty() {
            &any[..]
        } else {
            &row.origination_prefixes[..]
        };
        for origin in origins {
            let origin_code = if origin.is_empty() {
                ANY_ORIGIN
            } else {
                code(origin)
            };
            for destination in &row.destination_prefixes {
                let key = (origin_code, code(destination));
                match self.seen.entry(key) {
                    Entry::Vacant(slot) => {
                        slot.insert((row.line, row.cost_per_minute.micros()));
                        self.added.push(key);
                    }
                    Entry::Occupied(first) => {
                        let (line, micros) = *first.get();
                        let first_price = Money::from_micros(micros, row.cost_per_minute.currency());
                        return Err(duplicate(row, origin, destination, line, first_price));
                    }
                }
            }
        }
        Ok(())
    }
}

fn pair_count(row: &DeckRow) -> usize {
    row.origination_prefixes.len().max(1) * row.destination_prefixes.len()
}

fn duplicate(
    row: &DeckRow,
    origin: &str,
    destination: &str,
    first_line: u64,
    first_price: Money,
) -> RowErrorKind {
    let origin = if origin.is_empty() {
        Origin::Any
    } else {
        Origin::Prefix(excerpt(origin))
    };
    let prefix = excerpt(destination);
    if first_price == row.cost_per_minute {
        RowErrorKind::Duplicate {
            prefix,
            origin,
            first_line,
        }
    } else {
        RowErrorKind::ConflictingDuplicate {
            prefix,
            origin,
            price: row.cost_per_minute,
            first_price,
            first_line,
        }
    }
}
