//! Per-worker cache of remote authentication answers (HTTP authorizer,
//! OAuth2 introspection), keyed by the authenticator's id and the exact
//! bytes that identify the question (the authorizer's request body, or a
//! digest of the introspected token): a repeated question is answered
//! without a call until the answer's expiry or the configured maximum.
//!
//! A [`WorkerCache`] in a thread-local, like the verified-token cache
//! ([`super::token_cache`]).
//!
//! Beside the cache, a one-answer hand-over slot: the connection loop puts
//! the answer of the call it just awaited there, and the policy step that
//! asked reads it on the request's second pass, whether or not the answer
//! may be cached.

use super::claims::Claims;
use crate::policy::worker_cache::WorkerCache;
use std::cell::RefCell;
use std::rc::Rc;

/// What a remote service said about a caller.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Authenticated, with the claims (principal, scopes, context values).
    Allowed(Rc<Claims>),
    /// Refused: the `WWW-Authenticate` field line(s) to relay.
    Refused(Rc<[u8]>),
}

/// The result of one call.
#[derive(Debug, Clone)]
pub enum Outcome {
    Answered(Verdict),
    /// The service failed or did not answer in time (why, for the log).
    Failed(&'static str),
}

#[derive(Default)]
struct Cache {
    /// Verdicts stamped with their expiry (ms since the epoch).
    verdicts: WorkerCache<Verdict>,
    handed: Option<(u64, Box<[u8]>, Outcome)>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// The cached verdict on `key` for `owner`, if it has not expired at `now_ms`.
pub fn get(owner: u64, key: &[u8], now_ms: u64) -> Option<Verdict> {
    CACHE.with(|c| {
        c.borrow()
            .verdicts
            .get(owner, key, |expires_at| now_ms < expires_at)
    })
}

/// Remembers `verdict` until `expires_at` (ms); `capacity` bounds the entries.
pub fn put(owner: u64, key: &[u8], verdict: Verdict, expires_at: u64, capacity: usize) {
    CACHE.with(|c| {
        c.borrow_mut()
            .verdicts
            .put(owner, key, verdict, expires_at, capacity)
    });
}

/// Hands the outcome of the call just made for `key` to the request's next pass.
pub fn hand_over(owner: u64, key: &[u8], outcome: Outcome) {
    CACHE.with(|c| c.borrow_mut().handed = Some((owner, key.into(), outcome)));
}

/// The outcome handed over for `key`, taken (once).
pub fn take_handed(owner: u64, key: &[u8]) -> Option<Outcome> {
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        match &cache.handed {
            Some((o, k, _)) if *o == owner && &**k == key => cache.handed.take().map(|h| h.2),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // A hit needs the same owner and key before the expiry.
    #[test]
    fn hits_are_exact_and_fresh() {
        let allowed = Verdict::Allowed(Rc::new(Claims::default()));
        put(1, b"q", allowed, 2000, 8);
        assert_eq!(
            [
                get(1, b"q", 1999).is_some(),
                get(2, b"q", 1000).is_some(),
                get(1, b"r", 1000).is_some(),
                get(1, b"q", 2000).is_some(),
            ],
            [true, false, false, false]
        );
    }

    // A handed-over outcome is read once, by the same question only.
    #[test]
    fn hand_over_is_read_once() {
        hand_over(3, b"k", Outcome::Failed("down"));
        assert_eq!(
            [
                take_handed(3, b"other").is_some(),
                take_handed(3, b"k").is_some(),
                take_handed(3, b"k").is_some(),
            ],
            [false, true, false]
        );
    }
}
