//! Admin's view of the read models: status, verify, blue/green rebuild, drop.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ringledger_projections::runner::Step;
use ringledger_projections::verify::TableDiff;
use ringledger_projections::{event, verify, versions, Projection, Runner, RunnerConfig};
use sqlx::PgPool;

use crate::output::{Format, Table};

fn selected(names: &[String]) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    if names.is_empty() {
        return Ok(ringledger_projections::all());
    }
    names
        .iter()
        .map(|n| ringledger_projections::by_name(n).map_err(anyhow::Error::from))
        .collect()
}

/// A progress bar over global positions, with events/s and time remaining.
async fn progress_bar(pool: &PgPool, label: String) -> anyhow::Result<ProgressBar> {
    let head = event::head(pool).await?;
    let bar = ProgressBar::new(head.global_position.max(0) as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} positions, {per_sec}, {eta} left")?
            .progress_chars("=> "),
    );
    bar.set_message(label);
    bar.enable_steady_tick(Duration::from_millis(250));
    Ok(bar)
}

fn advance(bar: &ProgressBar) -> impl FnMut(Step) + '_ {
    move |step: Step| {
        if step.position.global_position as u64 > bar.length().unwrap_or(0) {
            bar.set_length(step.position.global_position as u64);
        }
        bar.set_position(step.position.global_position.max(0) as u64);
    }
}

fn diff_table(name: &str, diffs: &[TableDiff]) -> Table {
    let mut table = Table::new(vec![
        "projection",
        "table",
        "only_in_live",
        "only_in_rebuilt",
        "sample_live",
        "sample_rebuilt",
    ]);
    for d in diffs {
        let sample =
            |rows: &[serde_json::Value]| rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n");
        table.push(vec![
            name.to_owned(),
            d.table.clone(),
            d.only_in_live.to_string(),
            d.only_in_rebuilt.to_string(),
            sample(&d.live_rows),
            sample(&d.rebuilt_rows),
        ]);
    }
    table
}

pub async fn verify(
    pool: &PgPool,
    names: &[String],
    limit: i64,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    super::ensure_projections(pool).await?;
    let mut all = Table::new(vec![]);
    let mut mismatch = false;
    for p in selected(names)? {
        let bar = progress_bar(pool, format!("verify {}", p.name())).await?;
        let diffs = verify::verify(pool, &p, limit, advance(&bar)).await?;
        bar.finish_and_clear();
        mismatch |= diffs.iter().any(|d| !d.is_empty());
        let t = diff_table(p.name(), &diffs);
        all.headers = t.headers;
        all.rows.extend(t.rows);
    }
    all.write(format, out)?;
    if format == Format::Table {
        writeln!(
            out,
            "{}",
            if mismatch {
                "MISMATCH: live read models differ from a rebuild"
            } else {
                "verify: every projection matches a rebuild"
            }
        )?;
    }
    Ok(if mismatch { 1 } else { 0 })
}

pub async fn rebuild(
    pool: &PgPool,
    name: &str,
    switch: bool,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let p = ringledger_projections::by_name(name)?;
    let live = versions::ensure_live(pool, p.as_ref()).await?;
    let (_, building) = versions::registered(pool, name).await?;
    let version = match building {
        Some(v) => {
            eprintln!("resuming the rebuild of {name} version {v}");
            // A resumed build reads back what it wrote: it needs the indexes.
            versions::create_indexes(pool, p.as_ref(), v).await?;
            v
        }
        None => versions::create_version(pool, p.as_ref()).await?,
    };
    eprintln!("building {name} version {version} from position 0 while version {live} serves");
    let started = Instant::now();
    let runner = Runner::new(pool.clone(), p.clone(), version, RunnerConfig::rebuild());
    let bar = progress_bar(pool, format!("rebuild {name} v{version}")).await?;
    // Up to where the live version is; the last stretch is caught up under its lock.
    let live_at = ringledger_projections::runner::checkpoint(pool, name, live).await?;
    let applied = runner.catch_up(Some(live_at), advance(&bar)).await?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    let compared = Instant::now();
    versions::create_indexes(pool, p.as_ref(), version).await?;
    let diffs = verify::catch_up_and_compare(pool, &p, version, 20, advance(&bar)).await?;
    bar.finish_and_clear();
    eprintln!(
        "applied {applied} events in {secs:.1} s ({:.0} events/s); indexed, caught up and compared in {:.1} s",
        applied as f64 / secs,
        compared.elapsed().as_secs_f64()
    );
    diff_table(name, &diffs).write(format, out)?;
    if switch {
        versions::switch(pool, p.as_ref(), version).await?;
        eprintln!("switched {name} to version {version}; version {live} is kept until `ringledger-replay drop {name} {live}`");
    } else {
        eprintln!("version {version} is built and compared; version {live} stays live (--no-switch)");
    }
    Ok(0)
}

pub async fn drop(pool: &PgPool, name: &str, version: i32) -> anyhow::Result<i32> {
    let p = ringledger_projections::by_name(name)?;
    versions::drop_version(pool, p.as_ref(), version).await?;
    eprintln!("dropped {name} version {version}");
    Ok(0)
}

pub async fn status(pool: &PgPool, format: Format, out: &mut impl Write) -> anyhow::Result<i32> {
    super::ensure_projections(pool).await?;
    let mut table = Table::new(vec![
        "projection",
        "version",
        "state",
        "tx_id",
        "global_position",
        "events_applied",
        "behind_events",
        "updated_at",
    ]);
    for s in versions::status(pool).await? {
        table.push(vec![
            s.projection,
            s.version.to_string(),
            s.state.to_owned(),
            s.position.tx_id.to_string(),
            s.position.global_position.to_string(),
            s.events_applied.to_string(),
            s.behind_events.to_string(),
            s.updated_at.to_rfc3339(),
        ]);
    }
    table.write(format, out)?;
    Ok(0)
}
