//! Durable jobs (being written).
