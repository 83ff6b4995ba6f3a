//! A per-worker memo of recently presented client tokens, so that a client
//! reusing its token (the usual case) is not hashed with SHA-256 on every
//! request.
//!
//! Keyed safely ([`WorkerCache`]): the map's key is a hash of the token under
//! a random key, which a caller can neither predict nor steer, and a hit also
//! compares the stored token with the presented one in constant time: timing
//! tells a caller nothing about which bytes of a real token it guessed, as
//! with the SHA-256 lookup behind it. Only tokens that belong to a client are remembered; the memo is bounded
//! ([`CAPACITY`] entries, emptied when full) and its entries belong to one
//! compiled set of usage plans (a reload's entries never match an older
//! one's), so a revoked token is never found here once the snapshot without
//! it is in use.

use crate::policy::worker_cache::WorkerCache;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most tokens a worker remembers.
pub const CAPACITY: usize = 4096;

/// Identifies one compiled set of usage plans.
pub fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

thread_local! {
    /// Owner: the generation of the usage plans; value: (subscriber, client).
    static CACHE: RefCell<WorkerCache<(u32, u32)>> = RefCell::new(WorkerCache::default());
}

/// The client of `token` in the usage plans of `generation`: from this
/// worker's memo, or from `lookup` (remembered when it finds one).
pub fn client_of(
    generation: u64,
    token: &[u8],
    lookup: impl FnOnce(&[u8]) -> Option<(u32, u32)>,
) -> Option<(u32, u32)> {
    let hit = CACHE.with(|cache| cache.borrow().get(generation, token, |_| true));
    if hit.is_some() {
        return hit;
    }
    let client = lookup(token)?;
    CACHE.with(|cache| {
        cache
            .borrow_mut()
            .put(generation, token, client, 0, CAPACITY)
    });
    Some(client)
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

    // The memo stays within its bound.
    #[test]
    fn bounded() {
        let generation = next_generation();
        for i in 0..(CAPACITY + 10) {
            let token = format!("token-number-{i:08}");
            client_of(generation, token.as_bytes(), |_| Some((0, 0)));
        }
        let len = CACHE.with(|c| c.borrow().len());
        assert!(len <= CAPACITY, "{len} entries");
    }
}
