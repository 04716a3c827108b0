//! `ringledger-bench rerate`: N ended calls (Call and Account events decided by the real
//! aggregates, written with COPY; not measured) and the `call_margins` read model caught up
//! (not measured), then one rate correction covering 10% of the calls, re-rated by the real
//! process manager (`ReRate` on each Call, `AdjustCredit` on each Account, page records).
//! Baseline in the same run: the same candidate pages read from `call_margins` and each
//! call's events loaded the same way the process manager loads them, with the same
//! concurrency, without re-rating. Last line: JSON with `calls_per_s`, `rerated_calls`,
//! `read_only_calls_per_s`, `ratio`.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use futures::StreamExt;
use ringledger_api::ledger::{Envelope, Ledger, LedgerConfig};
use ringledger_api::rerate::{ReRater, RunOptions, CONCURRENCY, PAGE_CALLS};
use ringledger_api::store::PostgresStore;
use ringledger_domain::account::{Account, AccountCommand};
use ringledger_domain::call::{Call, CallEvent, EndCause, GrantPolicy, NodeId, SealedDestination};
use ringledger_domain::rates::correction::{CorrectRates, RateCorrections, RatePair, CORRECTIONS_STREAM};
use ringledger_domain::{
    AccountId, ActorId, BillingPlan, CallId, Currency, DeckId, GrantId, Money, QuoteId, ReservationId, Tariff,
};
use ringledger_projections::{versions, Runner, RunnerConfig};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

const COPY_CHUNK_ROWS: usize = 50_000;
/// The corrected prefix; the rest of the calls go to landlines.
const PREFIX: &str = "4477";

fn usd(micros: i64) -> Money {
    Money::from_micros(micros, Currency::USD)
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

pub async fn run(url: &str, calls: usize, accounts: usize, share_percent: usize) -> anyhow::Result<()> {
    // Enough connections for every call in flight to hold one while appending (the same pool
    // serves the baseline).
    let pool = PgPoolOptions::new().max_connections(48).connect(url).await?;
    ringledger_api::startup::MIGRATOR.run(&pool).await?;
    let t = Instant::now();
    eprintln!("generating {calls} ended calls over {accounts} accounts with COPY (not measured)...");
    let covered = generate(&pool, calls, accounts.max(1), share_percent.clamp(1, 100)).await?;
    sqlx::query("ANALYZE events").execute(&pool).await?;
    eprintln!(
        "  {:.1} s; catching up call_margins (not measured)...",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let projection = ringledger_projections::by_name("call_margins")?;
    let version = versions::ensure_live(&pool, projection.as_ref()).await?;
    Runner::new(pool.clone(), projection.clone(), version, RunnerConfig::rebuild())
        .catch_up(None, |_| {})
        .await?;
    versions::create_indexes(&pool, projection.as_ref(), version).await?;
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    eprintln!("  {:.1} s", t.elapsed().as_secs_f64());

    let number = correct(&pool).await?;
    let (read_n, read_secs) = read_only(&pool).await?;
    let t = Instant::now();
    let summary = ReRater::standalone(pool.clone())
        .run(number, RunOptions::default(), |_| {})
        .await?;
    let rerate_secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        summary.examined == covered as u64 && read_n == covered as u64,
        "examined {} and read {read_n}, expected {covered}",
        summary.examined
    );
    let calls_per_s = summary.examined as f64 / rerate_secs.max(1e-9);
    let read_per_s = read_n as f64 / read_secs.max(1e-9);
    let ratio = calls_per_s / read_per_s.max(1e-9);
    println!("{:<44} {:>10} {:>12}", "phase", "calls", "calls/s");
    println!(
        "{:<44} {:>10} {:>12.0}   ({read_secs:.2} s)",
        "read the covered calls' events (baseline)", read_n, read_per_s
    );
    println!(
        "{:<44} {:>10} {:>12.0}   ({rerate_secs:.2} s)",
        "re-rate them (call + credit + records)", summary.examined, calls_per_s
    );
    println!(
        "re-rated {} calls, credited {} accounts, refunded {} USD in total",
        summary.calls_rerated,
        summary.accounts_credited,
        usd(summary.refunded_micros).amount_string()
    );
    println!(
        "{}",
        json!({
            "calls": calls,
            "covered_calls": covered,
            "calls_per_s": calls_per_s.round(),
            "rerated_calls": summary.calls_rerated,
            "accounts_credited": summary.accounts_credited,
            "read_only_calls_per_s": read_per_s.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}

/// Accounts opened and funded, then `calls` ended calls spread over them (every
/// `100 / share_percent`-th on the corrected prefix); each call's Account side (reserve,
/// settle) decided by the real Account aggregate. Returns the calls on the corrected prefix.
async fn generate(
    pool: &PgPool,
    calls: usize,
    accounts: usize,
    share_percent: usize,
) -> anyhow::Result<usize> {
    let ids: Vec<AccountId> = (0..accounts).map(|_| AccountId::new_v7()).collect();
    let mut states: Vec<(Account, u64)> = vec![(Account::default(), 0); accounts];
    let mut out = Copy::default();
    for (i, id) in ids.iter().enumerate() {
        let commands = [
            AccountCommand::OpenAccount {
                account_id: *id,
                currency: Currency::USD,
            },
            AccountCommand::GrantCredit {
                grant_id: GrantId::new_v7(),
                amount: usd(1_000_000_000),
                promotion: "bench".into(),
            },
        ];
        for command in commands {
            account_events(&mut states[i], *id, &command, &mut out)?;
        }
    }
    let every = 100 / share_percent;
    let mut covered = 0usize;
    for n in 0..calls {
        let slot = n % accounts;
        let account = ids[slot];
        let call_id = CallId::new_v7();
        let on_prefix = n % every == 0;
        covered += usize::from(on_prefix);
        let placed_at = start() + Duration::seconds(i64::try_from(n).unwrap_or(0));
        let talk_ms = 1_000 + (n as u64 * 7_919) % 58_000;
        let reservation = ReservationId::new_v7();
        for (seq, event) in call_events(call_id, account, on_prefix, placed_at, talk_ms, reservation)?
            .iter()
            .enumerate()
        {
            out.row(
                "Call",
                &call_id.to_string(),
                seq as u64 + 1,
                event.name(),
                &serde_json::to_string(event)?,
            );
        }
        let cost = usd(i64::try_from(talk_ms.div_ceil(1_000)).unwrap_or(0) * 1_000);
        let commands = [
            AccountCommand::ReserveCredit {
                reservation_id: reservation,
                call_id,
                amount: usd(60_000),
            },
            AccountCommand::SettleCall { call_id, cost },
        ];
        for command in commands {
            account_events(&mut states[slot], account, &command, &mut out)?;
        }
        if out.rows >= COPY_CHUNK_ROWS {
            out.flush(pool).await?;
        }
    }
    out.flush(pool).await?;
    Ok(covered)
}

fn account_events(
    (state, seq): &mut (Account, u64),
    id: AccountId,
    command: &AccountCommand,
    out: &mut Copy,
) -> anyhow::Result<()> {
    for e in state.decide(command)? {
        state.fold(&e);
        *seq += 1;
        out.row(
            "Account",
            &id.to_string(),
            *seq,
            e.name(),
            &serde_json::to_string(&e)?,
        );
    }
    Ok(())
}

/// Placed at 0.06/min per second (our cost 0.04), granted 60 s, answered, ended after
/// `talk_ms`: what the real Call aggregate records for such a call.
fn call_events(
    call_id: CallId,
    account: AccountId,
    on_prefix: bool,
    placed_at: DateTime<Utc>,
    talk_ms: u64,
    reservation: ReservationId,
) -> anyhow::Result<Vec<CallEvent>> {
    let tariff = Tariff::new(usd(60_000), BillingPlan::per_second(usd(0)))?;
    let (prefix, description) = if on_prefix {
        (PREFIX, "Mobile - Vodafone")
    } else {
        ("442", "Landline")
    };
    let events = vec![
        CallEvent::CallPlaced {
            call_id,
            account_id: account,
            node_id: NodeId::parse("media-1")?,
            destination: SealedDestination::new(1, vec![0xA5; 40])?,
            country_iso: "GB".into(),
            country: "United Kingdom".into(),
            matched_prefix: prefix.into(),
            description: description.into(),
            tariff,
            cost_per_minute: Some(usd(40_000)),
            deck_id: DeckId(Uuid::nil()),
            quote_id: QuoteId::new_v7(),
            max_ring_seconds: 60,
            max_call_seconds: 14_400,
            spend_limit: usd(50_000_000),
            policy: GrantPolicy::default(),
            placed_at,
        },
        CallEvent::CallGranted {
            reservation_id: reservation,
            amount: usd(60_000),
            reserved: usd(60_000),
            granted_seconds: 60,
            final_unit: None,
            at: placed_at,
        },
        CallEvent::CallAnswered {
            seq: 1,
            at: placed_at + Duration::seconds(2),
        },
    ];
    let mut call = Call::default();
    for e in &events {
        call.fold(e);
    }
    let stop = ringledger_domain::call::CallCommand::ReportStop {
        seq: 2,
        talk_ms,
        cause: EndCause::CallerHangup,
        quality: None,
        now: placed_at + Duration::seconds(2) + Duration::milliseconds(i64::try_from(talk_ms).unwrap_or(0)),
    };
    let ended = call.decide(&stop)?.events;
    Ok(events.into_iter().chain(ended).collect())
}

/// Rows for `COPY events`, flushed in chunks.
#[derive(Default)]
struct Copy {
    buffer: String,
    rows: usize,
}

impl Copy {
    fn row(&mut self, kind: &str, id: &str, seq: u64, name: &str, payload: &str) {
        let stamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let metadata = json!({ "occurred_at": stamp }).to_string();
        self.buffer.push_str(&format!(
            "{kind}\t{id}\t{seq}\t{name}\t1\t{}\t{}\t{stamp}\n",
            escape(payload),
            escape(&metadata)
        ));
        self.rows += 1;
    }

    async fn flush(&mut self, pool: &PgPool) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut conn = pool.acquire().await?;
        let mut copy = conn
            .copy_in_raw("COPY events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, occurred_at) FROM STDIN")
            .await?;
        copy.send(self.buffer.as_bytes()).await?;
        copy.finish().await?;
        self.buffer.clear();
        self.rows = 0;
        Ok(())
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

/// The correction: Vodafone's cost and price halved for the whole period.
async fn correct(pool: &PgPool) -> anyhow::Result<u64> {
    let store = Arc::new(PostgresStore::new(pool.clone()));
    let ledger: Ledger<RateCorrections, PostgresStore> = Ledger::new(store, LedgerConfig::default());
    let command = CorrectRates {
        prefix: PREFIX.into(),
        deck_id: None,
        old: RatePair {
            cost_per_minute: usd(40_000),
            selling_per_minute: usd(60_000),
        },
        new: RatePair {
            cost_per_minute: usd(20_000),
            selling_per_minute: usd(30_000),
        },
        effective_from: start(),
        effective_to: None,
        reason: "benchmark".into(),
        actor: ActorId(Uuid::nil()),
    };
    let outcome = ledger.execute(CORRECTIONS_STREAM, Envelope::new(command)).await?;
    anyhow::ensure!(outcome.events.len() == 1, "the correction recorded one event");
    Ok(1)
}

/// Baseline: the same pages of candidates from `call_margins`, and each call's events loaded
/// as the process manager's ledger loads them (snapshot, then the stream), `CONCURRENCY` at
/// once; nothing decided or written.
async fn read_only(pool: &PgPool) -> anyhow::Result<(u64, f64)> {
    let store = Arc::new(PostgresStore::new(pool.clone()));
    let calls: Ledger<Call, PostgresStore> = Ledger::new(store, LedgerConfig::default());
    let started = Instant::now();
    let (mut after_at, mut after_id, mut n) = (start(), Uuid::nil(), 0u64);
    loop {
        let page: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT call_id, placed_at FROM call_margins
              WHERE matched_prefix = $1 AND placed_at >= $2 AND (placed_at, call_id) > ($3, $4) AND state = 'ended'
              ORDER BY placed_at, call_id LIMIT $5",
        )
        .bind(PREFIX)
        .bind(start())
        .bind(after_at)
        .bind(after_id)
        .bind(PAGE_CALLS)
        .fetch_all(pool)
        .await?;
        let Some(last) = page.last() else { break };
        (after_id, after_at) = *last;
        let loaded: Vec<anyhow::Result<()>> = futures::stream::iter(page.iter().map(|(id, _)| *id))
            .map(|id| {
                let calls = calls.clone();
                async move {
                    let call = calls.load(&id.to_string()).await?;
                    anyhow::ensure!(call.terms().is_some(), "call {id} loaded empty");
                    Ok(())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for r in loaded {
            r?;
        }
        n += page.len() as u64;
    }
    Ok((n, started.elapsed().as_secs_f64()))
}
