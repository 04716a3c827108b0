//! The high-risk number ranges: E.164 prefixes (country code first, no `+`) known for
//! international revenue share fraud or premium-rate services. A call is in a range when the
//! rate deck prefix it was priced under starts with the range: the log keeps the matched prefix,
//! never the number, so a range finer than the deck's prefixes needs the deck to price it apart
//! (docs/fraud.md).

use serde::{Deserialize, Serialize};

pub const MAX_RANGES: usize = 10_000;
pub const MAX_LABEL_CHARS: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskRange {
    /// 1-15 digits.
    pub prefix: String,
    /// What the range is and where it came from, shown in evidence.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RiskRangeError {
    #[error("range `{0}` is not 1-15 digits (country code first, without `+`)")]
    Prefix(String),
    #[error("the label must be 1-{MAX_LABEL_CHARS} characters")]
    Label,
    #[error("at most {MAX_RANGES} ranges")]
    TooMany,
}

impl RiskRange {
    /// Parses an admin's or the starter file's entry; a leading `+` and spaces are accepted.
    pub fn parse(prefix: &str, label: &str) -> Result<RiskRange, RiskRangeError> {
        let digits: String = prefix
            .trim()
            .trim_start_matches('+')
            .chars()
            .filter(|c| *c != ' ')
            .collect();
        if !(1..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RiskRangeError::Prefix(prefix.chars().take(20).collect()));
        }
        let label = label.trim();
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            return Err(RiskRangeError::Label);
        }
        Ok(RiskRange {
            prefix: digits,
            label: label.to_owned(),
        })
    }
}

/// The list the rules match against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskRanges {
    ranges: Vec<RiskRange>,
}

impl RiskRanges {
    pub fn new(mut ranges: Vec<RiskRange>) -> Result<RiskRanges, RiskRangeError> {
        if ranges.len() > MAX_RANGES {
            return Err(RiskRangeError::TooMany);
        }
        // Longest first, so the most specific range names the hit.
        ranges.sort_by(|a, b| b.prefix.len().cmp(&a.prefix.len()).then(a.prefix.cmp(&b.prefix)));
        Ok(RiskRanges { ranges })
    }

    /// The most specific range the matched prefix lies in.
    pub fn containing(&self, matched_prefix: &str) -> Option<&RiskRange> {
        self.ranges.iter().find(|r| matched_prefix.starts_with(&r.prefix))
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// One audited change to the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeChange {
    pub at: chrono::DateTime<chrono::Utc>,
    /// `true`: added (or relabelled, or seeded); `false`: removed.
    pub added: bool,
    pub range: RiskRange,
}

/// The list through time, from its audit: a call is judged by the list as it stood when the
/// call was placed, so editing the list never re-judges old calls (a re-run from position 0
/// decides exactly what was decided before).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeHistory {
    /// Oldest first.
    changes: Vec<RangeChange>,
}

impl RangeHistory {
    pub fn new(mut changes: Vec<RangeChange>) -> RangeHistory {
        changes.sort_by_key(|c| c.at);
        RangeHistory { changes }
    }

    /// How many changes had happened by `at` (the key of `as_of`'s answer).
    pub fn changes_by(&self, at: chrono::DateTime<chrono::Utc>) -> usize {
        self.changes.partition_point(|c| c.at <= at)
    }

    /// The list as it stood after the first `n` changes.
    pub fn after_changes(&self, n: usize) -> Result<RiskRanges, RiskRangeError> {
        let mut now: std::collections::BTreeMap<&str, &RiskRange> = std::collections::BTreeMap::new();
        for c in &self.changes[..n.min(self.changes.len())] {
            if c.added {
                now.insert(&c.range.prefix, &c.range);
            } else {
                now.remove(c.range.prefix.as_str());
            }
        }
        RiskRanges::new(now.into_values().cloned().collect())
    }

    pub fn as_of(&self, at: chrono::DateTime<chrono::Utc>) -> Result<RiskRanges, RiskRangeError> {
        self.after_changes(self.changes_by(at))
    }
}
