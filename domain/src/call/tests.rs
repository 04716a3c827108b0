//! Tests of the Call aggregate: given/when/then for every command and refusal, the limits, and
//! a property test of the metering protocol driven against the real Account aggregate.
//! Expected amounts are worked out by hand from the tariff, not read back from the code.

mod grants;
mod limits;
mod properties;
mod reports;
mod rerate;
mod start;
mod stop;
mod support;
mod values;
