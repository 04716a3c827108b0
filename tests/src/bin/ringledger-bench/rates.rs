//! `ringledger-bench rates`: (a) number lookup over a 100,000-prefix deck against binary search
//! over sorted prefixes (rates_lookup.rs); (b) importing a generated Twilio-format file through
//! the real import path — upload, the durable job, `RateDeckRowsImported` chunks and the rate
//! table projection — against a baseline in the same run that parses the same file with the
//! `csv` crate and `COPY`s the rows into a bare table.

use std::io::Write as _;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringledger_api::rates::{ImportRequest, RateService, RatesConfig};
use ringledger_domain::rates::DeckFormat;
use ringledger_domain::{ActorId, Currency};
use ringledger_projections::jobs::JobQueue;
use ringledger_projections::{versions, Runner, RunnerConfig};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::rates_lookup;

/// Country codes with plausible national prefix lengths, for real-looking decks.
const COUNTRIES: [(&str, &str, &str); 12] = [
    ("US", "United States", "1"),
    ("GB", "United Kingdom", "44"),
    ("DE", "Germany", "49"),
    ("FR", "France", "33"),
    ("IT", "Italy", "39"),
    ("IN", "India", "91"),
    ("BR", "Brazil", "55"),
    ("MX", "Mexico", "52"),
    ("NG", "Nigeria", "234"),
    ("PH", "Philippines", "63"),
    ("KZ", "Kazakhstan", "7"),
    ("ZZ", "Satellite", "881"),
];

/// A Twilio voice-pricing file of `rows` rows: unique destination prefixes, some rows with two
/// prefixes in one quoted cell, one in twenty priced by caller origin.
pub fn twilio_file(rows: usize, seed: u64) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(rows * 80);
    out.extend_from_slice(
        b"ISO,Country,Description,Price / min,Origination Prefixes,Destination Prefixes\r\n",
    );
    for i in 0..rows {
        let (iso, country, cc) = COUNTRIES[i % COUNTRIES.len()];
        // A unique national part per row: the row number, spread over 5-8 digits.
        let national = format!("{:0width$}", i, width = 6 + (i % 3));
        let price_micros: u32 = rng.gen_range(1_000..900_000);
        let origin = if i % 20 == 0 { "\"1415,1650\"" } else { "" };
        let prefixes = if i % 7 == 0 {
            format!("\"{cc}{national}1, {cc}{national}2\"")
        } else {
            format!("{cc}{national}")
        };
        let _ = write!(
            out,
            "{iso},{country},{country} - Mobile {},0.{price_micros:06},{origin},{prefixes}\r\n",
            i % 40
        );
    }
    out
}

pub async fn run(url: &str, rows: usize, prefixes: usize, lookups: usize) -> anyhow::Result<()> {
    eprintln!("lookup: {prefixes} prefixes, {lookups} numbers...");
    let lookup = rates_lookup::run(prefixes, lookups)?;
    println!("{:<44} {:>12}", "lookup", "ns/op");
    println!("{:<44} {:>12.1}", "longest-prefix match (ours)", lookup.lookup_ns);
    println!(
        "{:<44} {:>12.1}",
        "binary search, longest first (baseline)", lookup.baseline_lookup_ns
    );
    println!("{:<44} {:>12.1}", "E.164 parse (reported apart)", lookup.parse_ns);

    let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
    ringledger_api::startup::MIGRATOR.run(&pool).await?;
    eprintln!("generating a {rows}-row Twilio file (not measured)...");
    let file = twilio_file(rows, 7);
    let mb = file.len() as f64 / 1e6;
    let baseline = parse_and_copy(&pool, &file).await?;
    let ours = import(&pool, file).await?;
    let (baseline_rate, ours_rate) = (rows as f64 / baseline, rows as f64 / ours);
    println!(
        "\n{:<44} {:>12} {:>10}",
        format!("import of {rows} rows ({mb:.1} MB)"),
        "rows/s",
        "seconds"
    );
    println!(
        "{:<44} {:>12.0} {:>10.2}",
        "csv parse + COPY into a bare table (baseline)", baseline_rate, baseline
    );
    println!(
        "{:<44} {:>12.0} {:>10.2}",
        "real import: job, events, rate table", ours_rate, ours
    );
    println!(
        "import / baseline ratio: {:.3} (target >= 0.3)",
        ours_rate / baseline_rate
    );
    println!(
        "{}",
        json!({
            "lookup_ns": round1(lookup.lookup_ns),
            "baseline_lookup_ns": round1(lookup.baseline_lookup_ns),
            "parse_ns": round1(lookup.parse_ns),
            "import_rows_per_s": ours_rate.round(),
            "parse_copy_rows_per_s": baseline_rate.round(),
        })
    );
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The baseline: parse with the `csv` crate (by header name, as ours does) and COPY the cells
/// as they are into a bare table. Seconds taken.
async fn parse_and_copy(pool: &PgPool, file: &[u8]) -> anyhow::Result<f64> {
    sqlx::query(
        "CREATE UNLOGGED TABLE IF NOT EXISTS bench_raw_rates (iso text, country text, description text,
             price text, origination text, destination text)",
    )
    .execute(pool)
    .await?;
    let started = Instant::now();
    let mut reader = csv::ReaderBuilder::new().from_reader(file);
    let headers = reader.headers()?.clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| anyhow::anyhow!("no {name}"))
    };
    let idx = [
        col("ISO")?,
        col("Country")?,
        col("Description")?,
        col("Price / min")?,
        col("Origination Prefixes")?,
        col("Destination Prefixes")?,
    ];
    let mut conn = pool.acquire().await?;
    let mut copy = conn
        .copy_in_raw("COPY bench_raw_rates FROM STDIN WITH (FORMAT csv)")
        .await?;
    let mut buf = csv::WriterBuilder::new().from_writer(Vec::with_capacity(4 << 20));
    let mut record = csv::StringRecord::new();
    while reader.read_record(&mut record)? {
        buf.write_record(idx.iter().map(|&i| record.get(i).unwrap_or("")))?;
        if buf.get_ref().len() > 4 << 20 {
            let data = std::mem::replace(
                &mut buf,
                csv::WriterBuilder::new().from_writer(Vec::with_capacity(4 << 20)),
            );
            copy.send(data.into_inner()?).await?;
        }
    }
    copy.send(buf.into_inner()?).await?;
    copy.finish().await?;
    Ok(started.elapsed().as_secs_f64())
}

/// Ours: upload, the durable job on a worker pool, then the rate table projection caught up so
/// the rows are queryable. Seconds taken.
async fn import(pool: &PgPool, file: Vec<u8>) -> anyhow::Result<f64> {
    let service = RateService::standalone(pool.clone(), RatesConfig::default());
    let projection = ringledger_projections::by_name("rate_table")?;
    let version = versions::ensure_live(pool, projection.as_ref()).await?;
    let runner = Runner::new(pool.clone(), projection, version, RunnerConfig::default());
    let request = ImportRequest {
        file_name: "bench.csv".into(),
        format: Some(DeckFormat::Twilio),
        currency: Currency::USD,
        effective_from: Utc::now(),
        actor: ActorId::new_v7(),
    };
    let started = Instant::now();
    let submitted = service.submit_import(file, &request).await?;
    let workers =
        ringledger_api::rates::jobs::spawn_pool(service.clone(), JobQueue::new(pool.clone())).await?;
    // The projection follows the import as it goes, as the live runner would.
    let mut projected = Duration::ZERO;
    let status = loop {
        let t = Instant::now();
        runner.catch_up(None, |_| {}).await?;
        projected += t.elapsed();
        let status = service.import_status(submitted.id).await?;
        if status.is_finished() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let job_done = started.elapsed().as_secs_f64();
    let t = Instant::now();
    runner.catch_up(None, |_| {}).await?;
    projected += t.elapsed();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "  job finished after {job_done:.2} s; rate table caught up after {elapsed:.2} s \
         (projection busy {:.2} s in all)",
        projected.as_secs_f64()
    );
    workers.shutdown(Duration::from_secs(10)).await;
    anyhow::ensure!(
        status.status == "imported",
        "import ended as {}: {:?}",
        status.status,
        status.message
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM rate_rows")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(
        rows as u64 == status.rows_done as u64,
        "rate table has {rows} rows, import says {}",
        status.rows_done
    );
    Ok(elapsed)
}
