//! The call: its metering wire types and its sans-IO state machine.

pub mod machine;
pub mod wire;

#[cfg(test)]
mod tests;
