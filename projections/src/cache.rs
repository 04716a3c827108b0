//! A projection's in-memory copy of the rows it keeps rewriting (balances, running balances),
//! per version, so a runner following the log does not read back what it just wrote. The
//! runner owns it between batches: `take` before applying, `put` after; if a batch does not
//! commit, the runner calls `forget` and the next batch reads from the tables again.

use std::collections::HashMap;
use std::sync::Mutex;

use uuid::Uuid;

/// Beyond this many rows the cache starts again empty (bounded memory).
const MAX_ROWS: usize = 250_000;

pub struct VersionCache<T> {
    versions: Mutex<HashMap<i32, HashMap<Uuid, T>>>,
}

impl<T> Default for VersionCache<T> {
    fn default() -> Self {
        VersionCache {
            versions: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> VersionCache<T> {
    /// The cached rows of `version` (empty if none), leaving nothing behind until `put`.
    pub fn take(&self, version: i32) -> HashMap<Uuid, T> {
        self.versions
            .lock()
            .map(|mut v| v.remove(&version).unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn put(&self, version: i32, rows: HashMap<Uuid, T>) {
        if rows.len() <= MAX_ROWS {
            if let Ok(mut v) = self.versions.lock() {
                v.insert(version, rows);
            }
        }
    }

    pub fn forget(&self, version: i32) {
        if let Ok(mut v) = self.versions.lock() {
            v.remove(&version);
        }
    }
}
