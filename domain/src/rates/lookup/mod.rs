//! From a dialled number to a rate: read what the caller typed into an `E164` (or refuse it
//! with the notice to show: emergency numbers, short codes, premium rate, satellite, the
//! admin's list), then find the rate by longest-prefix match in an immutable `PrefixTable`.
//! Pure: tables are built from rows handed in and shared by the caller behind an `Arc`; this
//! module never reads a database or a clock, and never logs a full number.

mod blocked;
mod prefix_table;
mod rules;
#[cfg(test)]
mod tests;

pub use blocked::{
    AdminBlock, AdminTarget, BlockKind, BlockList, BlockRuleError, Blocked, MAX_ADMIN_RULES,
    SHORT_CODE_MAX_DIGITS,
};
pub use prefix_table::{Match, PrefixEntry, PrefixTable, PrefixTableError, MAX_ENTRIES, MAX_PREFIX_DIGITS};

use crate::e164::{ParseNumberError, Region, E164};

/// Why a dialled number cannot be called; the message is the notice for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error(transparent)]
    Invalid(#[from] ParseNumberError),
    #[error(transparent)]
    Blocked(#[from] Blocked),
}

impl BlockList {
    /// The one entry point from input to a callable number: refuses emergency numbers on
    /// what was typed, parses, refuses unparseable short codes, then checks the number.
    pub fn classify(&self, input: &str, user_region: Option<Region>) -> Result<E164, DialError> {
        if let Some(blocked) = self.check_typed(input, user_region) {
            return Err(DialError::Blocked(blocked));
        }
        let number = E164::parse(input, user_region).map_err(|error| {
            if BlockList::is_short_code(input, user_region) {
                DialError::Blocked(BlockList::short_code())
            } else {
                DialError::Invalid(error)
            }
        })?;
        match self.check_number(&number) {
            Some(blocked) => Err(DialError::Blocked(blocked)),
            None => Ok(number),
        }
    }
}
