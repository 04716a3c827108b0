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

use std::cmp::Reverse;
use std::fmt;

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
        if entries.len() > MAX_ENTRIES {
            return Err(PrefixTableError::TooMany(entries.len()));
        }
        for (i, e) in entries.iter().enumerate() {
            check_digits(i + 1, "destination", &e.destination)?;
            if let Some(origin) = &e.origin {
                check_digits(i + 1, "origin", origin)?;
            }
        }
        // Sort by packed destination (an integer compare), then longest origin first, the
        // "any" entry last; moving the rows once afterwards keeps the sort on 12-byte items.
        let mut order: Vec<(u64, u32)> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (pack(e.destination.as_bytes()), i as u32))
            .collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| origin_order(&entries[a.1 as usize]).cmp(&origin_order(&entries[b.1 as usize])))
        });
        let mut slots: Vec<Option<PrefixEntry<V>>> = entries.into_iter().map(Some).collect();
        let entries: Vec<PrefixEntry<V>> = order
            .iter()
            .filter_map(|&(_, i)| slots[i as usize].take())
            .collect();
        let packed: Vec<u64> = order.into_iter().map(|(key, _)| key).collect();
        let (keys, all_groups, origins, origin_digits) = group_entries(&entries, &packed)?;
        // Only prefixes with origin-specific entries keep a group; the rest point at their value.
        let mut groups = Vec::new();
        let key_entries: Vec<Entries> = all_groups
            .iter()
            .map(|g| match g.origins_len {
                0 => Entries::Any(g.any),
                _ => {
                    groups.push(*g);
                    Entries::Group(groups.len() as u32 - 1)
                }
            })
            .collect();
        let nodes = build_nodes(&keys, &key_entries);
        let values = entries.into_iter().map(|e| e.value).collect();
        Ok(PrefixTable {
            nodes: nodes.into_boxed_slice(),
            groups: groups.into_boxed_slice(),
            origins: origins.into_boxed_slice(),
            origin_digits: origin_digits.into_boxed_slice(),
            values,
        })
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

fn check_digits(entry: usize, which: &'static str, prefix: &str) -> Result<(), PrefixTableError> {
    if prefix.is_empty() {
        return Err(PrefixTableError::Empty { entry, which });
    }
    if !prefix.bytes().all(|b| b.is_ascii_digit()) {
        let prefix = prefix.chars().take(32).collect();
        return Err(PrefixTableError::NotDigits { entry, which, prefix });
    }
    if prefix.len() > MAX_PREFIX_DIGITS {
        return Err(PrefixTableError::TooLong { entry, which });
    }
    Ok(())
}

/// Among one destination's entries: longest origin first, the "any" entry last.
fn origin_order<V>(e: &PrefixEntry<V>) -> (Reverse<usize>, Reverse<Option<&str>>) {
    (
        Reverse(e.origin.as_ref().map_or(0, String::len)),
        Reverse(e.origin.as_deref()),
    )
}

/// Digits packed 4 bits each from the top, digit `d` stored as `d + 1` and the rest zero, so
/// comparing keys as integers orders them as strings, a prefix before its extensions.
fn pack(digits: &[u8]) -> u64 {
    debug_assert!(digits.len() <= MAX_PREFIX_DIGITS && digits.iter().all(u8::is_ascii_digit));
    digits
        .iter()
        .enumerate()
        .fold(0, |key, (i, &b)| key | u64::from(b - b'0' + 1) << (60 - 4 * i))
}

/// The `i`th digit of a packed key plus one, or 0 past its end (`i` ≤ 15).
fn nibble(key: u64, i: usize) -> u64 {
    (key >> (60 - 4 * i)) & 0xf
}

/// The first `len` digits of a packed key.
fn truncate(key: u64, len: usize) -> u64 {
    match len {
        0 => 0,
        _ => key & (u64::MAX << (64 - 4 * len)),
    }
}

type Grouped = (Vec<u64>, Vec<Group>, Vec<Origin>, Vec<u8>);

/// Walks the sorted entries (and their packed destinations) once: the distinct destination
/// keys, one group per key, the origin entries. Value indices are positions in the entries.
fn group_entries<V>(entries: &[PrefixEntry<V>], packed: &[u64]) -> Result<Grouped, PrefixTableError> {
    let (mut keys, mut groups, mut origins, mut digits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (position, (entry, &key)) in entries.iter().zip(packed).enumerate() {
        if keys.last() != Some(&key) {
            keys.push(key);
            groups.push(Group {
                any: NONE,
                origins_start: origins.len() as u32,
                origins_len: 0,
            });
        }
        // Never underflows: the first entry always pushed a group above.
        let last_group = groups.len() - 1;
        let group = &mut groups[last_group];
        let duplicate = || PrefixTableError::Duplicate {
            destination: entry.destination.clone(),
            origin: entry
                .origin
                .as_ref()
                .map_or("any origin".into(), |o| format!("origin {o}")),
        };
        match &entry.origin {
            None if group.any != NONE => return Err(duplicate()),
            None => group.any = position as u32,
            Some(origin) => {
                let last = origins
                    .last()
                    .filter(|_| group.origins_len > 0)
                    .map(|o: &Origin| {
                        &digits[o.digits_start as usize..o.digits_start as usize + o.digits_len as usize]
                    });
                if last == Some(origin.as_bytes()) {
                    return Err(duplicate());
                }
                origins.push(Origin {
                    digits_start: digits.len() as u32,
                    digits_len: origin.len() as u8,
                    value: position as u32,
                });
                digits.extend_from_slice(origin.as_bytes());
                group.origins_len += 1;
            }
        }
    }
    Ok((keys, groups, origins, digits))
}

/// The trie over sorted, distinct keys (key `k` holds `key_entries[k]`), blocks laid out
/// depth first.
fn build_nodes(keys: &[u64], key_entries: &[Entries]) -> Vec<Node> {
    let levels = levels(keys);
    // For each node (by level and position), its children's range in the next level.
    let children: Vec<Vec<(u32, u32)>> = levels
        .iter()
        .enumerate()
        .map(|(depth, level)| {
            let next = levels.get(depth + 1).map_or(&[][..], Vec::as_slice);
            let mut c = 0;
            let ranges = level.iter().map(|&(prefix, _)| {
                let start = c;
                while c < next.len() && truncate(next[c].0, depth) == prefix {
                    c += 1;
                }
                (start as u32, c as u32)
            });
            let ranges: Vec<_> = ranges.collect();
            debug_assert_eq!(c, next.len(), "every child has a parent one level up");
            ranges
        })
        .collect();
    let total = levels.iter().map(Vec::len).sum();
    let mut nodes = vec![Node::new(0, 0, Entries::None); total];
    let entries_of = |key: u32| key_entries.get(key as usize).copied().unwrap_or(Entries::None);
    let mut next_free = 1u32;
    // (depth, index in its level, position in `nodes`) of nodes whose children to place.
    let mut stack = vec![(0usize, 0usize, 0usize)];
    while let Some((depth, i, position)) = stack.pop() {
        let (start, end) = children[depth][i];
        let mut mask = 0u16;
        for j in start..end {
            let (prefix, key) = levels[depth + 1][j as usize];
            mask |= 1 << (nibble(prefix, depth) - 1);
            nodes[(next_free + j - start) as usize] = Node::new(0, 0, entries_of(key));
        }
        nodes[position] = Node::new(next_free, mask, nodes[position].entries());
        // Reversed, so the first child's subtree is placed next and finished before the second's.
        for j in (start..end).rev() {
            stack.push((depth + 1, j as usize, (next_free + j - start) as usize));
        }
        next_free += end - start;
    }
    debug_assert_eq!(next_free as usize, total);
    nodes
}

/// Level d: the distinct d-digit prefixes of the keys, sorted (keys are sorted, so prefixes of
/// one length come out sorted), each with the index of the key equal to it, if any.
fn levels(keys: &[u64]) -> Vec<Vec<(u64, u32)>> {
    let key_len = |key: u64| {
        (0..MAX_PREFIX_DIGITS)
            .take_while(|&i| nibble(key, i) != 0)
            .count()
    };
    let max_len = keys.iter().map(|&k| key_len(k)).max().unwrap_or(0);
    let mut levels: Vec<Vec<(u64, u32)>> = vec![vec![(0, NONE)]];
    for depth in 1..=max_len {
        let mut level: Vec<(u64, u32)> = Vec::new();
        for (index, &key) in keys
            .iter()
            .enumerate()
            .filter(|(_, &k)| nibble(k, depth - 1) != 0)
        {
            let prefix = truncate(key, depth);
            let exact = if nibble(key, depth) == 0 {
                index as u32
            } else {
                NONE
            };
            match level.last_mut() {
                Some(last) if last.0 == prefix => last.1 = last.1.min(exact),
                _ => level.push((prefix, exact)),
            }
        }
        levels.push(level);
    }
    levels
}
