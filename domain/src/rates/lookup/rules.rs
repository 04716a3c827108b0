//! The default block lists as data: emergency numbers by country, premium-rate prefixes and
//! satellite calling codes. Sources are in docs/decisions/0004-number-lookup.md; the emergency
//! lists follow libphonenumber's ShortNumberMetadata.xml (v9.0.33, shipped with the
//! `phonenumber` crate) plus the national additions noted inline. Only data here, no logic.

/// Emergency numbers dialled in national form, by ISO 3166 region.
pub(crate) const EMERGENCY: &[(&str, &[&str])] = &[
    ("AE", &["112", "997", "998", "999"]),
    ("AR", &["100", "101", "107", "911"]),
    ("AT", &["112", "122", "133", "144"]),
    ("AU", &["000", "106", "112"]),
    ("BE", &["100", "101", "112"]),
    ("BR", &["112", "128", "190", "192", "193", "911"]),
    ("CA", &["112", "911"]),
    ("CH", &["112", "117", "118", "144"]),
    ("CN", &["110", "119", "120"]),
    ("DE", &["110", "112"]),
    ("DK", &["112", "114"]),
    // 061 health emergencies, 062 Guardia Civil, 080 fire, 088 regional police, 091 Policía
    // Nacional, 092 local police (Spanish ministry lists); libphonenumber has 085, 088, 112.
    ("ES", &["061", "062", "080", "085", "088", "091", "092", "112"]),
    ("FI", &["112"]),
    // 114 (deaf and hard of hearing), 115 (SAMU social), 119 (children in danger), 191, 196,
    // 197 (air, sea rescue, terror alert): service-public.fr "numéros d'urgence".
    (
        "FR",
        &["15", "17", "18", "112", "114", "115", "119", "191", "196", "197"],
    ),
    ("GB", &["112", "999"]),
    ("HK", &["112", "992", "999"]),
    ("IE", &["112", "999"]),
    ("IL", &["100", "101", "102", "112"]),
    ("IN", &["100", "101", "102", "108", "112", "1298", "2611"]),
    // 1530 coast guard (Guardia Costiera), beside libphonenumber's 112, 113, 115, 118.
    ("IT", &["112", "113", "115", "118", "1530"]),
    ("JM", &["110", "112", "119", "911"]),
    // 118 Japan Coast Guard, beside libphonenumber's 110 and 119.
    ("JP", &["110", "118", "119"]),
    ("KR", &["112", "119"]),
    ("KZ", &["101", "102", "103", "112"]),
    ("MX", &["060", "065", "066", "068", "080", "911"]),
    ("NL", &["112", "911"]),
    ("NO", &["110", "112", "113"]),
    ("NZ", &["111"]),
    ("PH", &["112", "117", "911"]),
    ("PL", &["112", "997", "998", "999"]),
    ("PT", &["112", "115"]),
    ("RU", &["01", "02", "03", "101", "102", "103", "112"]),
    ("SE", &["112", "90000"]),
    ("SG", &["993", "995", "999"]),
    ("TR", &["110", "112", "155"]),
    ("US", &["112", "911"]),
    ("ZA", &["112", "10111", "10177"]),
];

/// Numbers GSM phones treat as emergency calls in every country (3GPP TS 22.101 §10.1.1), so
/// we refuse them whatever the caller's region.
pub(crate) const EMERGENCY_EVERYWHERE: &[&str] = &["112", "911"];

/// Premium-rate ranges as E.164 digit prefixes, beside what the numbering metadata itself
/// classes as premium rate (some decks still carry withdrawn ranges such as DE 0190).
pub(crate) const PREMIUM_PREFIXES: &[(&str, &str)] = &[
    ("449", "UK 09 premium rate"),
    ("1900", "NANP 900"),
    ("1976", "NANP 976 pay-per-call"),
    ("49900", "DE 0900"),
    ("49190", "DE 0190 (withdrawn 2006)"),
    ("43900", "AT 0900"),
    ("43930", "AT 0930"),
    ("4190", "CH 090x"),
    ("3190", "NL 0900/0906/0909"),
    ("3389", "FR 089x"),
    ("39892", "IT 892"),
    ("39899", "IT 899"),
    ("34803", "ES 803"),
    ("34806", "ES 806"),
    ("34807", "ES 807"),
    ("34905", "ES 905"),
    ("61190", "AU 190x"),
];

/// Satellite and international-network calling codes (ITU-T E.164 assignments): Inmarsat
/// (+870), Global Mobile Satellite Systems (+881), International Networks (+882, +883).
pub(crate) const SATELLITE_CODES: &[u16] = &[870, 881, 882, 883];

pub(crate) const EMERGENCY_NOTICE: &str = "this service cannot place emergency calls; \
     in an emergency, call your local emergency number from a mobile or landline phone";
pub(crate) const SHORT_CODE_NOTICE: &str = "short codes and service numbers cannot be called \
     through this service; dial the full number with its country code";
pub(crate) const PREMIUM_NOTICE: &str = "premium-rate numbers cannot be called through this service";
pub(crate) const SATELLITE_NOTICE: &str = "satellite and international network numbers \
     (+870, +881, +882, +883) cannot be called through this service";
