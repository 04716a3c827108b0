//! Operators' view of the durable job queues.

use std::io::Write;

use sqlx::PgPool;

use crate::output::Format;
use crate::JobsAction;

pub async fn run(
    _pool: &PgPool,
    _action: Option<JobsAction>,
    _format: Format,
    _out: &mut impl Write,
) -> anyhow::Result<i32> {
    anyhow::bail!("the job queue commands arrive with the job queue")
}
