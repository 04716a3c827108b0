//! The bounds of the job queue, in one place, each with its unit in its name. Constants and
//! the truncation of error text only; nothing here may read the database or the clock.

/// Queue, kind and recurring-job names (the tables' CHECK constraints say the same).
pub const MAX_NAME_CHARS: usize = 64;
/// An idempotency key (the table's CHECK constraint says the same).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;
/// A job's JSON payload: jobs carry ids and small facts, never documents.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The error text kept on a failed job (`last_error`).
pub const MAX_ERROR_BYTES: usize = 2_000;
/// Attempts a job may be given (the table's CHECK constraint says the same).
pub const MAX_ATTEMPTS_LIMIT: i32 = 100;
/// Attempts when the enqueuer does not say: with the default backoff, about a day of retries.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 12;
/// Jobs claimed by one statement.
pub const MAX_CLAIM_BATCH: usize = 100;
/// Expired leases handed back per claim.
pub const MAX_REAP_BATCH: i64 = 100;
/// Leases: long enough for a heartbeat to arrive, short enough that a dead worker's jobs
/// come back within the hour.
pub const MIN_LEASE_MS: u64 = 100;
pub const MAX_LEASE_MS: u64 = 3_600_000;
/// Rows returned by list queries (dead letters).
pub const MAX_LIST_ROWS: i64 = 1_000;
/// Recurring jobs enqueued by one tick; the rest wait for the next tick.
pub const MAX_RECURRING_PER_TICK: i64 = 100;
/// A recurring job's period.
pub const MAX_EVERY_SECONDS: i32 = 31_536_000;
/// Worker tasks one pool runs at once.
pub const MAX_CONCURRENCY: usize = 256;
/// Rows deleted by one prune call.
pub const MAX_PRUNE_ROWS: i64 = 100_000;

/// `text` cut to at most `max_bytes`, on a character boundary, marked when cut.
pub fn truncate(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    const MARK: &str = " …[truncated]";
    let mut end = max_bytes.saturating_sub(MARK.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(truncate("boom", 2_000), "boom");
        let long = "é".repeat(3_000);
        let cut = truncate(&long, 2_000);
        assert!(cut.len() <= 2_000, "{}", cut.len());
        assert!(cut.ends_with("[truncated]"));
    }
}
