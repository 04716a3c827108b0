//! `calls.*` configuration: the per-account limits and the grant policy every new call is
//! placed under (recorded in `CallPlaced`, so a live call keeps its terms).

use ringledger_domain::call::{GrantPolicy, Limits, LimitsError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    pub limits: Limits,
    pub policy: GrantPolicy,
    /// How often media nodes re-register; silent for 3× this, a node gets no new calls.
    pub heartbeat_seconds: u32,
    /// How long past a final grant's ceiling the api waits for the node's `stop` before it
    /// sends `hangup` (reason `final_unit`).
    pub final_unit_grace_seconds: u32,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            limits: Limits::default(),
            policy: GrantPolicy::default(),
            heartbeat_seconds: 15,
            final_unit_grace_seconds: 5,
        }
    }
}

impl CallsConfig {
    pub fn validate(&self) -> Result<(), LimitsError> {
        self.limits.validate()?;
        self.policy.validate()?;
        if !(1..=300).contains(&self.heartbeat_seconds) {
            return Err(LimitsError::OutOfRange {
                name: "heartbeat_seconds",
                value: self.heartbeat_seconds.into(),
                min: 1,
                max: 300,
            });
        }
        if !(1..=300).contains(&self.final_unit_grace_seconds) {
            return Err(LimitsError::OutOfRange {
                name: "final_unit_grace_seconds",
                value: self.final_unit_grace_seconds.into(),
                min: 1,
                max: 300,
            });
        }
        Ok(())
    }
}
