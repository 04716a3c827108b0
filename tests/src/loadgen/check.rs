//! The end checks, read from the event log itself (not the api's answers, not a projection):
//! every call the nodes placed is over; each ended call is charged `min(cost(billed seconds),
//! reserved for it)` with the rest in `overrun`, agreeing with its Account's one settlement and
//! with what the node was told; the overrun of a call is at most one grant; every Account event
//! balances, every account ends with `available ≥ 0`, nothing reserved and no open
//! reservation, and holds what it was given less what its calls were charged; the read models
//! show no live call and no open reservation; `ringledger-replay verify` passes.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use ringledger_domain::account::{Account, AccountEvent};
use ringledger_domain::call::{talk_seconds, CallEvent, EndCause};
use ringledger_domain::rating::Tariff;
use ringledger_domain::{AccountId, CallId};
use sqlx::PgPool;
use uuid::Uuid;

use super::call::{CallRecord, End};

/// What the checks found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub failures: Vec<String>,
    pub calls_checked: usize,
    pub calls_ended: usize,
    pub calls_failed: usize,
    pub swept: usize,
    pub charged_micros: i64,
    pub overrun_micros: i64,
    pub calls_with_overrun: usize,
    pub verify: String,
}

impl CheckReport {
    fn fail(&mut self, message: String) {
        if self.failures.len() < 10_000 {
            self.failures.push(message);
        }
    }
}

/// How `ringledger-replay verify` is run.
#[derive(Debug, Clone)]
pub enum Verify {
    /// The real binary at this path (`--database-url` and `verify` are passed).
    Binary(PathBuf),
    /// Its library entry point (`ringledger_projections::verify`, what the binary calls).
    Library,
    Skip,
}

impl Verify {
    /// The binary beside this executable (or its parent, for test binaries in `deps/`), if
    /// built; else the library entry point.
    pub fn find() -> Verify {
        let exe = std::env::current_exe().ok();
        let dirs = exe
            .iter()
            .filter_map(|e| e.parent())
            .flat_map(|d| [Some(d.to_path_buf()), d.parent().map(PathBuf::from)])
            .flatten();
        for dir in dirs {
            let candidate = dir.join("ringledger-replay");
            if candidate.is_file() {
                return Verify::Binary(candidate);
            }
        }
        Verify::Library
    }
}

/// A call's stream, as stored.
#[derive(Default)]
struct CallStream {
    tariff: Option<Tariff>,
    grant_seconds: u32,
    events: Vec<CallEvent>,
}

async fn call_streams(pool: &PgPool, ids: &[String]) -> anyhow::Result<HashMap<String, CallStream>> {
    let rows: Vec<(String, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, payload::jsonb FROM events
          WHERE aggregate_type = 'Call' AND aggregate_id = ANY($1) ORDER BY aggregate_id, sequence",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut streams: HashMap<String, CallStream> = HashMap::new();
    for (id, payload) in rows {
        let event: CallEvent = serde_json::from_value(payload)?;
        let stream = streams.entry(id).or_default();
        if let CallEvent::CallPlaced { tariff, policy, .. } = &event {
            stream.tariff = Some(*tariff);
            stream.grant_seconds = policy.grant_seconds;
        }
        stream.events.push(event);
    }
    Ok(streams)
}

async fn account_streams(
    pool: &PgPool,
    accounts: &[AccountId],
) -> anyhow::Result<BTreeMap<AccountId, Vec<AccountEvent>>> {
    let ids: Vec<String> = accounts.iter().map(ToString::to_string).collect();
    let rows: Vec<(String, i64, serde_json::Value)> = sqlx::query_as(
        "SELECT aggregate_id, sequence, payload::jsonb FROM events
          WHERE aggregate_type = 'Account' AND aggregate_id = ANY($1) ORDER BY aggregate_id, sequence",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let mut out: BTreeMap<AccountId, Vec<AccountEvent>> = BTreeMap::new();
    for (id, sequence, payload) in rows {
        let account = AccountId(Uuid::parse_str(&id)?);
        let events = out.entry(account).or_default();
        anyhow::ensure!(
            sequence == events.len() as i64 + 1,
            "account {id}: gap in its stream before sequence {sequence}"
        );
        events.push(serde_json::from_value(payload)?);
    }
    Ok(out)
}

/// Money an account's events say about one call: reserved, and each settlement.
#[derive(Default, Clone)]
struct CallMoney {
    reserved: i64,
    /// Reservations of the call released unused (one no grant recorded).
    released: i64,
    settlements: Vec<(i64, i64, i64, i64)>,
}

/// Runs every check; `funded` is what each account was given.
pub async fn run(
    pool: &PgPool,
    database_url: &str,
    records: &[CallRecord],
    funded: &BTreeMap<AccountId, i64>,
    verify: &Verify,
) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    for r in records {
        for a in &r.anomalies {
            report.fail(format!("node {}: call {:?}: {a}", r.node, r.call_id.map(|c| c.0)));
        }
    }
    let accounts: Vec<AccountId> = funded.keys().copied().collect();
    let account_events = account_streams(pool, &accounts).await?;
    let money = check_accounts(&mut report, &account_events, funded);
    let ids: Vec<String> = records
        .iter()
        .filter_map(|r| r.call_id.map(|c| c.to_string()))
        .collect();
    let streams = call_streams(pool, &ids).await?;
    for r in records {
        let Some(call) = r.call_id else { continue };
        let stream = streams.get(&call.to_string());
        let money = money.get(&call).cloned().unwrap_or_default();
        check_call(&mut report, r, call, stream, &money);
    }
    read_models(&mut report, pool, records, &accounts).await?;
    report.verify = run_verify(&mut report, pool, database_url, verify).await?;
    Ok(report)
}

/// Postings, balances, open reservations and conservation per account; returns each call's
/// money as its account recorded it.
fn check_accounts(
    report: &mut CheckReport,
    streams: &BTreeMap<AccountId, Vec<AccountEvent>>,
    funded: &BTreeMap<AccountId, i64>,
) -> HashMap<CallId, CallMoney> {
    let mut calls: HashMap<CallId, CallMoney> = HashMap::new();
    for (account, given) in funded {
        let Some(events) = streams.get(account) else {
            report.fail(format!("account {account}: no events at all"));
            continue;
        };
        let mut state = Account::default();
        let mut charged = 0i64;
        for (i, event) in events.iter().enumerate() {
            if let Some(postings) = event.postings() {
                let sum: i64 = postings.lines().iter().map(|p| p.amount.micros()).sum();
                if sum != 0 {
                    report.fail(format!(
                        "account {account} event {}: postings sum to {sum}",
                        i + 1
                    ));
                }
            }
            match event {
                AccountEvent::CreditReserved { call_id, amount, .. } => {
                    calls.entry(*call_id).or_default().reserved += amount.micros();
                }
                AccountEvent::ReservationReleased { call_id, amount, .. } => {
                    calls.entry(*call_id).or_default().released += amount.micros();
                }
                AccountEvent::ReservationSettled {
                    call_id,
                    reserved,
                    cost,
                    charged: paid,
                    overrun,
                    ..
                } => {
                    charged += paid.micros();
                    calls.entry(*call_id).or_default().settlements.push((
                        reserved.micros(),
                        cost.micros(),
                        paid.micros(),
                        overrun.micros(),
                    ));
                }
                _ => {}
            }
            state.fold(event);
        }
        let b = state.balances();
        if b.available < 0 {
            report.fail(format!("account {account}: available is {} < 0", b.available));
        }
        if b.reserved != 0 || !state.open_reservations().is_empty() {
            report.fail(format!(
                "account {account}: {} still reserved in {} open reservations",
                b.reserved,
                state.open_reservations().len()
            ));
        }
        if b.available + b.reserved != given - charged {
            report.fail(format!(
                "account {account}: holds {} but was given {given} and charged {charged}",
                b.available + b.reserved
            ));
        }
    }
    calls
}

fn check_call(
    report: &mut CheckReport,
    r: &CallRecord,
    call: CallId,
    stream: Option<&CallStream>,
    money: &CallMoney,
) {
    let Some(stream) = stream else {
        if r.started {
            report.fail(format!("call {call}: started (200) but has no Call stream"));
        }
        return;
    };
    report.calls_checked += 1;
    let Some(tariff) = stream.tariff else {
        report.fail(format!("call {call}: no CallPlaced"));
        return;
    };
    let granted = stream
        .events
        .iter()
        .any(|e| matches!(e, CallEvent::CallGranted { .. }));
    let over = stream
        .events
        .iter()
        .rev()
        .find(|e| matches!(e, CallEvent::CallEnded { .. } | CallEvent::CallFailed { .. }));
    let settlements = if granted && over.is_some() { 1 } else { 0 };
    if money.settlements.len() != settlements {
        let names: Vec<&str> = stream.events.iter().map(CallEvent::name).collect();
        report.fail(format!(
            "call {call}: {} settlements on its account for {} reserved (node saw {:?}; its events {names:?})",
            money.settlements.len(),
            money.reserved,
            r.end
        ));
    }
    match over {
        None => report.fail(format!("call {call} (node {}, {:?}): never ended", r.node, r.end)),
        Some(CallEvent::CallFailed { .. }) => {
            report.calls_failed += 1;
            if let Some((_, _, charged, _)) = money.settlements.first() {
                if *charged != 0 {
                    report.fail(format!("call {call}: failed before answer but charged {charged}"));
                }
            }
            if matches!(r.end, End::Stopped(_)) {
                report.fail(format!(
                    "call {call}: the node's stop was acknowledged but the call failed"
                ));
            }
        }
        Some(CallEvent::CallEnded {
            cause,
            talk_ms,
            billed_seconds,
            cost,
            reserved,
            charged,
            overrun,
            ..
        }) => {
            report.calls_ended += 1;
            if *cause == EndCause::Orphaned {
                report.swept += 1;
            }
            let fail = |report: &mut CheckReport, what: String| report.fail(format!("call {call}: {what}"));
            let talk = talk_seconds(*talk_ms);
            let expected_cost = tariff.cost(talk).map(|m| m.micros()).unwrap_or(-1);
            if cost.micros() != expected_cost || *billed_seconds != tariff.plan.billed_seconds(talk) {
                fail(report, format!("cost {cost} for {billed_seconds} s billed of {talk_ms} ms; the tariff says {expected_cost}"));
            }
            if reserved.micros() != money.reserved - money.released {
                fail(
                    report,
                    format!(
                        "CallEnded says {reserved} reserved, its account reserved {} and released {} unused",
                        money.reserved, money.released
                    ),
                );
            }
            let expected_charge = cost.micros().min(reserved.micros());
            if charged.micros() != expected_charge || overrun.micros() != cost.micros() - expected_charge {
                fail(
                    report,
                    format!("charged {charged} and overrun {overrun} for cost {cost}, reserved {reserved}"),
                );
            }
            if let Some(s) = money.settlements.first() {
                if *s
                    != (
                        reserved.micros(),
                        cost.micros(),
                        charged.micros(),
                        overrun.micros(),
                    )
                {
                    fail(report, format!("its settlement {s:?} differs from CallEnded"));
                }
            }
            let one_grant = tariff
                .cost(u64::from(stream.grant_seconds))
                .map(|m| m.micros())
                .unwrap_or(0);
            if overrun.micros() > one_grant {
                fail(
                    report,
                    format!("overrun {overrun} is more than one grant ({one_grant})"),
                );
            }
            if *talk_ms < r.acked_talk_ms || *talk_ms > r.sent_talk_ms.max(r.acked_talk_ms) {
                fail(
                    report,
                    format!(
                        "billed {talk_ms} ms of talk; the node had {} ms acknowledged and sent at most {} ms",
                        r.acked_talk_ms, r.sent_talk_ms
                    ),
                );
            }
            match (&r.end, r.settlement.as_ref()) {
                (End::Stopped(_), Some(s)) if s["charged_micros"].as_i64() != Some(charged.micros()) => {
                    fail(report, format!("the node was told {s} but {charged} was charged"));
                }
                // A dead node's call is swept; if the api had asked for a hangup first (final
                // unit run out, a freeze, an admin), the sweep ends it with that hangup's cause.
                (End::Abandoned, _) if !swept_causes(cause) => {
                    fail(
                        report,
                        format!("its node died, yet it ended `{cause:?}`, not swept"),
                    );
                }
                _ => {}
            }
            report.charged_micros += charged.micros();
            report.overrun_micros += overrun.micros();
            if overrun.is_positive() {
                report.calls_with_overrun += 1;
            }
        }
        Some(_) => {}
    }
}

/// The read models agree: nothing live, nothing held (they lag the log a little).
async fn read_models(
    report: &mut CheckReport,
    pool: &PgPool,
    records: &[CallRecord],
    accounts: &[AccountId],
) -> anyhow::Result<()> {
    let calls: Vec<Uuid> = records.iter().filter_map(|r| r.call_id.map(|c| c.0)).collect();
    let accounts: Vec<Uuid> = accounts.iter().map(|a| a.0).collect();
    let quiet = crate::eventually(Duration::from_secs(120), || async {
        let (live, held): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM active_calls WHERE call_id = ANY($1)),
                    (SELECT count(*) FROM open_reservations WHERE account_id = ANY($2))",
        )
        .bind(&calls)
        .bind(&accounts)
        .fetch_one(pool)
        .await
        .ok()?;
        (live == 0 && held == 0).then_some(())
    })
    .await;
    if quiet.is_err() {
        report.fail("the read models still show live calls or open reservations after 120 s".into());
    }
    Ok(())
}

async fn run_verify(
    report: &mut CheckReport,
    pool: &PgPool,
    database_url: &str,
    verify: &Verify,
) -> anyhow::Result<String> {
    match verify {
        Verify::Skip => Ok("skipped".into()),
        Verify::Binary(path) => {
            let out = tokio::process::Command::new(path)
                .args(["--database-url", database_url, "verify"])
                .output()
                .await?;
            if !out.status.success() {
                report.fail(format!(
                    "ringledger-replay verify failed ({}): {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(format!("{} ({})", path.display(), out.status))
        }
        Verify::Library => {
            for p in ringledger_projections::all() {
                ringledger_projections::versions::ensure_live(pool, p.as_ref()).await?;
                let diffs = ringledger_projections::verify::verify(pool, &p, 20, |_| {}).await?;
                for d in diffs.iter().filter(|d| !d.is_empty()) {
                    report.fail(format!(
                        "verify {}: table {} differs from a rebuild ({} only live, {} only rebuilt)",
                        p.name(),
                        d.table,
                        d.only_in_live,
                        d.only_in_rebuilt
                    ));
                }
            }
            Ok("library (ringledger_projections::verify, every projection)".into())
        }
    }
}

/// The causes a call whose node died may end with: the sweeper's own, or the cause of a hangup
/// the api had requested before the sweep.
fn swept_causes(cause: &EndCause) -> bool {
    matches!(
        cause,
        EndCause::Orphaned
            | EndCause::FinalUnit
            | EndCause::MaxDuration
            | EndCause::AccountFrozen
            | EndCause::AccountBanned
            | EndCause::Admin
    )
}
