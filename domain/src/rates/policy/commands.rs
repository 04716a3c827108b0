//! RatePolicy commands: replace the pricing rules, replace the blocked-destination list.

use serde::{Deserialize, Serialize};

use crate::ids::ActorId;
use crate::rates::policy::aggregate::BlockRule;
use crate::rates::pricing::PricingRules;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum PolicyCommand {
    SetPricingRules { rules: PricingRules, actor: ActorId },
    SetBlockList { rules: Vec<BlockRule>, actor: ActorId },
}
