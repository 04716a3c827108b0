//! Statements: one line per posting on a customer's ledger accounts, with the running balance
//! of that ledger account, the counterparty and a reference (payment, call, dispute...). Each
//! line names its event (id, global position, sequence), so every cent traces to the log.
//! `lines_for` is the pure fold; `Statements` is the thin SQL store.

use std::collections::HashMap;

use futures::future::BoxFuture;
use ringledger_domain::account::AccountEvent;
use ringledger_domain::LedgerAccount;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::cache::VersionCache;
use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

/// One statement line, before it is placed in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub ledger_account: LedgerAccount,
    pub amount_micros: i64,
    pub running_balance_micros: i64,
    pub counterparty: String,
    pub reference: String,
}

/// Running balances of one account's ledger accounts.
pub type Heads = HashMap<LedgerAccount, i64>;

/// The lines an event adds to its account's statement, advancing `heads`.
pub fn lines_for(event: &AccountEvent, heads: &mut Heads) -> Vec<StatementLine> {
    let Some(postings) = event.postings() else {
        return Vec::new();
    };
    let reference = reference(event);
    postings
        .lines()
        .iter()
        .filter(|p| p.account.is_customer())
        .map(|p| {
            let head = heads.entry(p.account).or_insert(0);
            *head = head.saturating_add(p.amount.micros());
            let mut other: Vec<&str> = postings
                .lines()
                .iter()
                .filter(|o| o.account != p.account && o.amount.is_negative() != p.amount.is_negative())
                .map(|o| o.account.as_str())
                .collect();
            other.sort_unstable();
            StatementLine {
                ledger_account: p.account,
                amount_micros: p.amount.micros(),
                running_balance_micros: *head,
                counterparty: other.join("+"),
                reference: reference.clone(),
            }
        })
        .collect()
}

/// What a person needs to find the thing behind a line.
pub fn reference(event: &AccountEvent) -> String {
    match event {
        AccountEvent::CreditPurchased {
            payment_id,
            checkout_session_id,
            ..
        } => match checkout_session_id {
            Some(session) => format!("payment {payment_id} (checkout {session})"),
            None => format!("payment {payment_id}"),
        },
        AccountEvent::CreditGranted {
            grant_id, promotion, ..
        } => format!("grant {grant_id} ({promotion})"),
        AccountEvent::CreditAdjusted {
            reason,
            actor,
            call_id,
            ..
        } => match call_id {
            Some(call) => format!("adjustment by {actor} for call {call}: {reason}"),
            None => format!("adjustment by {actor}: {reason}"),
        },
        AccountEvent::CreditReserved {
            call_id,
            reservation_id,
            ..
        }
        | AccountEvent::ReservationReleased {
            call_id,
            reservation_id,
            ..
        } => {
            format!("call {call_id}, reservation {reservation_id}")
        }
        AccountEvent::ReservationSettled { call_id, .. } => format!("call {call_id}"),
        AccountEvent::PaymentRefunded {
            payment_id,
            charge_id,
            ..
        } => match charge_id {
            Some(charge) => format!("refund of payment {payment_id} (charge {charge})"),
            None => format!("refund of payment {payment_id}"),
        },
        AccountEvent::DisputeOpened {
            dispute_id,
            payment_id,
            ..
        } => format!("dispute {dispute_id} on payment {payment_id}"),
        AccountEvent::DisputeWon { dispute_id, .. } | AccountEvent::DisputeLost { dispute_id, .. } => {
            format!("dispute {dispute_id}")
        }
        AccountEvent::AccountOpened { .. }
        | AccountEvent::AccountFrozen { .. }
        | AccountEvent::AccountUnfrozen { .. }
        | AccountEvent::AccountBanned { .. } => String::new(),
    }
}

/// The statements projection; keeps each account's running balances in memory between batches.
#[derive(Default)]
pub struct Statements {
    heads: VersionCache<Heads>,
}

const CREATE: &str = "
CREATE TABLE statement_lines_v{v} (
    account_id             uuid        NOT NULL,
    sequence               bigint      NOT NULL,
    ledger_account         text        NOT NULL,
    occurred_at            timestamptz NOT NULL,
    event_id               uuid        NOT NULL,
    global_position        bigint      NOT NULL,
    kind                   text        NOT NULL,
    amount_micros          bigint      NOT NULL,
    running_balance_micros bigint      NOT NULL,
    currency               text        NOT NULL,
    counterparty           text        NOT NULL,
    reference              text        NOT NULL,
    -- Append-only order: cheap to maintain while a rebuild streams millions of lines.
    PRIMARY KEY (global_position, ledger_account)
)";

const INDEXES: &str = "
CREATE INDEX IF NOT EXISTS statement_lines_v{v}_account ON statement_lines_v{v} (account_id, sequence)";

impl Projection for Statements {
    fn name(&self) -> &'static str {
        "statements"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Account"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["statement_lines"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn index_sql(&self) -> &'static str {
        INDEXES
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["global_position", "ledger_account"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(async move {
            let mut heads = self.heads.take(version);
            apply_batch(conn, version, events, &mut heads).await?;
            self.heads.put(version, heads);
            Ok(())
        })
    }

    fn forget(&self, version: i32) {
        self.heads.forget(version);
    }
}

#[derive(Default)]
struct Columns {
    account: Vec<Uuid>,
    sequence: Vec<i64>,
    ledger: Vec<&'static str>,
    occurred_at: Vec<chrono::DateTime<chrono::Utc>>,
    event_id: Vec<Uuid>,
    position: Vec<i64>,
    kind: Vec<String>,
    amount: Vec<i64>,
    running: Vec<i64>,
    currency: Vec<String>,
    counterparty: Vec<String>,
    reference: Vec<String>,
}

async fn apply_batch(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
    heads: &mut HashMap<Uuid, Heads>,
) -> Result<(), ProjectionError> {
    let table = versioned("statement_lines", version);
    let mut missing: Vec<Uuid> = events.iter().map(crate::account_uuid).collect::<Result<_, _>>()?;
    missing.retain(|id| !heads.contains_key(id));
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        load_heads(conn, &table, &missing, heads).await?;
    }
    let mut cols = Columns::default();
    for recorded in events {
        let event: AccountEvent = recorded.decode()?;
        let Some(postings) = event.postings() else {
            continue;
        };
        let account = crate::account_uuid(recorded)?;
        let currency = postings.currency().to_string();
        for line in lines_for(&event, heads.entry(account).or_default()) {
            cols.account.push(account);
            cols.sequence.push(recorded.sequence);
            cols.ledger.push(line.ledger_account.as_str());
            cols.occurred_at.push(recorded.occurred_at);
            cols.event_id.push(recorded.event_id);
            cols.position.push(recorded.position.global_position);
            cols.kind.push(recorded.event_type.clone());
            cols.amount.push(line.amount_micros);
            cols.running.push(line.running_balance_micros);
            cols.currency.push(currency.clone());
            cols.counterparty.push(line.counterparty);
            cols.reference.push(line.reference);
        }
    }
    if cols.account.is_empty() {
        return Ok(());
    }
    insert_lines(conn, &table, cols).await
}

/// Running balances of `ids` from their latest statement lines (none yet: all zero).
async fn load_heads(
    conn: &mut PgConnection,
    table: &str,
    ids: &[Uuid],
    heads: &mut HashMap<Uuid, Heads>,
) -> Result<(), ProjectionError> {
    let sql = format!(
        "SELECT DISTINCT ON (account_id, ledger_account) account_id, ledger_account, running_balance_micros
           FROM {table} WHERE account_id = ANY($1)
          ORDER BY account_id, ledger_account, sequence DESC"
    );
    let rows = sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await?;
    for id in ids {
        heads.entry(*id).or_default();
    }
    for r in rows {
        let name: String = r.try_get("ledger_account")?;
        let account = LedgerAccount::CUSTOMER
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| ProjectionError::Corrupt(format!("{table}: unknown ledger account {name}")))?;
        heads
            .entry(r.try_get("account_id")?)
            .or_default()
            .insert(account, r.try_get("running_balance_micros")?);
    }
    Ok(())
}

async fn insert_lines(conn: &mut PgConnection, table: &str, c: Columns) -> Result<(), ProjectionError> {
    let sql = format!(
        "INSERT INTO {table} (account_id, sequence, ledger_account, occurred_at, event_id, global_position, kind,
                              amount_micros, running_balance_micros, currency, counterparty, reference)
         SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::uuid[], $6::bigint[],
                              $7::text[], $8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::text[])"
    );
    sqlx::query(&sql)
        .bind(c.account)
        .bind(c.sequence)
        .bind(c.ledger)
        .bind(c.occurred_at)
        .bind(c.event_id)
        .bind(c.position)
        .bind(c.kind)
        .bind(c.amount)
        .bind(c.running)
        .bind(c.currency)
        .bind(c.counterparty)
        .bind(c.reference)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
