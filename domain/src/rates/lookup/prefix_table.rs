//! Longest-prefix match from destination digits (and optionally the caller's origin digits) to
//! a value, over a deck's worth of prefixes. Built once, immutable afterwards, `Send + Sync`
//! when the value is, so the api shares it behind an `Arc` and swaps a new one in atomically
//! when a deck is activated. It must never be mutated in place or hold money as floats.
//!
//! Layout: a digit trie in one flat array of 8-byte nodes, each packing the index of its first
//! child, a 10-bit mask of which digits have children (a child's index is the first child plus
//! the popcount of the mask below its digit) and that prefix's entries: the value index of its
//! only ("any origin") entry, or for prefixes with origin-specific entries, an index into a
//! side table of groups. So the common lookup reads nodes and nothing else.
//! Children are contiguous, and blocks are laid out depth first, so a node's whole subtree is
//! one contiguous run: once past the country code, a walk stays within a few cache lines.

use std::fmt;

mod build;

/// The longest prefix (destination or origin) we accept, in digits: E.164's maximum.
pub const MAX_PREFIX_DIGITS: usize = 15;
/// The most entries one table takes; a large real deck has a few hundred thousand.
pub const MAX_ENTRIES: usize = 4_000_000;

const NONE: u32 = u32::MAX;

/// Node packing: bits 0..26 first child, 26..36 digit mask, 36 "payload is a group",
/// 37..64 payload (a value or group index; all ones = no entry).
const CHILD_BITS: u32 = 26;
const CHILD_MAX: u64 = (1 << CHILD_BITS) - 1;
const MASK_SHIFT: u32 = CHILD_BITS;
const FLAG_SHIFT: u32 = CHILD_BITS + 10;
const PAYLOAD_SHIFT: u32 = FLAG_SHIFT + 1;
const PAYLOAD_MAX: u64 = (1 << (64 - PAYLOAD_SHIFT)) - 1;
// Most nodes one table can hold: 1 + every digit of every key; values fit the payload.
const _: () = assert!(1 + MAX_ENTRIES * MAX_PREFIX_DIGITS < CHILD_MAX as usize);
const _: () = assert!(MAX_ENTRIES < PAYLOAD_MAX as usize);

/// One row of input: destination prefix digits, origin prefix digits (`None` = any origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixEntry<V> {
    pub destination: String,
    pub origin: Option<String>,
    pub value: V,
}

/// The entry a lookup chose: how many destination digits matched, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'a, V> {
    pub prefix_len: usize,
    /// How many origin digits matched; `None` when the "any origin" entry was chosen.
    pub origin_len: Option<usize>,
    pub value: &'a V,
}

/// Why a table could not be built. Prefixes are deck data, not personal data, so they appear.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixTableError {
    #[error(
        "entry {entry}: the {which} prefix is empty; give at least one digit, or no origin for any origin"
    )]
    Empty { entry: usize, which: &'static str },
    #[error("entry {entry}: {which} prefix `{prefix}` is not digits only; drop `+`, spaces and dashes")]
    NotDigits {
        entry: usize,
        which: &'static str,
        prefix: String,
    },
    #[error("entry {entry}: {which} prefix has more than {MAX_PREFIX_DIGITS} digits; E.164 numbers are at most 15")]
    TooLong { entry: usize, which: &'static str },
    #[error("destination {destination} appears twice for {origin}; keep one of the rows")]
    Duplicate { destination: String, origin: String },
    #[error("{0} entries is more than the {MAX_ENTRIES} one table takes; split the deck")]
    TooMany(usize),
}

/// What a node holds for entries with exactly its prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Entries {
    None,
    /// The prefix has only an "any origin" entry: the index of its value.
    Any(u32),
    /// The prefix has origin-specific entries: the index of its group.
    Group(u32),
}

/// A trie node packed in a `u64` (see `CHILD_BITS`).
#[derive(Clone, Copy)]
struct Node(u64);

impl Node {
    fn new(first_child: u32, mask: u16, entries: Entries) -> Node {
        let (flag, payload) = match entries {
            Entries::None => (0, PAYLOAD_MAX),
            Entries::Any(value) => (0, u64::from(value)),
            Entries::Group(group) => (1, u64::from(group)),
        };
        debug_assert!(u64::from(first_child) <= CHILD_MAX && payload <= PAYLOAD_MAX && mask < 1 << 10);
        Node(
            u64::from(first_child)
                | u64::from(mask) << MASK_SHIFT
                | flag << FLAG_SHIFT
                | payload << PAYLOAD_SHIFT,
        )
    }
    fn first_child(self) -> u32 {
        (self.0 & CHILD_MAX) as u32
    }
    fn mask(self) -> u16 {
        ((self.0 >> MASK_SHIFT) & 0x3ff) as u16
    }
    fn entries(self) -> Entries {
        let payload = self.0 >> PAYLOAD_SHIFT;
        match (self.0 >> FLAG_SHIFT & 1, payload) {
            (_, PAYLOAD_MAX) => Entries::None,
            (0, value) => Entries::Any(value as u32),
            (_, group) => Entries::Group(group as u32),
        }
    }
}

/// The entries of one destination prefix: its "any origin" value and its origin-specific
/// entries, `origins[start..start + len]`, longest origin prefix first.
#[derive(Clone, Copy)]
struct Group {
    any: u32,
    origins_start: u32,
    origins_len: u32,
}

#[derive(Clone, Copy)]
struct Origin {
    digits_start: u32,
    digits_len: u8,
    value: u32,
}

/// An immutable longest-prefix-match table; see the module docs for its layout.
pub struct PrefixTable<V> {
    nodes: Box<[Node]>,
    groups: Box<[Group]>,
    origins: Box<[Origin]>,
    origin_digits: Box<[u8]>,
    values: Box<[V]>,
}

impl<V> PrefixTable<V> {
    /// Builds the table. Among one destination prefix's entries, at most one may have no origin
    /// and no origin prefix may repeat.
    pub fn build(entries: Vec<PrefixEntry<V>>) -> Result<PrefixTable<V>, PrefixTableError> {
        build::build(entries)
    }

    /// The entry for the longest destination prefix of `destination` (digits, no `+`) that has
    /// one for this caller: the entry whose origin prefix is the longest prefix of `origin`,
    /// else the prefix's "any origin" entry. A prefix whose entries are all for other origins
    /// does not match, and a shorter prefix is tried. With `origin` `None`, only "any origin"
    /// entries match.
    pub fn lookup(&self, destination: &str, origin: Option<&str>) -> Option<Match<'_, V>> {
        let mut found = [(Entries::None, 0u8); MAX_PREFIX_DIGITS];
        let mut count = 0;
        let mut node = self.nodes[0];
        for (depth, byte) in destination.bytes().take(MAX_PREFIX_DIGITS).enumerate() {
            let digit = byte.wrapping_sub(b'0');
            debug_assert!(digit < 10, "lookup takes digits only");
            let bit = 1u16 << (digit & 15);
            let mask = node.mask();
            if digit >= 10 || mask & bit == 0 {
                break;
            }
            let child = node.first_child() + (mask & (bit - 1)).count_ones();
            debug_assert!((child as usize) < self.nodes.len());
            node = self.nodes[child as usize];
            let entries = node.entries();
            if entries != Entries::None {
                found[count] = (entries, depth as u8 + 1);
                count += 1;
            }
        }
        while count > 0 {
            count -= 1;
            let (entries, prefix_len) = found[count];
            let chosen = match entries {
                Entries::Any(value) => Some((None, value)),
                Entries::Group(group) => self.choose(self.groups[group as usize], origin),
                Entries::None => None,
            };
            if let Some((origin_len, value)) = chosen {
                let value = &self.values[value as usize];
                return Some(Match {
                    prefix_len: prefix_len as usize,
                    origin_len,
                    value,
                });
            }
        }
        None
    }

    fn choose(&self, group: Group, origin: Option<&str>) -> Option<(Option<usize>, u32)> {
        if let (Some(origin), true) = (origin, group.origins_len > 0) {
            let start = group.origins_start as usize;
            for entry in &self.origins[start..start + group.origins_len as usize] {
                let from = entry.digits_start as usize;
                let digits = &self.origin_digits[from..from + entry.digits_len as usize];
                if origin.as_bytes().starts_with(digits) {
                    return Some((Some(digits.len()), entry.value));
                }
            }
        }
        (group.any != NONE).then_some((None, group.any))
    }

    /// A table with no entries: every lookup answers `None`.
    pub fn empty() -> PrefixTable<V> {
        PrefixTable {
            nodes: Box::new([Node::new(1, 0, Entries::None)]),
            groups: Box::new([]),
            origins: Box::new([]),
            origin_digits: Box::new([]),
            values: Box::new([]),
        }
    }

    /// How many entries the table holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Bytes of the index itself (nodes, groups, origins), not counting the values.
    pub fn index_bytes(&self) -> usize {
        self.nodes.len() * std::mem::size_of::<Node>()
            + self.groups.len() * std::mem::size_of::<Group>()
            + self.origins.len() * std::mem::size_of::<Origin>()
            + self.origin_digits.len()
    }
}

impl<V> fmt::Debug for PrefixTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrefixTable")
            .field("entries", &self.values.len())
            .field("nodes", &self.nodes.len())
            .field("index_bytes", &self.index_bytes())
            .finish()
    }
}
