//! `ringledger-replay fraud what-if`: the fraud rules re-run over history in memory with the
//! configured or overridden thresholds and ranges; prints which calls would be flagged and
//! which accounts frozen, and why. Reads the log and the ranges table; writes nothing.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use ringledger_api::fraud::{ranges, what_if, WhatIf, WhatIfReport};
use ringledger_domain::fraud::{RiskRanges, Rule, Thresholds};
use sqlx::PgPool;

use super::parse_instant;
use crate::output::{Format, Table};

pub struct WhatIfArgs {
    pub from: Option<String>,
    pub to: Option<String>,
    pub threshold: Option<u32>,
    pub set: Vec<String>,
    pub only: Vec<String>,
    pub ranges: Option<std::path::PathBuf>,
}

pub async fn what_if_command(
    pool: &PgPool,
    args: WhatIfArgs,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let mut thresholds = overridden(&Thresholds::default(), &args.set)?;
    if let Some(n) = args.threshold {
        thresholds.freeze_score = n;
    }
    thresholds.validate()?;
    let only = args
        .only
        .iter()
        .map(|name| {
            Rule::parse(name).with_context(|| {
                let known: Vec<&str> = ringledger_domain::fraud::ALL_RULES
                    .iter()
                    .map(|r| r.as_str())
                    .collect();
                format!("no rule named `{name}`; known: {}", known.join(", "))
            })
        })
        .collect::<anyhow::Result<Vec<Rule>>>()?;
    let ranges = match &args.ranges {
        Some(path) => ranges::RangeBook::fixed(ranges_from(path)?),
        None => ranges::RangeBook::as_listed(ranges::history(pool).await?),
    };
    let options = WhatIf {
        from: args.from.as_deref().map(parse_instant).transpose()?,
        to: args.to.as_deref().map(parse_instant).transpose()?,
        thresholds,
        ranges,
    };
    let mut report = what_if(pool, &options).await?;
    if !only.is_empty() {
        report.hits.retain(|h| only.contains(&h.rule));
    }
    print(&report, format, out)?;
    Ok(0)
}

/// `key=value` overrides of the thresholds, by their configuration names.
pub fn overridden(base: &Thresholds, set: &[String]) -> anyhow::Result<Thresholds> {
    let mut value = serde_json::to_value(base)?;
    for pair in set {
        let (key, raw) = pair
            .split_once('=')
            .with_context(|| format!("`{pair}`: write --set NAME=VALUE, e.g. --set burst_min_calls=3"))?;
        let slot = value
            .get_mut(key.trim())
            .with_context(|| format!("no threshold named `{key}`; see docs/fraud.md"))?;
        let n: i64 = raw
            .trim()
            .parse()
            .with_context(|| format!("`{raw}` is not a whole number (threshold `{key}`)"))?;
        *slot = serde_json::Value::from(n);
    }
    serde_json::from_value(value).context("a threshold is out of its type's range")
}

fn ranges_from(path: &Path) -> anyhow::Result<RiskRanges> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = ranges::parse_csv(&text, &path.display().to_string())?;
    Ok(RiskRanges::new(parsed.into_iter().map(|(r, _)| r).collect())?)
}

fn print(report: &WhatIfReport, format: Format, out: &mut impl Write) -> anyhow::Result<()> {
    let verdict = |account| report.accounts.iter().find(|a| a.account_id == account);
    let mut hits = Table::new(vec![
        "placed_at",
        "call",
        "account",
        "rule",
        "score",
        "account_score",
        "would_freeze",
        "evidence",
    ])
    .titled(format!(
        "{} calls evaluated over {} events: {} flags",
        report.calls_evaluated,
        report.events_read,
        report.hits.len()
    ));
    for h in &report.hits {
        let v = verdict(h.account_id);
        hits.push(vec![
            h.placed_at.to_rfc3339(),
            h.call_id.to_string(),
            h.account_id.to_string(),
            h.rule.as_str().to_owned(),
            h.score.to_string(),
            v.map_or(0, |v| v.score).to_string(),
            v.is_some_and(|v| v.would_freeze).to_string(),
            h.evidence.clone(),
        ]);
    }
    if format == Format::Table {
        let mut accounts =
            Table::new(vec!["account", "score", "would_freeze", "rules"]).titled("accounts with flags");
        for a in &report.accounts {
            accounts.push(vec![
                a.account_id.to_string(),
                a.score.to_string(),
                a.would_freeze.to_string(),
                a.rules.join(" "),
            ]);
        }
        accounts.write(format, out)?;
        writeln!(out)?;
    }
    hits.write(format, out)
}
