//! The five rules. Each looks at one call, its account and the account's other calls, measures
//! every window back from the call's `placed_at` (never from "now"), and answers a hit with a
//! score and evidence a person can check, or nothing. A rule that needs the call's end (its
//! duration or final cost) stays silent until the call has one, and fires then.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::facts::{AccountFacts, CallFacts};
use super::ranges::RiskRanges;
use super::thresholds::Thresholds;
use crate::ids::{AccountId, CallId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    ShortCallBurst,
    ManyDestinations,
    NewAccountHighCost,
    SpendAfterPurchase,
    HighRiskRange,
}

pub const ALL_RULES: [Rule; 5] = [
    Rule::ShortCallBurst,
    Rule::ManyDestinations,
    Rule::NewAccountHighCost,
    Rule::SpendAfterPurchase,
    Rule::HighRiskRange,
];

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::ShortCallBurst => "short_call_burst",
            Rule::ManyDestinations => "many_destinations",
            Rule::NewAccountHighCost => "new_account_high_cost",
            Rule::SpendAfterPurchase => "spend_after_purchase",
            Rule::HighRiskRange => "high_risk_range",
        }
    }

    pub fn parse(name: &str) -> Option<Rule> {
        ALL_RULES.into_iter().find(|r| r.as_str() == name)
    }
}

/// One rule's verdict on one call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    pub rule: Rule,
    pub call_id: CallId,
    pub account_id: AccountId,
    pub placed_at: DateTime<Utc>,
    pub score: u16,
    pub evidence: String,
}

/// Every rule that fires on `call`. `calls` are the account's calls (the call itself may be
/// among them); only those placed within a rule's window before `call` count.
pub fn evaluate(
    call: &CallFacts,
    account: &AccountFacts,
    calls: &[CallFacts],
    ranges: &RiskRanges,
    t: &Thresholds,
) -> Vec<Hit> {
    let found = [
        short_call_burst(call, calls, t),
        many_destinations(call, calls, t),
        new_account_high_cost(call, account, t),
        spend_after_purchase(call, account, t),
        high_risk_range(call, ranges, t),
    ];
    found
        .into_iter()
        .flatten()
        .map(|(rule, score, evidence)| Hit {
            rule,
            call_id: call.call_id,
            account_id: call.account_id,
            placed_at: call.placed_at,
            score,
            evidence,
        })
        .collect()
}

/// The highest sum of flag scores on an account's calls placed within any window of
/// `score_window_hours` (`flags`: a flagged call's `placed_at` and the flag's score). The
/// freeze threshold is compared with it; it depends only on which flags exist, not on the
/// order they were recorded in.
pub fn account_score(t: &Thresholds, flags: impl IntoIterator<Item = (DateTime<Utc>, u16)>) -> u32 {
    let mut flags: Vec<(DateTime<Utc>, u16)> = flags.into_iter().collect();
    flags.sort();
    let window = Duration::hours(t.score_window_hours);
    let (mut best, mut sum, mut start) = (0u32, 0u32, 0usize);
    for (end, (placed, score)) in flags.iter().enumerate() {
        sum = sum.saturating_add(u32::from(*score));
        while flags[start].0 < *placed - window && start < end {
            sum = sum.saturating_sub(u32::from(flags[start].1));
            start += 1;
        }
        best = best.max(sum);
    }
    best
}

type Found = Option<(Rule, u16, String)>;

fn in_window<'a>(
    call: &'a CallFacts,
    calls: &'a [CallFacts],
    minutes: i64,
) -> impl Iterator<Item = &'a CallFacts> + 'a {
    let from = call.placed_at - Duration::minutes(minutes);
    let others = calls
        .iter()
        .filter(move |c| c.call_id != call.call_id && c.placed_at >= from && c.placed_at <= call.placed_at);
    std::iter::once(call).chain(others)
}

fn short_call_burst(call: &CallFacts, calls: &[CallFacts], t: &Thresholds) -> Found {
    let ended = call.ended_at?;
    if !call.is_short(t.short_call_seconds) {
        return None;
    }
    // Only calls over by the time this one ended: the verdict does not depend on when it is taken.
    let short: Vec<&CallFacts> = in_window(call, calls, t.burst_window_minutes)
        .filter(|c| c.is_short(t.short_call_seconds) && c.ended_at.is_some_and(|e| e <= ended))
        .collect();
    let n = u32::try_from(short.len()).unwrap_or(u32::MAX);
    (n >= t.burst_min_calls).then(|| {
        let evidence = format!(
            "{n} answered calls of at most {} s placed within {} min up to {} (threshold {}); this call billed {} s",
            t.short_call_seconds,
            t.burst_window_minutes,
            call.placed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            t.burst_min_calls,
            call.billed_seconds,
        );
        (Rule::ShortCallBurst, t.burst_score, evidence)
    })
}

fn many_destinations(call: &CallFacts, calls: &[CallFacts], t: &Thresholds) -> Found {
    let prefixes: BTreeSet<&str> = in_window(call, calls, t.destinations_window_minutes)
        .map(|c| c.matched_prefix.as_str())
        .collect();
    let n = u32::try_from(prefixes.len()).unwrap_or(u32::MAX);
    (n >= t.destinations_min_distinct).then(|| {
        let shown: Vec<&str> = prefixes.iter().take(20).copied().collect();
        let more = if prefixes.len() > shown.len() { ", …" } else { "" };
        let evidence = format!(
            "{n} distinct destination prefixes within {} min up to {} (threshold {}): {}{more}",
            t.destinations_window_minutes,
            call.placed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            t.destinations_min_distinct,
            shown.join(", "),
        );
        (Rule::ManyDestinations, t.destinations_score, evidence)
    })
}

fn new_account_high_cost(call: &CallFacts, account: &AccountFacts, t: &Thresholds) -> Found {
    let opened = account.opened_at?;
    let age = call.placed_at - opened;
    if age >= Duration::hours(t.new_account_hours) || call.rate_micros < t.high_cost_rate_micros {
        return None;
    }
    let evidence = format!(
        "account {} old (threshold {} h) calling prefix {} ({}) at {} a minute (threshold {})",
        age_text(age),
        t.new_account_hours,
        call.matched_prefix,
        call.country_iso,
        amount(call.rate_micros, &call.currency),
        amount(t.high_cost_rate_micros, &call.currency),
    );
    Some((Rule::NewAccountHighCost, t.new_account_score, evidence))
}

fn spend_after_purchase(call: &CallFacts, account: &AccountFacts, t: &Thresholds) -> Found {
    let purchase = account.last_purchase_before(call.placed_at)?;
    let after = call.placed_at - purchase.at;
    if after > Duration::minutes(t.after_purchase_minutes) || call.cost_micros < t.expensive_call_micros {
        return None;
    }
    let evidence = format!(
        "placed {} after a purchase of {} (threshold {} min); the call cost {} (threshold {}) to prefix {} ({})",
        age_text(after),
        amount(purchase.paid_micros, &call.currency),
        t.after_purchase_minutes,
        amount(call.cost_micros, &call.currency),
        amount(t.expensive_call_micros, &call.currency),
        call.matched_prefix,
        call.country_iso,
    );
    Some((Rule::SpendAfterPurchase, t.after_purchase_score, evidence))
}

fn high_risk_range(call: &CallFacts, ranges: &RiskRanges, t: &Thresholds) -> Found {
    let range = ranges.containing(&call.matched_prefix)?;
    let evidence = format!(
        "priced under prefix {} ({}), inside high-risk range +{}: {}",
        call.matched_prefix, call.country_iso, range.prefix, range.label
    );
    Some((Rule::HighRiskRange, t.high_risk_score, evidence))
}

/// `1.500000 USD`: micro-units as the decimal people read.
fn amount(micros: i64, currency: &str) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    format!("{sign}{}.{:06} {currency}", abs / 1_000_000, abs % 1_000_000)
}

fn age_text(age: Duration) -> String {
    let minutes = age.num_minutes();
    if minutes < 120 {
        format!("{minutes} min")
    } else {
        format!("{} h", age.num_hours())
    }
}
