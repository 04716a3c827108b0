//! Destinations we refuse, and the reason shown to the caller: emergency numbers (checked on
//! what was typed, since `999` or `+44 999` never parse as E.164), short codes, premium rate,
//! satellite networks, and the admin's own list of countries and prefixes (loaded by the api
//! from the database; here only the type and the check). A refused call never rings a phone,
//! so these checks must never let an emergency number through to the trunk.

use serde::{Deserialize, Serialize};

use super::prefix_table::{PrefixEntry, PrefixTable, PrefixTableError};
use super::rules;
use crate::e164::{raw_digits, split_calling_code, typed_digits, Region, E164};

/// Inputs of at most this many digits, in national form, that do not parse are short codes.
pub const SHORT_CODE_MAX_DIGITS: usize = 6;
/// The most admin rules one list takes.
pub const MAX_ADMIN_RULES: usize = 100_000;

/// Why a destination is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockKind {
    Emergency,
    ShortCode,
    PremiumRate,
    Satellite,
    Admin,
}

/// A refusal, with the notice to show the caller (never containing the number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}")]
pub struct Blocked {
    pub kind: BlockKind,
    pub reason: String,
}

impl Blocked {
    fn new(kind: BlockKind, reason: &str) -> Blocked {
        Blocked {
            kind,
            reason: reason.to_owned(),
        }
    }
}

/// What an admin blocks: a whole region, or E.164 digit prefixes (`"4470"`, `"7"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum AdminTarget {
    Country(Region),
    Prefix(String),
}

/// One row of the admin's block list, as the api loads it from the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminBlock {
    pub target: AdminTarget,
    /// Shown to the caller; an empty reason shows a generic notice.
    pub reason: String,
}

/// Why the admin's block list could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockRuleError {
    #[error("admin block list: {0}")]
    Prefix(#[from] PrefixTableError),
    #[error("admin block list has {0} rules, more than {MAX_ADMIN_RULES}; block whole prefixes instead")]
    TooMany(usize),
}

const ADMIN_DEFAULT_REASON: &str = "calls to this destination are not allowed on this service";

/// The default rules plus the admin's; immutable once built, shared like the rate table.
#[derive(Debug)]
pub struct BlockList {
    /// (calling code, region, emergency numbers in national form).
    emergency: Vec<(u16, Region, &'static [&'static str])>,
    admin_countries: Vec<(Region, String)>,
    admin_prefixes: PrefixTable<String>,
}

impl BlockList {
    /// Emergency numbers, premium rate and satellite codes; no admin rules.
    pub fn default_rules() -> BlockList {
        let emergency = rules::EMERGENCY
            .iter()
            .filter_map(|&(code, numbers)| {
                let region = Region::parse(code).ok()?;
                Some((region.calling_code()?, region, numbers))
            })
            .collect();
        debug_assert_eq!(
            Vec::len(&emergency),
            rules::EMERGENCY.len(),
            "every region is known"
        );
        BlockList {
            emergency,
            admin_countries: Vec::new(),
            admin_prefixes: PrefixTable::empty(),
        }
    }

    /// These rules plus the admin's (replacing any admin rules loaded before).
    pub fn with_admin_rules(self, admin: Vec<AdminBlock>) -> Result<BlockList, BlockRuleError> {
        if admin.len() > MAX_ADMIN_RULES {
            return Err(BlockRuleError::TooMany(admin.len()));
        }
        let reason = |r: String| {
            if r.trim().is_empty() {
                ADMIN_DEFAULT_REASON.to_owned()
            } else {
                r
            }
        };
        let mut countries = Vec::new();
        let mut prefixes = Vec::new();
        for rule in admin {
            match rule.target {
                AdminTarget::Country(region) => countries.push((region, reason(rule.reason))),
                AdminTarget::Prefix(destination) => prefixes.push(PrefixEntry {
                    destination,
                    origin: None,
                    value: reason(rule.reason),
                }),
            }
        }
        let admin_prefixes = PrefixTable::build(prefixes)?;
        Ok(BlockList {
            admin_countries: countries,
            admin_prefixes,
            ..self
        })
    }

    /// Checks what was typed before it is parsed: emergency numbers in national form for the
    /// caller's region (`000` in AU, `15` in FR; `112` and `911` everywhere) or after a
    /// country code (`+44 999`, `00 33 112`). With no region, any country's list applies.
    pub fn check_typed(&self, input: &str, user_region: Option<Region>) -> Option<Blocked> {
        let (plus, raw) = raw_digits(input)?;
        // `000` is Australia's emergency number and also "00" + "0": check both readings.
        let national = !plus
            && (rules::EMERGENCY_EVERYWHERE.contains(&raw.as_str())
                || self.emergency.iter().any(|(_, region, numbers)| {
                    user_region.is_none_or(|r| r == *region) && numbers.contains(&raw.as_str())
                }));
        let international = || match typed_digits(input, user_region) {
            Some((true, digits)) => {
                split_calling_code(&digits).is_some_and(|(code, rest)| self.is_emergency(code, rest))
            }
            _ => false,
        };
        (national || international()).then(|| Blocked::new(BlockKind::Emergency, rules::EMERGENCY_NOTICE))
    }

    /// Checks a parsed number: emergency (defensively), satellite codes, premium rate (the
    /// numbering metadata's own class and our prefix list), then the admin's rules.
    pub fn check_number(&self, number: &E164) -> Option<Blocked> {
        let (code, digits) = (number.country_code(), number.digits());
        if self.is_emergency(code, number.national()) {
            return Some(Blocked::new(BlockKind::Emergency, rules::EMERGENCY_NOTICE));
        }
        if rules::SATELLITE_CODES.contains(&code) {
            return Some(Blocked::new(BlockKind::Satellite, rules::SATELLITE_NOTICE));
        }
        let premium_prefix = rules::PREMIUM_PREFIXES.iter().any(|(p, _)| digits.starts_with(p));
        if premium_prefix || number.number_type() == phonenumber::Type::PremiumRate {
            return Some(Blocked::new(BlockKind::PremiumRate, rules::PREMIUM_NOTICE));
        }
        let country = self
            .admin_countries
            .iter()
            .find(|(r, _)| number.region() == Some(*r));
        let reason = country
            .map(|(_, reason)| reason)
            .or_else(|| self.admin_prefixes.lookup(digits, None).map(|m| m.value))?;
        Some(Blocked::new(BlockKind::Admin, reason))
    }

    /// Whether `national` is an emergency number in a region of calling code `code`.
    fn is_emergency(&self, code: u16, national: &str) -> bool {
        rules::EMERGENCY_EVERYWHERE.contains(&national)
            || self
                .emergency
                .iter()
                .any(|(c, _, numbers)| *c == code && numbers.contains(&national))
    }

    /// Whether unparseable input is a short code: few digits, no country code.
    pub(crate) fn is_short_code(input: &str, user_region: Option<Region>) -> bool {
        typed_digits(input, user_region)
            .is_some_and(|(international, digits)| !international && digits.len() <= SHORT_CODE_MAX_DIGITS)
    }

    pub(crate) fn short_code() -> Blocked {
        Blocked::new(BlockKind::ShortCode, rules::SHORT_CODE_NOTICE)
    }
}

impl Default for BlockList {
    fn default() -> Self {
        BlockList::default_rules()
    }
}
