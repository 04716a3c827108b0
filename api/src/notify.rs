//! The coalesced `NOTIFY` the appender sends after commit (never from a trigger: that would
//! serialise commits). However many appends happen, at most one notification goes out per
//! window; runners re-read the log from their checkpoint, so a merged wake-up loses nothing.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;

pub const CHANNEL: &str = "ringledger_events";
const WINDOW: Duration = Duration::from_millis(5);

/// Sends `NOTIFY ringledger_events` after appends, at most once per window, until `stop`.
pub async fn run(pool: PgPool, appended: Arc<Notify>, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = appended.notified() => {}
            _ = stop.notified() => return,
        }
        if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "could not send the append notification");
        }
        tokio::time::sleep(WINDOW).await;
    }
}
