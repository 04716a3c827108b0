//! Read models folded from the event log: pure `apply` functions over plain structs. The
//! catch-up runner, durable jobs and SQL stores arrive with the projections issue; what is here
//! is the pure balance fold every later read model is checked against. Projections never write
//! events.

pub mod balance;
