//! The rate streams' command services: one RateDeck stream per deck, one RatePolicy stream, one
//! RateCorrections stream.

use ringledger_domain::rates::correction::{CorrectRates, CorrectionError, CorrectionEvent, RateCorrections};
use ringledger_domain::rates::deck::{DeckCommand, DeckEvent, RateDeck, RateDeckError};
use ringledger_domain::rates::policy::{PolicyCommand, PolicyError, PolicyEvent, RatePolicy};

use super::Decider;

impl Decider for RateDeck {
    fn decide_command(&self, command: &DeckCommand) -> Result<Vec<DeckEvent>, RateDeckError> {
        self.decide(command)
    }

    fn fold_event(&mut self, event: &DeckEvent) {
        self.fold(event);
    }

    fn command_name(command: &DeckCommand) -> &'static str {
        command.name()
    }
}

impl Decider for RatePolicy {
    fn decide_command(&self, command: &PolicyCommand) -> Result<Vec<PolicyEvent>, PolicyError> {
        self.decide(command)
    }

    fn fold_event(&mut self, event: &PolicyEvent) {
        self.fold(event);
    }

    fn command_name(command: &PolicyCommand) -> &'static str {
        match command {
            PolicyCommand::SetPricingRules { .. } => "SetPricingRules",
            PolicyCommand::SetBlockList { .. } => "SetBlockList",
        }
    }
}

impl Decider for RateCorrections {
    fn decide_command(&self, command: &CorrectRates) -> Result<Vec<CorrectionEvent>, CorrectionError> {
        self.decide(command)
    }

    fn fold_event(&mut self, event: &CorrectionEvent) {
        self.fold(event);
    }

    fn command_name(_: &CorrectRates) -> &'static str {
        "CorrectRates"
    }
}
