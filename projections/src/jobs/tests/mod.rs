//! Tests of the job queue against a real Postgres, a fresh database per test.

mod kill;
mod lease;
mod queue;
mod recurring;
mod retry;
mod support;
mod worker;
