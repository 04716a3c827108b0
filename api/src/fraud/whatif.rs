//! What-if: the fraud rules re-run over history in memory — the same fold as the signals
//! projection, the same rules, any thresholds and ranges — answering which calls would be
//! flagged and which accounts frozen, and why. It only reads the log: no event, read model or
//! checkpoint is written.

use chrono::{DateTime, Duration, Utc};
use ringledger_domain::fraud::{account_score, evaluate, CallFacts, Hit, Thresholds};
use ringledger_domain::AccountId;
use ringledger_projections::event::read_batch;
use ringledger_projections::fraud::Signals;
use ringledger_projections::Position;
use sqlx::PgPool;

use super::ranges::RangeBook;
use super::FraudError;

const READ_BATCH: i64 = 5_000;

#[derive(Debug, Clone)]
pub struct WhatIf {
    /// Calls placed from (inclusive) …
    pub from: Option<DateTime<Utc>>,
    /// … to (inclusive); events after `to` are not read ("as of `to`").
    pub to: Option<DateTime<Utc>>,
    pub thresholds: Thresholds,
    /// `RangeBook::as_listed` judges each call by the list when it was placed, as the live
    /// rules did; `RangeBook::fixed` tries one list on every call.
    pub ranges: RangeBook,
}

/// One account's verdict: its heaviest window's score and whether that freezes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountVerdict {
    pub account_id: AccountId,
    pub score: u32,
    pub would_freeze: bool,
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WhatIfReport {
    pub events_read: u64,
    pub calls_evaluated: u64,
    /// Every hit, by call placement time.
    pub hits: Vec<Hit>,
    pub accounts: Vec<AccountVerdict>,
}

/// Runs the rules over the log as `options` say.
pub async fn what_if(pool: &PgPool, options: &WhatIf) -> Result<WhatIfReport, FraudError> {
    let mut signals = Signals::default();
    let mut report = WhatIfReport::default();
    let mut after = Position::default();
    loop {
        let events = read_batch(pool, after, None, &["Account", "Call"], READ_BATCH).await?;
        let Some(last) = events.last() else { break };
        after = last.position;
        for recorded in &events {
            if options.to.is_some_and(|to| recorded.occurred_at > to) {
                continue;
            }
            report.events_read += 1;
            signals.apply(recorded)?;
        }
    }
    let t = &options.thresholds;
    let lookback = Duration::minutes(t.lookback_minutes());
    let mut book = options.ranges.clone();
    for (account_id, calls) in signals.calls_by_account() {
        let account = signals.accounts.get(&account_id).cloned().unwrap_or_default();
        let mut hits: Vec<Hit> = Vec::new();
        for call in calls.iter().filter(|c| in_range(c, options)) {
            report.calls_evaluated += 1;
            let window = window(&calls, call, lookback);
            let ranges = book.for_call(call.placed_at)?;
            hits.extend(evaluate(call, &account, window, ranges, t));
        }
        if hits.is_empty() {
            continue;
        }
        let score = account_score(t, hits.iter().map(|h| (h.placed_at, h.score)));
        let mut rules: Vec<String> = hits.iter().map(|h| h.rule.as_str().to_owned()).collect();
        rules.sort();
        rules.dedup();
        report.accounts.push(AccountVerdict {
            account_id,
            score,
            would_freeze: score >= t.freeze_score,
            rules,
        });
        report.hits.extend(hits);
    }
    report.hits.sort_by_key(|h| (h.placed_at, h.call_id.0, h.rule));
    report
        .accounts
        .sort_by_key(|a| (std::cmp::Reverse(a.score), a.account_id.0));
    Ok(report)
}

fn in_range(call: &CallFacts, options: &WhatIf) -> bool {
    options.from.is_none_or(|from| call.placed_at >= from) && options.to.is_none_or(|to| call.placed_at <= to)
}

/// The account's calls (sorted by `placed_at`) placed within `lookback` before `call`.
fn window<'a>(calls: &'a [CallFacts], call: &CallFacts, lookback: Duration) -> &'a [CallFacts] {
    let start = calls.partition_point(|c| c.placed_at < call.placed_at - lookback);
    let end = calls.partition_point(|c| c.placed_at <= call.placed_at);
    &calls[start..end.max(start)]
}
