//! TopUpOffers events: each carries the whole offer set (small) and its version, so "the terms
//! of version N" is one event and a fold is trivial.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::offers::Offers;
use crate::ids::ActorId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum OffersEvent {
    TopUpOffersChanged {
        /// 1 for the first set, then one more per change.
        version: u32,
        offers: Offers,
        actor: ActorId,
    },
}

impl DomainEvent for OffersEvent {
    fn event_type(&self) -> String {
        "TopUpOffersChanged".to_owned()
    }

    fn event_version(&self) -> String {
        "1".to_owned()
    }
}
