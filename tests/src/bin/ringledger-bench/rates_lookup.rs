//! `ringledger-bench rates`, lookup half: rate lookup by longest-prefix match over a generated
//! deck of real-looking prefixes (country codes with realistic lengths), timed against a
//! baseline in the same run over the same numbers: binary search over a sorted `Vec<String>`
//! of prefixes, trying the number's prefixes longest first. Both must agree on every number
//! before any figure is reported. `E164::parse` is timed separately (no baseline). No
//! database, no IO; numbers are generated, never real customers'.

use std::hint::black_box;
use std::time::Instant;

use anyhow::{bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ringledger_domain::rates::{PrefixEntry, PrefixTable};
use ringledger_domain::{Region, E164};

/// Nanoseconds per operation; floats are fine for timings (never for money).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookupFigures {
    /// Our `PrefixTable::lookup`, per number.
    pub lookup_ns: f64,
    /// Binary search over sorted prefixes, longest first, per number.
    pub baseline_lookup_ns: f64,
    /// `E164::parse` of typed input in mixed formats, per number.
    pub parse_ns: f64,
}

/// Timed passes over the numbers; the fastest pass is reported (shared, noisy machines).
const PASSES: usize = 5;
/// Table builds timed; the fastest is reported.
const BUILDS: usize = 3;

/// (country code, weight, national number length): larger weights for busy destinations.
const COUNTRIES: &[(&str, u32, usize)] = &[
    ("1", 30, 10),
    ("44", 12, 10),
    ("49", 8, 10),
    ("33", 7, 9),
    ("39", 6, 10),
    ("34", 5, 9),
    ("7", 5, 10),
    ("91", 8, 10),
    ("86", 6, 11),
    ("81", 4, 10),
    ("52", 4, 10),
    ("55", 5, 11),
    ("61", 3, 9),
    ("31", 3, 9),
    ("32", 2, 9),
    ("41", 2, 9),
    ("43", 2, 10),
    ("46", 2, 9),
    ("47", 1, 8),
    ("45", 1, 8),
    ("48", 3, 9),
    ("351", 2, 9),
    ("353", 2, 9),
    ("30", 2, 10),
    ("90", 3, 10),
    ("20", 3, 10),
    ("27", 2, 9),
    ("234", 4, 10),
    ("254", 2, 9),
    ("63", 4, 10),
    ("62", 4, 10),
    ("84", 3, 9),
    ("66", 2, 9),
    ("60", 2, 9),
    ("65", 1, 8),
    ("852", 1, 8),
    ("82", 2, 10),
    ("880", 3, 10),
    ("92", 4, 10),
    ("971", 2, 9),
    ("966", 2, 9),
    ("972", 1, 9),
    ("380", 2, 9),
    ("40", 2, 9),
    ("36", 1, 9),
    ("420", 1, 9),
    ("64", 1, 9),
    ("54", 2, 10),
    ("57", 3, 10),
    ("51", 2, 9),
    ("56", 2, 9),
    ("58", 2, 10),
    ("212", 2, 9),
    ("213", 2, 9),
    ("233", 2, 9),
    ("255", 1, 9),
    ("256", 1, 9),
    ("237", 1, 9),
    ("225", 1, 10),
    ("53", 1, 8),
];

/// Typed numbers in the formats people use, for the parse timing (all valid).
const TYPED: &[(&str, Option<&str>)] = &[
    ("+44 20 7946 0958", None),
    ("020 7946 0958", Some("GB")),
    ("(212) 555-0100", Some("US")),
    ("011 44 20 7946 0958", Some("US")),
    ("+39 06 1234 5678", None),
    ("00 39 06 1234 5678", Some("DE")),
    ("+1 876 523 0123", None),
    ("+7 771 000 9998", None),
    ("8 912 345 6789", Some("RU")),
    ("+44 1534 456789", None),
    ("030 123456", Some("DE")),
    ("+33 1 42 68 53 00", None),
    ("416-979-1234", Some("CA")),
    ("+61 2 1234 5678", None),
    ("+81 3-1234-5678", None),
];

pub fn run(prefixes: usize, lookups: usize) -> anyhow::Result<LookupFigures> {
    ensure!(
        prefixes > 0 && lookups > 0,
        "need at least one prefix and one lookup"
    );
    let mut rng = StdRng::seed_from_u64(0x5EED_0004);
    let deck = generate_deck(&mut rng, prefixes);
    let numbers = generate_numbers(&mut rng, &deck, lookups);

    // Build time is reported (not returned): the fastest of a few builds, as for lookups.
    let mut build_ms = f64::INFINITY;
    let mut table = PrefixTable::empty();
    for _ in 0..BUILDS {
        let entries = deck.iter().enumerate().map(|(i, p)| PrefixEntry {
            destination: p.clone(),
            origin: None,
            value: i,
        });
        let entries = entries.collect();
        let started = Instant::now();
        table = PrefixTable::build(entries)?;
        build_ms = build_ms.min(started.elapsed().as_secs_f64() * 1e3);
    }
    let mut sorted = deck.clone();
    sorted.sort_unstable();

    for number in &numbers {
        let ours = table.lookup(number, None).map(|m| m.prefix_len);
        let theirs = baseline(&sorted, number).map(str::len);
        if ours != theirs {
            bail!("lookup disagrees with the baseline on a generated number: {ours:?} vs {theirs:?}");
        }
    }
    let lookup_ns = fastest_ns(numbers.len(), || {
        numbers
            .iter()
            .filter_map(|n| table.lookup(black_box(n), None).map(|m| m.prefix_len))
            .sum()
    });
    let baseline_lookup_ns = fastest_ns(numbers.len(), || {
        numbers
            .iter()
            .filter_map(|n| baseline(&sorted, black_box(n)).map(str::len))
            .sum()
    });
    let parse_ns = time_parse(lookups.min(100_000))?;
    eprintln!(
        "rates lookup: {} prefixes ({} KiB index, built in {build_ms:.0} ms), {} numbers",
        table.len(),
        table.index_bytes() / 1024,
        numbers.len()
    );
    Ok(LookupFigures {
        lookup_ns,
        baseline_lookup_ns,
        parse_ns,
    })
}

/// The longest prefix of `number` in `sorted`, trying each length from the longest down.
fn baseline<'a>(sorted: &'a [String], number: &str) -> Option<&'a str> {
    (1..=number.len().min(15)).rev().find_map(|len| {
        let candidate = &number[..len];
        sorted
            .binary_search_by(|p| p.as_str().cmp(candidate))
            .ok()
            .map(|i| sorted[i].as_str())
    })
}

/// Runs `pass` `PASSES` times and returns the fastest, in ns per item.
fn fastest_ns(items: usize, mut pass: impl FnMut() -> usize) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..PASSES {
        let started = Instant::now();
        black_box(pass());
        best = best.min(started.elapsed().as_nanos() as f64 / items as f64);
    }
    best
}

fn time_parse(count: usize) -> anyhow::Result<f64> {
    let mut inputs = Vec::with_capacity(count);
    for i in 0..count {
        let (typed, region) = TYPED[i % TYPED.len()];
        inputs.push((typed, region.map(Region::parse).transpose()?));
    }
    for (typed, region) in &inputs[..TYPED.len().min(count)] {
        E164::parse(typed, *region).map_err(|e| anyhow::anyhow!("benchmark input {typed:?}: {e}"))?;
    }
    Ok(fastest_ns(count, || {
        inputs
            .iter()
            .filter_map(|(t, r)| E164::parse(black_box(t), *r).ok())
            .map(|n| n.digits().len())
            .sum()
    }))
}

fn weighted_country(rng: &mut StdRng) -> (&'static str, usize) {
    let total: u32 = COUNTRIES.iter().map(|c| c.1).sum();
    let mut pick = rng.gen_range(0..total);
    for &(code, weight, national_len) in COUNTRIES {
        if pick < weight {
            return (code, national_len);
        }
        pick -= weight;
    }
    ("1", 10)
}

/// `count` distinct prefixes: every country code, then country code plus 1 to 6 digits (area
/// codes, mobile ranges, operator blocks), shorter ones more often, as in real decks.
fn generate_deck(rng: &mut StdRng, count: usize) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(count);
    let mut deck = Vec::with_capacity(count);
    for &(code, _, _) in COUNTRIES.iter().take(count) {
        seen.insert(code.to_owned());
        deck.push(code.to_owned());
    }
    while deck.len() < count {
        let (code, national_len) = weighted_country(rng);
        let extra = [1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 6][rng.gen_range(0..12)].min(national_len);
        let prefix = format!("{code}{}", random_digits(rng, extra));
        if seen.insert(prefix.clone()) {
            deck.push(prefix);
        }
    }
    deck
}

/// Full-length numbers: half extend a deck prefix (deep matches), half are random numbers of
/// a weighted country (matches at whatever depth the deck has).
fn generate_numbers(rng: &mut StdRng, deck: &[String], count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let (code, national_len) = weighted_country(rng);
            if i % 2 == 0 {
                let prefix = &deck[rng.gen_range(0..deck.len())];
                let country = COUNTRIES
                    .iter()
                    .find(|c| prefix.starts_with(c.0))
                    .map_or(10, |c| c.0.len() + c.2);
                format!(
                    "{prefix}{}",
                    random_digits(rng, country.saturating_sub(prefix.len()))
                )
            } else {
                format!("{code}{}", random_digits(rng, national_len))
            }
        })
        .collect()
}

fn random_digits(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_run_agrees_with_the_baseline() {
        let figures = super::run(2_000, 500).unwrap();
        assert!(figures.lookup_ns > 0.0 && figures.baseline_lookup_ns > 0.0 && figures.parse_ns > 0.0);
    }
}
