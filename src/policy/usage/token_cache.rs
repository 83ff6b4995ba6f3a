//! A per-worker memo of recently presented client tokens, so that a client
//! reusing its token (the usual case) is not hashed with SHA-256 on every
//! request.
//!
//! Keyed safely: the map's key is a hash of the token under a random key
//! chosen per process (`ahash`'s keyed hasher), which a caller can neither
//! predict nor steer, and a hit also compares the stored token with the
//! presented one in constant time. So timing tells a caller nothing about
//! which bytes of a real token it guessed, as with the SHA-256 lookup behind
//! it. Only tokens that belong to a client are remembered; the memo is bounded
//! ([`CAPACITY`] entries, emptied when full) and tied to one compiled set of
//! usage plans (a reload starts it afresh), so a revoked token is never found
//! here once the snapshot without it is in use.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Most tokens a worker remembers.
pub const CAPACITY: usize = 4096;

/// Identifies one compiled set of usage plans.
pub fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Remembered {
    token: Box<[u8]>,
    client: (u32, u32),
}

#[derive(Default)]
struct TokenCache {
    generation: u64,
    entries: HashMap<u64, Remembered, NoRehash>,
}

/// The map's keys are already keyed hashes: use them as they are.
#[derive(Default, Clone, Copy)]
struct NoRehash;

impl BuildHasher for NoRehash {
    type Hasher = PassThrough;
    fn build_hasher(&self) -> PassThrough {
        PassThrough(0)
    }
}

struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
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

thread_local! {
    static CACHE: RefCell<TokenCache> = RefCell::new(TokenCache::default());
}

/// The per-process random key.
fn keyed() -> &'static ahash::RandomState {
    static KEY: OnceLock<ahash::RandomState> = OnceLock::new();
    KEY.get_or_init(ahash::RandomState::new)
}

/// The client of `token` in the usage plans of `generation`: from this
/// worker's memo, or from `lookup` (remembered when it finds one).
pub fn client_of(
    generation: u64,
    token: &[u8],
    lookup: impl FnOnce(&[u8]) -> Option<(u32, u32)>,
) -> Option<(u32, u32)> {
    let key = keyed().hash_one(token);
    let hit = CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.generation != generation {
            cache.entries.clear();
            cache.generation = generation;
        }
        cache
            .entries
            .get(&key)
            .filter(|r| same_bytes(&r.token, token))
            .map(|r| r.client)
    });
    if hit.is_some() {
        return hit;
    }
    let client = lookup(token)?;
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.generation != generation {
            return;
        }
        if cache.entries.len() >= CAPACITY {
            cache.entries.clear();
        }
        cache.entries.insert(
            key,
            Remembered {
                token: token.into(),
                client,
            },
        );
    });
    Some(client)
}

/// Equal bytes, compared in time that depends only on the lengths.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    // A remembered token is found without the lookup; another generation
    // (a reload) forgets it; unknown tokens are never remembered.
    #[test]
    fn remembers_found_tokens_per_generation() {
        let one = next_generation();
        let token = b"0123456789abcdef-token";
        let found = client_of(one, token, |_| Some((3, 1)));
        let again = client_of(one, token, |_| panic!("looked up twice"));
        let other = client_of(one, b"0123456789abcdef-other", |_| None);
        let other_again = client_of(one, b"0123456789abcdef-other", |_| Some((1, 0)));
        let two = next_generation();
        let after_reload = client_of(two, token, |_| None);
        assert_eq!(
            (found, again, other, other_again, after_reload),
            (Some((3, 1)), Some((3, 1)), None, Some((1, 0)), None)
        );
    }

    // Tokens differing in one byte or in length are different.
    #[test]
    fn compares_whole_tokens() {
        assert_eq!(
            (
                same_bytes(b"abcd", b"abcd"),
                same_bytes(b"abcd", b"abce"),
                same_bytes(b"abc", b"abcd")
            ),
            (true, false, false)
        );
    }

    // The memo stays within its bound.
    #[test]
    fn bounded() {
        let generation = next_generation();
        for i in 0..(CAPACITY + 10) {
            let token = format!("token-number-{i:08}");
            client_of(generation, token.as_bytes(), |_| Some((0, 0)));
        }
        let len = CACHE.with(|c| c.borrow().entries.len());
        assert!(len <= CAPACITY, "{len} entries");
    }
}
