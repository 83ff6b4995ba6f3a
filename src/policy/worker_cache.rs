//! One per-worker memo for the policies that remember what they learned:
//! verified tokens (`auth::token_cache`), remote authentication answers
//! (`auth::answer_cache`) and the clients of usage-plan tokens
//! (`usage::token_cache`).
//!
//! An owner id (an authenticator, a compiled set of usage plans) and the
//! exact key bytes map to a value and a stamp (when the value was made, or
//! when it expires: the caller says which stamps it still accepts). A hit
//! needs the same owner and key; the key is compared in time that depends on
//! its length only, and the map is keyed by a hash under a random key of the
//! worker, so timing tells a caller nothing about a stored key. Bounded: when
//! full it is emptied (no eviction bookkeeping on the hot path). Not shared:
//! each user keeps one in a `thread_local!` (thread-per-core), so no lock
//! and no atomic.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

struct Entry<V> {
    owner: u64,
    key: Box<[u8]>,
    value: V,
    stamp: u64,
}

/// Owner and key bytes → value and stamp, for one worker.
pub struct WorkerCache<V> {
    keyed: ahash::RandomState,
    /// By keyed hash of (owner, key); the entry holds both for an exact compare.
    entries: HashMap<u64, Entry<V>, PassThrough>,
}

impl<V> Default for WorkerCache<V> {
    fn default() -> Self {
        WorkerCache {
            keyed: ahash::RandomState::new(),
            entries: HashMap::default(),
        }
    }
}

impl<V: Clone> WorkerCache<V> {
    /// The value stored for `owner` and `key`, if `fresh` accepts its stamp.
    pub fn get(&self, owner: u64, key: &[u8], fresh: impl FnOnce(u64) -> bool) -> Option<V> {
        let hash = self.keyed.hash_one((owner, key));
        self.entries
            .get(&hash)
            .filter(|e| e.owner == owner && same_bytes(&e.key, key) && fresh(e.stamp))
            .map(|e| e.value.clone())
    }

    /// Stores `value` with `stamp`; `capacity` bounds the entries (0: off).
    pub fn put(&mut self, owner: u64, key: &[u8], value: V, stamp: u64, capacity: usize) {
        if capacity == 0 {
            return;
        }
        if self.entries.len() >= capacity {
            self.entries.clear();
        }
        let hash = self.keyed.hash_one((owner, key));
        let entry = Entry {
            owner,
            key: key.into(),
            value,
            stamp,
        };
        self.entries.insert(hash, entry);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Equal bytes, compared in time that depends only on the lengths.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The map's keys are already keyed hashes: used as they are.
#[derive(Default, Clone, Copy)]
struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = Passed;
    fn build_hasher(&self) -> Passed {
        Passed(0)
    }
}

struct Passed(u64);

impl Hasher for Passed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hit needs the same owner and key and a stamp the caller accepts.
    #[test]
    fn hits_are_exact_and_fresh() {
        let mut cache = WorkerCache::default();
        cache.put(7, b"tok", 'v', 1000, 16);
        assert_eq!(
            [
                cache.get(7, b"tok", |at| at == 1000),
                cache.get(8, b"tok", |_| true),
                cache.get(7, b"tok2", |_| true),
                cache.get(7, b"to", |_| true),
                cache.get(7, b"tok", |at| at > 1000),
            ],
            [Some('v'), None, None, None, None]
        );
    }

    // Full means emptied; capacity 0 stores nothing.
    #[test]
    fn bounded() {
        let mut cache = WorkerCache::default();
        for i in 0u32..20 {
            cache.put(1, &i.to_be_bytes(), i, 0, 8);
        }
        assert!(cache.len() <= 8);
        let mut off = WorkerCache::default();
        off.put(1, b"k", 1, 0, 0);
        assert!(off.is_empty());
    }

    // Keys differing in one byte or in length are different.
    #[test]
    fn compares_whole_keys() {
        assert_eq!(
            (
                same_bytes(b"abcd", b"abcd"),
                same_bytes(b"abcd", b"abce"),
                same_bytes(b"abc", b"abcd")
            ),
            (true, false, false)
        );
    }
}
