//! Operators' view of the durable job queues: depths, the dead-letter list, retrying one.

use std::io::Write;

use ringledger_projections::jobs::{JobId, JobQueue};
use sqlx::PgPool;

use crate::output::{Format, Table};
use crate::JobsAction;

pub async fn run(
    pool: &PgPool,
    action: Option<JobsAction>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let queue = JobQueue::new(pool.clone());
    match action.unwrap_or(JobsAction::Depths) {
        JobsAction::Depths => {
            let mut table = Table::new(vec!["queue", "status", "jobs"]);
            for d in queue.depths().await? {
                table.push(vec![d.queue, d.status.as_str().to_owned(), d.jobs.to_string()]);
            }
            table.write(format, out)?;
        }
        JobsAction::Dead { limit } => {
            let mut table = Table::new(vec![
                "id",
                "queue",
                "kind",
                "attempts",
                "created_at",
                "finished_at",
                "last_error",
            ]);
            for d in queue.dead_letters(limit).await? {
                table.push(vec![
                    d.id.0.to_string(),
                    d.queue,
                    d.kind,
                    format!("{}/{}", d.attempts, d.max_attempts),
                    d.created_at.to_rfc3339(),
                    d.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    d.last_error.unwrap_or_default(),
                ]);
            }
            table.write(format, out)?;
        }
        JobsAction::Retry { id } => {
            if queue.retry_dead(JobId(id)).await? {
                eprintln!("job {id} is back on its queue with its attempts reset");
            } else {
                eprintln!("job {id} is not on the dead-letter list");
                return Ok(1);
            }
        }
    }
    Ok(0)
}
