//! Tests of the Account aggregate: given/when/then for every command's success path and every
//! refusal, the posting rules spelled out line by line, and property tests that run random
//! command sequences and check the ledger's invariants after every step.
//!
//! Expected postings are written by hand from ARCHITECTURE.md's rules, never computed by the
//! code under test.

mod call_limits;
mod calls;
mod credit;
mod disputes;
mod freeze_ban;
mod ledger_model;
mod properties;
mod refunds;
mod sequences;
mod support;
