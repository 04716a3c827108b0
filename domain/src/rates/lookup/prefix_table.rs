//! Longest-prefix match from destination digits (and optionally the caller's origin digits) to
//! a value, over a deck's worth of prefixes. Built once, immutable afterwards, `Send + Sync`
//! when the value is, so the api shares it behind an `Arc` and swaps a new one in atomically
//! when a deck is activated. It must never be mutated in place or hold money as floats.
//!
//! Layout: a digit trie in one flat array in level order (breadth first), each node 12 bytes:
//! the index of its first child, a 10-bit mask of which digits have children (a child's index
//! is the first child plus the popcount of the mask below its digit) and the index of the
//! entries of that prefix, if any. Children are contiguous and the top levels sit together at
//! the front of the array, so the walk touches one cache line per digit past the first few.

use std::fmt;

/// The longest prefix (destination or origin) we accept, in digits: E.164's maximum.
pub const MAX_PREFIX_DIGITS: usize = 15;
/// The most entries one table takes; a large real deck has a few hundred thousand.
pub const MAX_ENTRIES: usize = 5_000_000;

const NONE: u32 = u32::MAX;

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

#[derive(Clone, Copy)]
struct Node {
    first_child: u32,
    /// Index into `groups`, or `NONE` when no entry has exactly this prefix.
    group: u32,
    /// Bit `d` set when this node has a child for digit `d`.
    mask: u16,
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
        let mut order: Vec<u32> = (0..entries.len() as u32).collect();
        // Destination, then longest origin first, the "any" entry last.
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&entries[a as usize], &entries[b as usize]);
            let origin_len = |e: &PrefixEntry<V>| e.origin.as_ref().map_or(0, String::len);
            (a.destination.as_bytes(), origin_len(b), &b.origin).cmp(&(
                b.destination.as_bytes(),
                origin_len(a),
                &a.origin,
            ))
        });
        let (keys, groups, origins, origin_digits) = group_entries(&entries, &order)?;
        let nodes = build_nodes(&keys);
        let mut slots: Vec<Option<V>> = entries.into_iter().map(|e| Some(e.value)).collect();
        // Values in `order`, so a group's values sit together; indices were assigned that way.
        let values = order.iter().filter_map(|&i| slots[i as usize].take()).collect();
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
        let mut found = [(0u32, 0u8); MAX_PREFIX_DIGITS];
        let mut count = 0;
        let mut node = self.nodes[0];
        for (depth, byte) in destination.bytes().take(MAX_PREFIX_DIGITS).enumerate() {
            let digit = byte.wrapping_sub(b'0');
            debug_assert!(digit < 10, "lookup takes digits only");
            let bit = 1u16 << (digit & 15);
            if digit >= 10 || node.mask & bit == 0 {
                break;
            }
            let child = node.first_child + (node.mask & (bit - 1)).count_ones();
            debug_assert!((child as usize) < self.nodes.len());
            node = self.nodes[child as usize];
            if node.group != NONE {
                found[count] = (node.group, depth as u8 + 1);
                count += 1;
            }
        }
        while count > 0 {
            count -= 1;
            let (group, prefix_len) = found[count];
            if let Some((origin_len, value)) = self.choose(self.groups[group as usize], origin) {
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
            nodes: Box::new([Node {
                first_child: 1,
                group: NONE,
                mask: 0,
            }]),
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

type Grouped<'a> = (Vec<&'a [u8]>, Vec<Group>, Vec<Origin>, Vec<u8>);

/// Walks the sorted entries once: the distinct destination keys, one group per key, the
/// origin entries. Value indices are positions in `order`.
fn group_entries<'a, V>(
    entries: &'a [PrefixEntry<V>],
    order: &[u32],
) -> Result<Grouped<'a>, PrefixTableError> {
    let (mut keys, mut groups, mut origins, mut digits) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (position, &i) in order.iter().enumerate() {
        let entry = &entries[i as usize];
        let key = entry.destination.as_bytes();
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

/// The level-order trie over sorted, distinct keys; key `k` gets group `k`.
fn build_nodes(keys: &[&[u8]]) -> Vec<Node> {
    let max_len = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    // Level d: the distinct d-digit prefixes of the keys, sorted, with the group of the key
    // equal to that prefix (keys are sorted, so prefixes of one length come out sorted too).
    let mut levels: Vec<Vec<(&[u8], u32)>> = vec![vec![(&[][..], NONE)]];
    for depth in 1..=max_len {
        let mut level: Vec<(&[u8], u32)> = Vec::new();
        for (group, key) in keys.iter().enumerate().filter(|(_, k)| k.len() >= depth) {
            let prefix = &key[..depth];
            let exact = if key.len() == depth { group as u32 } else { NONE };
            match level.last_mut() {
                Some(last) if last.0 == prefix => last.1 = last.1.min(exact),
                _ => level.push((prefix, exact)),
            }
        }
        levels.push(level);
    }
    let mut nodes = Vec::with_capacity(levels.iter().map(Vec::len).sum());
    let mut next_level_start = 1u32;
    for (depth, level) in levels.iter().enumerate() {
        let children = levels.get(depth + 1).map_or(&[][..], Vec::as_slice);
        let mut c = 0;
        for &(prefix, group) in level {
            let first_child = next_level_start + c as u32;
            let mut mask = 0u16;
            while c < children.len() && &children[c].0[..depth] == prefix {
                mask |= 1 << (children[c].0[depth] - b'0');
                c += 1;
            }
            nodes.push(Node {
                first_child,
                group,
                mask,
            });
        }
        debug_assert_eq!(c, children.len(), "every child has a parent one level up");
        next_level_start += children.len() as u32;
    }
    nodes
}
