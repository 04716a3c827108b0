//! The balances read model: per account, available / reserved / receivable / disputed,
//! lifetime purchased and spent, and where in the log it was last touched. `BalanceView::apply`
//! is the pure fold (from postings alone); `Balances` is its thin SQL store.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use ringledger_domain::account::AccountEvent;
use ringledger_domain::LedgerAccount;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::cache::VersionCache;
use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceView {
    pub currency: String,
    pub available_micros: i64,
    pub reserved_micros: i64,
    pub receivable_micros: i64,
    pub disputed_micros: i64,
    /// Money paid in through Stripe (refunds are not netted here).
    pub lifetime_purchased_micros: i64,
    /// What calls have been charged to the customer.
    pub lifetime_spent_micros: i64,
    /// Sequence of the last event folded.
    pub last_sequence: u64,
}

impl BalanceView {
    /// Folds one event (at `sequence` in its stream) into the view.
    pub fn apply(&mut self, sequence: u64, event: &AccountEvent) {
        if let Some(postings) = event.postings() {
            for line in postings.lines() {
                let m = line.amount.micros();
                let slot = match line.account {
                    LedgerAccount::Available => &mut self.available_micros,
                    LedgerAccount::Reserved => &mut self.reserved_micros,
                    LedgerAccount::Receivable => &mut self.receivable_micros,
                    LedgerAccount::Disputed => &mut self.disputed_micros,
                    _ => continue,
                };
                *slot = slot.saturating_add(m);
            }
        }
        match event {
            AccountEvent::AccountOpened { currency, .. } => self.currency = currency.to_string(),
            AccountEvent::CreditPurchased { paid, .. } => {
                self.lifetime_purchased_micros = self.lifetime_purchased_micros.saturating_add(paid.micros());
            }
            AccountEvent::ReservationSettled { charged, .. } => {
                self.lifetime_spent_micros = self.lifetime_spent_micros.saturating_add(charged.micros());
            }
            _ => {}
        }
        self.last_sequence = sequence;
    }
}

/// A balance row: the view plus where it stands in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Row_ {
    view: BalanceView,
    last_global_position: i64,
    last_occurred_at: Option<DateTime<Utc>>,
}

/// The balances projection; keeps the rows it folds in memory between batches.
#[derive(Default)]
pub struct Balances {
    cache: VersionCache<Row_>,
}

const CREATE: &str = "
CREATE TABLE balances_v{v} (
    account_id                uuid PRIMARY KEY,
    currency                  text   NOT NULL,
    available_micros          bigint NOT NULL,
    reserved_micros           bigint NOT NULL,
    receivable_micros         bigint NOT NULL,
    disputed_micros           bigint NOT NULL,
    lifetime_purchased_micros bigint NOT NULL,
    lifetime_spent_micros     bigint NOT NULL,
    last_sequence             bigint NOT NULL,
    last_global_position      bigint NOT NULL,
    last_occurred_at          timestamptz NOT NULL
)";

impl Projection for Balances {
    fn name(&self) -> &'static str {
        "balances"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Account"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["balances"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["account_id"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(async move {
            let mut rows = self.cache.take(version);
            apply_batch(conn, version, events, &mut rows).await?;
            self.cache.put(version, rows);
            Ok(())
        })
    }

    fn forget(&self, version: i32) {
        self.cache.forget(version);
    }
}

async fn apply_batch(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
    rows: &mut HashMap<Uuid, Row_>,
) -> Result<(), ProjectionError> {
    let table = versioned("balances", version);
    let mut touched: Vec<Uuid> = events.iter().map(crate::account_uuid).collect::<Result<_, _>>()?;
    touched.sort_unstable();
    touched.dedup();
    let missing: Vec<Uuid> = touched
        .iter()
        .filter(|id| !rows.contains_key(id))
        .copied()
        .collect();
    if !missing.is_empty() {
        rows.extend(load(conn, &table, &missing).await?);
    }
    for recorded in events {
        let event: AccountEvent = recorded.decode()?;
        let row = rows.entry(crate::account_uuid(recorded)?).or_default();
        row.view.apply(recorded.sequence.max(0) as u64, &event);
        row.last_global_position = recorded.position.global_position;
        row.last_occurred_at = Some(recorded.occurred_at);
    }
    store(
        conn,
        &table,
        touched.iter().filter_map(|id| rows.get(id).map(|r| (*id, r))),
    )
    .await
}

async fn load(
    conn: &mut PgConnection,
    table: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Row_>, ProjectionError> {
    let sql = format!(
        "SELECT account_id, currency, available_micros, reserved_micros, receivable_micros, disputed_micros,
                lifetime_purchased_micros, lifetime_spent_micros, last_sequence, last_global_position, last_occurred_at
           FROM {table} WHERE account_id = ANY($1)"
    );
    let found = sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await?;
    let mut rows = HashMap::with_capacity(ids.len());
    for r in found {
        let view = BalanceView {
            currency: r.try_get("currency")?,
            available_micros: r.try_get("available_micros")?,
            reserved_micros: r.try_get("reserved_micros")?,
            receivable_micros: r.try_get("receivable_micros")?,
            disputed_micros: r.try_get("disputed_micros")?,
            lifetime_purchased_micros: r.try_get("lifetime_purchased_micros")?,
            lifetime_spent_micros: r.try_get("lifetime_spent_micros")?,
            last_sequence: r.try_get::<i64, _>("last_sequence")?.max(0) as u64,
        };
        let row = Row_ {
            view,
            last_global_position: r.try_get("last_global_position")?,
            last_occurred_at: r.try_get("last_occurred_at")?,
        };
        rows.insert(r.try_get("account_id")?, row);
    }
    Ok(rows)
}

async fn store<'r>(
    conn: &mut PgConnection,
    table: &str,
    rows: impl Iterator<Item = (Uuid, &'r Row_)>,
) -> Result<(), ProjectionError> {
    let n = rows.size_hint().0;
    let (mut ids, mut cur, mut av, mut re, mut rc, mut di, mut lp, mut ls, mut seq, mut gp, mut at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for (id, row) in rows {
        let Some(occurred_at) = row.last_occurred_at else {
            continue;
        };
        ids.push(id);
        cur.push(row.view.currency.clone());
        av.push(row.view.available_micros);
        re.push(row.view.reserved_micros);
        rc.push(row.view.receivable_micros);
        di.push(row.view.disputed_micros);
        lp.push(row.view.lifetime_purchased_micros);
        ls.push(row.view.lifetime_spent_micros);
        seq.push(i64::try_from(row.view.last_sequence).unwrap_or(i64::MAX));
        gp.push(row.last_global_position);
        at.push(occurred_at);
    }
    let sql = format!(
        "INSERT INTO {table} AS b (account_id, currency, available_micros, reserved_micros, receivable_micros,
                disputed_micros, lifetime_purchased_micros, lifetime_spent_micros, last_sequence,
                last_global_position, last_occurred_at)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                              $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::timestamptz[])
         ON CONFLICT (account_id) DO UPDATE SET
             currency = EXCLUDED.currency, available_micros = EXCLUDED.available_micros,
             reserved_micros = EXCLUDED.reserved_micros, receivable_micros = EXCLUDED.receivable_micros,
             disputed_micros = EXCLUDED.disputed_micros,
             lifetime_purchased_micros = EXCLUDED.lifetime_purchased_micros,
             lifetime_spent_micros = EXCLUDED.lifetime_spent_micros, last_sequence = EXCLUDED.last_sequence,
             last_global_position = EXCLUDED.last_global_position, last_occurred_at = EXCLUDED.last_occurred_at"
    );
    sqlx::query(&sql)
        .bind(ids)
        .bind(cur)
        .bind(av)
        .bind(re)
        .bind(rc)
        .bind(di)
        .bind(lp)
        .bind(ls)
        .bind(seq)
        .bind(gp)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
