//! Regions (ISO 3166 alpha-2) and which region a number belongs to. We decide it ourselves from
//! the `phonenumber` crate's metadata rather than with `PhoneNumber::country()`, because the
//! crate drops a national number's leading zeros before matching (so every Italian fixed line,
//! and the Vatican's 06 698 range, came back with no region) and because its metadata checks
//! the main country of a shared calling code first, which hands a few crown-dependency ranges
//! to GB. Never read the crate's `country().id()` elsewhere: ask `detect` here.

use std::fmt;
use std::str::FromStr;

use phonenumber::metadata::{Metadata, DATABASE};
use phonenumber::Type;
use serde::{Deserialize, Serialize};

/// An ISO 3166 alpha-2 region code as `phonenumber`'s metadata knows it (`GB`, `JE`, `VA`),
/// always two upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region([u8; 2]);

/// A region code that is not two letters or that the numbering metadata does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a country we know; use a two-letter ISO 3166 code such as GB or US")]
pub struct UnknownRegion(pub String);

impl Region {
    /// Parses a two-letter code, case-insensitively, and checks the metadata knows it.
    pub fn parse(code: &str) -> Result<Region, UnknownRegion> {
        let upper = code.trim().to_ascii_uppercase();
        let bytes = upper.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_uppercase) || DATABASE.by_id(&upper).is_none() {
            return Err(UnknownRegion(code.chars().take(8).collect()));
        }
        Ok(Region([bytes[0], bytes[1]]))
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII upper-case letters (checked in `parse`), so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }

    /// The region's numbering metadata (always present: `parse` checked it).
    pub(crate) fn metadata(&self) -> Option<&'static Metadata> {
        DATABASE.by_id(self.as_str())
    }

    /// The crate's own id, for calling `phonenumber::parse` with a default region.
    pub(crate) fn id(&self) -> Option<phonenumber::country::Id> {
        phonenumber::country::Id::from_str(self.as_str()).ok()
    }

    /// The country calling code of this region (44 for GB, JE, GG and IM).
    pub fn calling_code(&self) -> Option<u16> {
        self.metadata().map(Metadata::country_code)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Region {
    type Err = UnknownRegion;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Region::parse(s)
    }
}

impl TryFrom<String> for Region {
    type Error = UnknownRegion;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Region::parse(&s)
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.as_str().to_owned()
    }
}

/// Ranges where the metadata's first answer is wrong: (calling code, national prefix, region).
/// Checked before the metadata, longest national prefix first is not needed while no two
/// entries overlap (a test checks they don't).
///
/// - `+44 7924`: Ofcom allocates 07924 to Manx Telecom (Isle of Man) and libphonenumber lists
///   it as IM mobile (its IM example number is 07924 123456), but GB's mobile pattern matches
///   it too and GB is checked first, so the metadata alone says GB.
pub(crate) const REGION_OVERRIDES: &[(u16, &str, &str)] = &[(44, "7924", "IM")];

/// The region a number belongs to, or `None` for non-geographic codes (+800, +870, +882, …)
/// and numbers no region of a shared code claims. `national` keeps its leading zeros.
pub(crate) fn detect(calling_code: u16, national: &str) -> Option<Region> {
    if let Some(&(_, _, region)) = REGION_OVERRIDES
        .iter()
        .find(|(code, prefix, _)| *code == calling_code && national.starts_with(prefix))
    {
        return Region::parse(region).ok();
    }
    let regions = DATABASE.region(&calling_code)?;
    if let [only] = regions.as_slice() {
        return Region::parse(only).ok();
    }
    // libphonenumber's getRegionCodeForNumberFromRegionList: the first region whose leading
    // digits match, or (without leading digits) whose patterns know the number.
    for id in regions {
        let Some(meta) = DATABASE.by_id(id) else { continue };
        let claims = match meta.leading_digits() {
            Some(pattern) => pattern.find(national).is_some_and(|m| m.start() == 0),
            None => known_type(meta, national).is_some(),
        };
        if claims {
            return Region::parse(id).ok();
        }
    }
    None
}

/// The metadata for a number: its region's, or the non-geographic entity's (`001`).
pub(crate) fn metadata_for(calling_code: u16, region: Option<Region>) -> Option<&'static Metadata> {
    match region {
        Some(region) => region.metadata(),
        None => DATABASE.by_code(&calling_code)?.into_iter().next(),
    }
}

/// The type of a national number under `meta`, or `None` when no pattern of it matches.
pub(crate) fn known_type(meta: &Metadata, national: &str) -> Option<Type> {
    let d = meta.descriptors();
    if !d.general().is_match(national) {
        return None;
    }
    let kinds = [
        (d.premium_rate(), Type::PremiumRate),
        (d.toll_free(), Type::TollFree),
        (d.shared_cost(), Type::SharedCost),
        (d.voip(), Type::Voip),
        (d.personal_number(), Type::PersonalNumber),
        (d.pager(), Type::Pager),
        (d.uan(), Type::Uan),
        (d.voicemail(), Type::Voicemail),
        (d.fixed_line(), Type::FixedLine),
        (d.mobile(), Type::Mobile),
    ];
    kinds
        .into_iter()
        .find_map(|(desc, kind)| desc.filter(|desc| desc.is_match(national)).map(|_| kind))
}
