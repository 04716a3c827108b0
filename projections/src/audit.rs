//! The admin audit trail: who did what to which account, with the reason. Operator actions
//! (adjustments, freezes, bans) name their actor; actions the ledger takes by itself (the
//! receivable freeze, dispute freezes) are recorded with no actor, as `ledger`.

use futures::future::BoxFuture;
use ringledger_domain::account::AccountEvent;
use sqlx::PgConnection;

use crate::event::RecordedEvent;
use crate::projection::{versioned, Projection};
use crate::ProjectionError;

/// One audit entry: the acting person (none for the ledger itself), the action and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub actor: Option<String>,
    pub action: String,
    pub reason: String,
}

/// The audit entry an event makes, if it is an action someone (or the ledger) took.
pub fn entry_for(event: &AccountEvent) -> Option<AuditEntry> {
    let entry = |actor: Option<String>, action: String, reason: &str| {
        Some(AuditEntry {
            actor,
            action,
            reason: reason.to_owned(),
        })
    };
    match event {
        AccountEvent::CreditAdjusted {
            amount,
            reason,
            actor,
            call_id,
            ..
        } => {
            let target = call_id.map(|c| format!(" for call {c}")).unwrap_or_default();
            entry(
                Some(actor.to_string()),
                format!("adjusted credit by {amount}{target}"),
                reason,
            )
        }
        AccountEvent::AccountFrozen { reason, actor, note } => entry(
            actor.map(|a| a.to_string()),
            format!("froze the account ({})", freeze_name(*reason)),
            note,
        ),
        AccountEvent::AccountUnfrozen { reason, actor, note } => entry(
            actor.map(|a| a.to_string()),
            format!("lifted the {} freeze", freeze_name(*reason)),
            note,
        ),
        AccountEvent::AccountBanned { actor, reason } => {
            entry(Some(actor.to_string()), "banned the account".into(), reason)
        }
        AccountEvent::CreditGranted {
            amount, promotion, ..
        } => entry(None, format!("granted {amount}"), promotion),
        _ => None,
    }
}

fn freeze_name(reason: ringledger_domain::account::FreezeReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub struct AuditTrail;

const CREATE: &str = "
CREATE TABLE audit_trail_v{v} (
    global_position bigint PRIMARY KEY,
    account_id      uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    event_id        uuid        NOT NULL,
    actor           text,
    action          text        NOT NULL,
    reason          text        NOT NULL
);
CREATE INDEX audit_trail_v{v}_account ON audit_trail_v{v} (account_id, global_position)";

impl Projection for AuditTrail {
    fn name(&self) -> &'static str {
        "audit_trail"
    }
    fn aggregate_types(&self) -> &'static [&'static str] {
        &["Account"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &["audit_trail"]
    }
    fn create_sql(&self) -> &'static str {
        CREATE
    }
    fn key_columns(&self, _table: &str) -> &'static [&'static str] {
        &["global_position"]
    }
    fn apply_batch<'c>(
        &'c self,
        conn: &'c mut PgConnection,
        version: i32,
        events: &'c [RecordedEvent],
    ) -> BoxFuture<'c, Result<(), ProjectionError>> {
        Box::pin(apply_batch(conn, version, events))
    }
}

async fn apply_batch(
    conn: &mut PgConnection,
    version: i32,
    events: &[RecordedEvent],
) -> Result<(), ProjectionError> {
    let (mut pos, mut acct, mut at, mut ids, mut actors, mut actions, mut reasons) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for recorded in events {
        let event: AccountEvent = recorded.decode()?;
        let Some(entry) = entry_for(&event) else { continue };
        pos.push(recorded.position.global_position);
        acct.push(crate::account_uuid(recorded)?);
        at.push(recorded.occurred_at);
        ids.push(recorded.event_id);
        actors.push(entry.actor);
        actions.push(entry.action);
        reasons.push(entry.reason);
    }
    if pos.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {} (global_position, account_id, occurred_at, event_id, actor, action, reason)
         SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::timestamptz[], $4::uuid[], $5::text[], $6::text[], $7::text[])",
        versioned("audit_trail", version)
    );
    sqlx::query(&sql)
        .bind(pos)
        .bind(acct)
        .bind(at)
        .bind(ids)
        .bind(actors)
        .bind(actions)
        .bind(reasons)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
