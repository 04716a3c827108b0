//! TopUpOffers commands: an admin replaces the offer set.

use serde::{Deserialize, Serialize};

use super::offers::Offers;
use crate::ids::ActorId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum OffersCommand {
    SetOffers { offers: Offers, actor: ActorId },
}
