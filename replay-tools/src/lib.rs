//! The operator CLI `ringledger-replay` (audit, verify, rebuild, statements). Its commands are
//! built by the projections issue; this crate holds its place in the workspace's layering.
