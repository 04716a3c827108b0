//! One row of a rate deck exactly as its file gave it, the unit importers produce, deck
//! events carry (in chunks) and exporters write back.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::rating::BillingPlan;

/// The file formats we import and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeckFormat {
    /// Twilio's voice pricing CSV (Programmable Voice and Elastic SIP Trunking exports).
    Twilio,
    /// `prefix,country,description,rate_per_min,connect_fee,first_increment,next_increment,currency`.
    Generic,
}

impl DeckFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeckFormat::Twilio => "twilio",
            DeckFormat::Generic => "generic",
        }
    }
}

/// Our cost for calls to some destination prefixes, from one line of a deck file.
///
/// One file row is one `DeckRow`, even when a Twilio cell lists several prefixes, so an
/// export writes the file back row for row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeckRow {
    /// 1-based line in the source file (the header is line 1).
    pub line: u64,
    /// Country code as the file gives it; may be non-ISO (`AN`, `ZZ` for satellite).
    pub iso: String,
    pub country: String,
    pub description: String,
    /// Destination prefixes, digits only, never empty.
    pub destination_prefixes: Vec<String>,
    /// Caller-origin prefixes this price applies to, digits only; empty means any origin.
    pub origination_prefixes: Vec<String>,
    /// Our cost per minute, in micro-units.
    pub cost_per_minute: Money,
    pub plan: BillingPlan,
}
