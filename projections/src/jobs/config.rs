//! How a worker pool runs its queue ([`QueueConfig`], every field bounded and checked before
//! the pool starts) and what its shutdown reports. Plain values: nothing here may touch the
//! database or spawn a task.

use super::backoff::Backoff;
use super::lease::check_lease_ms;
use super::limits::MAX_CONCURRENCY;
use super::JobsError;

/// How one pool runs one queue.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Jobs of this queue this pool runs at once (1..=256).
    pub concurrency: usize,
    /// A claim's lease; a worker that stops heart-beating loses its jobs after this long.
    pub lease_ms: u64,
    /// How often a running job's lease is extended; at most half of `lease_ms`.
    pub heartbeat_ms: u64,
    /// Poll interval when no NOTIFY arrives.
    pub poll_ms: u64,
    /// A run taking longer is abandoned and counts as a failed attempt.
    pub job_timeout_ms: u64,
    /// Wake on `NOTIFY ringledger_jobs` as well as polling.
    pub listen: bool,
    /// Delay before each retry.
    pub backoff: Backoff,
    /// How often the queue-depth gauge is refreshed.
    pub depth_every_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            concurrency: 4,
            lease_ms: 30_000,
            heartbeat_ms: 10_000,
            poll_ms: 1_000,
            job_timeout_ms: 600_000,
            listen: true,
            backoff: Backoff::default(),
            depth_every_ms: 10_000,
        }
    }
}

impl QueueConfig {
    pub fn validate(&self) -> Result<(), JobsError> {
        let bad = |what: String| Err(JobsError::Invalid(format!("queue config: {what}")));
        if !(1..=MAX_CONCURRENCY).contains(&self.concurrency) {
            return bad(format!(
                "concurrency is {}; use 1 to {MAX_CONCURRENCY}",
                self.concurrency
            ));
        }
        check_lease_ms(self.lease_ms)?;
        if self.heartbeat_ms == 0 || self.heartbeat_ms.saturating_mul(2) > self.lease_ms {
            return bad(format!(
                "heartbeat_ms is {}; use 1 to half of lease_ms ({}), so one late heartbeat does not lose the lease",
                self.heartbeat_ms, self.lease_ms
            ));
        }
        if !(1..=60_000).contains(&self.poll_ms) {
            return bad(format!("poll_ms is {}; use 1 to 60000", self.poll_ms));
        }
        if !(1..=86_400_000).contains(&self.job_timeout_ms) {
            return bad(format!(
                "job_timeout_ms is {}; use 1 to 86400000 (a day)",
                self.job_timeout_ms
            ));
        }
        if !(100..=3_600_000).contains(&self.depth_every_ms) {
            return bad(format!(
                "depth_every_ms is {}; use 100 to 3600000",
                self.depth_every_ms
            ));
        }
        self.backoff.validate()
    }
}

/// What a shutdown did with the jobs that were running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Runs that ended (done, or failed and recorded) after the shutdown began.
    pub finished: usize,
    /// Still running at the deadline: stopped and handed back to the queue.
    pub returned: usize,
    /// Could not be handed back (database unreachable): they return when their lease expires.
    pub lost: usize,
}
