//! The TopUpOffers aggregate: validates a new offer set, refuses one that changes nothing, and
//! numbers the versions.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use super::commands::OffersCommand;
use super::events::OffersEvent;
use super::offers::{Choice, Offers, OffersError, PurchaseTerms};

/// The one stream this aggregate has.
pub const OFFERS_STREAM: &str = "topup-offers";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopUpOffers {
    version: u32,
    offers: Option<Offers>,
}

impl TopUpOffers {
    /// The version in force; 0 before the first set.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn offers(&self) -> Option<&Offers> {
        self.offers.as_ref()
    }

    /// The terms `choice` is bought under now.
    pub fn terms(&self, choice: &Choice) -> Result<PurchaseTerms, OffersError> {
        self.offers
            .as_ref()
            .ok_or(OffersError::NotSet)?
            .terms(choice, self.version)
    }

    pub fn decide(&self, command: &OffersCommand) -> Result<Vec<OffersEvent>, OffersError> {
        match command {
            OffersCommand::SetOffers { offers, actor } => {
                offers.validate()?;
                if self.offers.as_ref() == Some(offers) {
                    return Err(OffersError::Unchanged);
                }
                Ok(vec![OffersEvent::TopUpOffersChanged {
                    version: self.version.saturating_add(1),
                    offers: offers.clone(),
                    actor: *actor,
                }])
            }
        }
    }

    pub fn fold(&mut self, event: &OffersEvent) {
        match event {
            OffersEvent::TopUpOffersChanged { version, offers, .. } => {
                self.version = *version;
                self.offers = Some(offers.clone());
            }
        }
    }
}

impl Aggregate for TopUpOffers {
    const TYPE: &'static str = "TopUpOffers";
    type Command = OffersCommand;
    type Event = OffersEvent;
    type Error = OffersError;
    type Services = ();

    async fn handle(
        &mut self,
        command: OffersCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), OffersError> {
        for event in self.decide(&command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: OffersEvent) {
        self.fold(&event);
    }
}
