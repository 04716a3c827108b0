//! The RatePolicy aggregate: validates rule changes and refuses ones that change nothing.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::rates::policy::commands::PolicyCommand;
use crate::rates::policy::events::PolicyEvent;
use crate::rates::pricing::{PricingError, PricingRules};

/// The one stream this aggregate has.
pub const POLICY_STREAM: &str = "rate-policy";
pub const MAX_BLOCK_RULES: usize = 10_000;
const MAX_REASON_CHARS: usize = 200;

/// A destination the admin blocked: a country or a prefix of the E.164 digits, with the
/// reason the caller is shown.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlockRule {
    pub country: Option<String>,
    pub prefix: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("pricing rules: {0}")]
    Pricing(#[from] PricingError),
    #[error("block rule {index}: {message}")]
    BadBlockRule { index: usize, message: String },
    #[error("at most {MAX_BLOCK_RULES} block rules")]
    TooManyBlockRules,
    #[error("nothing changed: these are the rules in force")]
    Unchanged,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatePolicy {
    pricing: Option<PricingRules>,
    blocks: Vec<BlockRule>,
}

impl RatePolicy {
    /// The rules in force (the defaults until an admin sets them).
    pub fn pricing(&self) -> PricingRules {
        self.pricing.clone().unwrap_or_default()
    }
    pub fn blocks(&self) -> &[BlockRule] {
        &self.blocks
    }

    pub fn decide(&self, command: &PolicyCommand) -> Result<Vec<PolicyEvent>, PolicyError> {
        match command {
            PolicyCommand::SetPricingRules { rules, actor } => {
                rules.validate()?;
                if self.pricing.as_ref() == Some(rules) {
                    return Err(PolicyError::Unchanged);
                }
                Ok(vec![PolicyEvent::PricingRulesChanged {
                    rules: rules.clone(),
                    actor: *actor,
                }])
            }
            PolicyCommand::SetBlockList { rules, actor } => {
                validate_blocks(rules)?;
                let mut sorted = rules.clone();
                sorted.sort();
                sorted.dedup();
                if sorted == self.blocks {
                    return Err(PolicyError::Unchanged);
                }
                Ok(vec![PolicyEvent::BlockListChanged {
                    rules: sorted,
                    actor: *actor,
                }])
            }
        }
    }

    pub fn fold(&mut self, event: &PolicyEvent) {
        match event {
            PolicyEvent::PricingRulesChanged { rules, .. } => self.pricing = Some(rules.clone()),
            PolicyEvent::BlockListChanged { rules, .. } => self.blocks = rules.clone(),
        }
    }
}

fn validate_blocks(rules: &[BlockRule]) -> Result<(), PolicyError> {
    if rules.len() > MAX_BLOCK_RULES {
        return Err(PolicyError::TooManyBlockRules);
    }
    for (index, rule) in rules.iter().enumerate() {
        let bad = |message: &str| PolicyError::BadBlockRule {
            index,
            message: message.to_owned(),
        };
        if rule.country.is_some() == rule.prefix.is_some() {
            return Err(bad("name either a country or a prefix"));
        }
        if let Some(c) = &rule.country {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad("country must be a two-letter code such as GB"));
            }
        }
        if let Some(p) = &rule.prefix {
            if p.is_empty() || p.len() > 15 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(
                    "prefix must be 1-15 digits of the international number, without +",
                ));
            }
        }
        let chars = rule.reason.trim().chars().count();
        if chars == 0 || chars > MAX_REASON_CHARS {
            return Err(bad("reason must be 1-200 characters; the caller is shown it"));
        }
    }
    Ok(())
}

impl Aggregate for RatePolicy {
    const TYPE: &'static str = "RatePolicy";
    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = PolicyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PolicyCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PolicyError> {
        for event in self.decide(&command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PolicyEvent) {
        self.fold(&event);
    }
}
