//! Building a `PrefixTable`: check the rows, sort them by packed destination, group each
//! destination's entries, and lay the trie out depth first. Runs once per deck activation,
//! off the call path; it must stay linear after the sort (a 500k-row deck builds in well
//! under a second).

use std::cmp::Reverse;

use super::{
    Entries, Group, Node, Origin, PrefixEntry, PrefixTable, PrefixTableError, MAX_ENTRIES, MAX_PREFIX_DIGITS,
    NONE,
};

pub(super) fn build<V>(entries: Vec<PrefixEntry<V>>) -> Result<PrefixTable<V>, PrefixTableError> {
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
