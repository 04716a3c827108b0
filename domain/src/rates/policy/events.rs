//! RatePolicy events: each carries the whole new rule set (small), so a fold is trivial and
//! "the rules at instant T" is the last change before T.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::ids::ActorId;
use crate::rates::policy::aggregate::BlockRule;
use crate::rates::pricing::PricingRules;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum PolicyEvent {
    PricingRulesChanged { rules: PricingRules, actor: ActorId },
    BlockListChanged { rules: Vec<BlockRule>, actor: ActorId },
}

impl PolicyEvent {
    pub fn name(&self) -> &'static str {
        match self {
            PolicyEvent::PricingRulesChanged { .. } => "PricingRulesChanged",
            PolicyEvent::BlockListChanged { .. } => "BlockListChanged",
        }
    }
}

impl DomainEvent for PolicyEvent {
    fn event_type(&self) -> String {
        self.name().to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
