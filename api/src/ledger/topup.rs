//! The TopUpOffers stream's command service.

use ringledger_domain::topup::{OffersCommand, OffersError, OffersEvent, TopUpOffers};

use super::Decider;

impl Decider for TopUpOffers {
    fn decide_command(&self, command: &OffersCommand) -> Result<Vec<OffersEvent>, OffersError> {
        self.decide(command)
    }

    fn fold_event(&mut self, event: &OffersEvent) {
        self.fold(event);
    }

    fn command_name(command: &OffersCommand) -> &'static str {
        match command {
            OffersCommand::SetOffers { .. } => "SetOffers",
        }
    }
}
