//! `fraud.*` configuration: whether the fraud process manager runs, how often it scans, how
//! many events a scan step reads, and the rules' thresholds (`fraud.rules.*`).

use ringledger_domain::fraud::{Thresholds, ThresholdsError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudConfig {
    /// Off: no flags and no freezes (the signals projection still runs).
    pub enabled: bool,
    /// How often the recurring `fraud_scan` job runs.
    pub scan_every_seconds: u32,
    /// Events read per step of a scan.
    pub batch_events: u32,
    /// Steps per scan at most; the next scan takes the rest.
    pub max_steps: u32,
    pub rules: Thresholds,
}

impl Default for FraudConfig {
    fn default() -> Self {
        FraudConfig {
            enabled: true,
            scan_every_seconds: 5,
            batch_events: 1_000,
            max_steps: 100,
            rules: Thresholds::default(),
        }
    }
}

impl FraudConfig {
    pub fn validate(&self) -> Result<(), ThresholdsError> {
        let check = |name: &'static str, value: u32, max: u32| {
            if (1..=max).contains(&value) {
                Ok(())
            } else {
                Err(ThresholdsError {
                    name,
                    value: value.into(),
                    min: 1,
                    max: max.into(),
                })
            }
        };
        check("scan_every_seconds", self.scan_every_seconds, 3_600)?;
        check("batch_events", self.batch_events, 10_000)?;
        check("max_steps", self.max_steps, 10_000)?;
        self.rules.validate()
    }
}
