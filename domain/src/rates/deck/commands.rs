//! Rate deck commands. The import job sends `ImportRows` once per chunk (keyed by chunk number,
//! so a retried job neither loses nor doubles a chunk), then `FinishImport`.

use serde::{Deserialize, Serialize};

use crate::ids::{ActorId, DeckId};
use crate::rates::deck::events::DeckSummary;
use crate::rates::DeckRow;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum DeckCommand {
    ImportRows {
        deck_id: DeckId,
        chunk: u32,
        rows: Vec<DeckRow>,
    },
    FinishImport {
        deck_id: DeckId,
        summary: DeckSummary,
    },
    Activate {
        deck_id: DeckId,
        actor: ActorId,
        /// The admin's choice to use a deck some of whose rows were refused.
        skip_bad_rows: bool,
    },
}

impl DeckCommand {
    pub fn name(&self) -> &'static str {
        match self {
            DeckCommand::ImportRows { .. } => "ImportRows",
            DeckCommand::FinishImport { .. } => "FinishImport",
            DeckCommand::Activate { .. } => "Activate",
        }
    }
}
