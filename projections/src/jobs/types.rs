//! The values the job queue passes around: typed ids and names (parsed once, at the edge),
//! a job to enqueue, a claimed job with its lease, and what the admin views return. Plain
//! data only: this module must never touch the database or a clock.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::handler::JobError;
use super::limits::{DEFAULT_MAX_ATTEMPTS, MAX_NAME_CHARS};
use super::JobsError;

/// A job's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks a queue, kind or recurring-job name: 1 to 64 of `A-Z a-z 0-9 _ . : -` (the same rule
/// as the table's CHECK constraints).
fn check_name(what: &str, value: &str) -> Result<(), JobsError> {
    let ok = !value.is_empty()
        && value.chars().count() <= MAX_NAME_CHARS
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(JobsError::Invalid(format!(
            "{what} `{}` is not a valid name; use 1 to {MAX_NAME_CHARS} of A-Z, a-z, 0-9, `_`, `.`, `:`, `-`",
            value.chars().take(80).collect::<String>()
        )))
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<$name, JobsError> {
                check_name($what, value)?;
                Ok($name(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A queue: the unit of polling and of bounded concurrency (`email`, `webhooks`, `sweeper`).
    QueueName,
    "queue"
);
name_type!(
    /// What a job does; picks its handler in a [`super::Registry`] (`email.receipt`).
    JobKind,
    "job kind"
);
name_type!(
    /// A recurring job's name; with the due instant it forms the idempotency key of each run.
    RecurringName,
    "recurring job name"
);

/// Who holds a lease: unique per worker pool (process id and a random suffix), shown in
/// `jobs.worker` and in the logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct WorkerId(String);

impl WorkerId {
    /// A fresh id: `<queue>-<pid>-<8 hex digits>`.
    pub fn generate(queue: &QueueName) -> WorkerId {
        let suffix = Uuid::new_v4().simple().to_string();
        let queue: String = queue.as_str().chars().take(64).collect();
        WorkerId(format!("{queue}-{}-{}", std::process::id(), &suffix[..8]))
    }

    pub fn parse(value: &str) -> Result<WorkerId, JobsError> {
        if value.is_empty() || value.len() > 128 || value.chars().any(char::is_control) {
            return Err(JobsError::Invalid(format!(
                "worker id must be 1 to 128 printable characters (got {} bytes)",
                value.len()
            )));
        }
        Ok(WorkerId(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Dead,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(value: &str) -> Result<JobStatus, JobsError> {
        match value {
            "queued" => Ok(JobStatus::Queued),
            "running" => Ok(JobStatus::Running),
            "done" => Ok(JobStatus::Done),
            "dead" => Ok(JobStatus::Dead),
            other => Err(JobsError::Corrupt(format!(
                "unknown job status `{other}` in the jobs table"
            ))),
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job to enqueue. Build with [`NewJob::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub queue: QueueName,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    /// A repeat of the same (queue, kind, key) returns the first job and changes nothing.
    pub idempotency_key: Option<String>,
    /// Not run before this instant; `None` = as soon as a worker is free.
    pub run_at: Option<DateTime<Utc>>,
    /// Claims before the job is dead-lettered (1..=100).
    pub max_attempts: i32,
}

impl NewJob {
    pub fn new(queue: QueueName, kind: JobKind, payload: serde_json::Value) -> NewJob {
        NewJob {
            queue,
            kind,
            payload,
            idempotency_key: None,
            run_at: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }

    pub fn with_idempotency_key(mut self, key: impl Into<String>) -> NewJob {
        self.idempotency_key = Some(key.into());
        self
    }

    pub fn with_run_at(mut self, run_at: DateTime<Utc>) -> NewJob {
        self.run_at = Some(run_at);
        self
    }

    pub fn with_max_attempts(mut self, max_attempts: i32) -> NewJob {
        self.max_attempts = max_attempts;
        self
    }
}

/// The result of an enqueue: the job's id, and whether this call created it (`false` when the
/// idempotency key was already used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: JobId,
    pub created: bool,
}

/// A claim on a running job. `token` is the fence: only the claim holding it can finish the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub worker: WorkerId,
    pub token: Uuid,
    pub until: DateTime<Utc>,
}

/// A job a worker holds, as handed to its handler.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: JobId,
    pub queue: QueueName,
    pub kind: JobKind,
    pub payload: serde_json::Value,
    pub idempotency_key: Option<String>,
    /// This claim included: 1 on the first run.
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub lease: Lease,
}

impl ClaimedJob {
    /// The payload decoded; a payload that does not decode will never succeed, so the error is
    /// permanent (the job is dead-lettered without further retries).
    pub fn payload_as<T: DeserializeOwned>(&self) -> Result<T, JobError> {
        serde_json::from_value(self.payload.clone()).map_err(|e| {
            JobError::Permanent(format!(
                "payload of job {} ({}) does not decode: {e}",
                self.id, self.kind
            ))
        })
    }

    /// Whether a failure of this run dead-letters the job.
    pub fn is_last_attempt(&self) -> bool {
        self.attempts >= self.max_attempts
    }
}

/// One entry of the dead-letter list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DeadJob {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// How many jobs a queue holds in one status.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueDepth {
    pub queue: String,
    pub status: JobStatus,
    pub jobs: i64,
}

/// A job's row as operators and tests see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobSnapshot {
    pub id: JobId,
    pub queue: String,
    pub kind: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub worker: Option<String>,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}
