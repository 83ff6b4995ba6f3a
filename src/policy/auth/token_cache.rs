//! A per-worker cache of verified tokens, so a client that presents the same
//! token on every call pays for its signature once (as Envoy's `jwt_cache`):
//! the token's exact text maps to its verified claims.
//!
//! A [`WorkerCache`] in a thread-local (one per worker): no lock, no atomic.
//! Keyed by the authenticator's unique id as well as the token, so a reload
//! never reuses another snapshot's verdicts. A hit re-checks `exp`/`nbf`
//! against `now`; an entry lives at most [`MAX_ENTRY_AGE`] seconds, which
//! bounds how long a key removed from a remote JWKS keeps a token valid.
//! When full, the cache is emptied (no eviction bookkeeping on the hot path).

use super::claims::Claims;
use crate::policy::worker_cache::WorkerCache;
use std::cell::RefCell;
use std::rc::Rc;

/// Longest time (seconds) a verified token is trusted without a new signature check.
pub const MAX_ENTRY_AGE: u64 = 60;

thread_local! {
    static CACHE: RefCell<WorkerCache<Rc<Claims>>> = RefCell::new(WorkerCache::default());
}

/// The cached claims of `token` under authenticator `owner`, if verified
/// less than [`MAX_ENTRY_AGE`] ago.
pub fn get(owner: u64, token: &str, now: u64) -> Option<Rc<Claims>> {
    CACHE.with(|c| {
        c.borrow().get(owner, token.as_bytes(), |verified_at| {
            now.saturating_sub(verified_at) < MAX_ENTRY_AGE
        })
    })
}

/// Remembers `claims` as verified for `token` at `now`; `capacity` bounds the
/// entries (0: caching off).
pub fn put(owner: u64, token: &str, claims: Rc<Claims>, now: u64, capacity: usize) {
    CACHE.with(|c| {
        c.borrow_mut()
            .put(owner, token.as_bytes(), claims, now, capacity)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hit needs the same owner and token and a fresh entry.
    #[test]
    fn hits_are_exact_and_fresh() {
        let claims = Rc::new(Claims::default());
        put(7, "tok", claims, 1000, 16);
        assert_eq!(
            [
                get(7, "tok", 1010).is_some(),
                get(8, "tok", 1010).is_some(),
                get(7, "tok2", 1010).is_some(),
                get(7, "tok", 1000 + MAX_ENTRY_AGE).is_some(),
            ],
            [true, false, false, false]
        );
    }
}
