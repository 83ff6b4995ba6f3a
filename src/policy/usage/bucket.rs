//! Token buckets shared by every worker and leased to each in small batches:
//! exact across cores, with no shared write on most requests.
//!
//! # The scheme
//!
//! Each limited key has one [`SharedBucket`]: the GCRA ("virtual scheduling")
//! state, the theoretical arrival time `tat` in nanoseconds of the process
//! clock, in one `AtomicU64`. With emission interval `T = 1 / rate` and
//! capacity `burst`, a batch of `k` tokens is granted at `now` when
//! `max(tat, now) + k·T − now ≤ burst·T`, and `tat` moves forward by `k·T`
//! (one compare-and-swap). A worker takes up to [`RateParams::batch`] tokens at
//! once into its own [`LocalShares`] and spends them with no atomic at all; a
//! lease lives at most [`LEASE_TTL_NS`], then its unspent tokens are dropped
//! (never given back, so the bound below cannot be broken by a late return).
//!
//! # The bound
//!
//! The shared bucket alone grants at most `rate·W + burst` tokens in any window
//! of length `W` (the GCRA property). A token granted before a window but
//! spent inside it was held in a lease when the window opened, and each worker
//! holds at most one lease of at most `batch` tokens per key. So across all
//! cores, requests admitted in any window `W` ≤ `rate·W + burst + cores·batch`.
//! Nothing is lost to the split either: a lease is only what the shared bucket
//! had, and a worker whose lease is empty asks the shared bucket again, so a
//! client whose connections all land on one core still gets its whole
//! allowance. `tests::bound_holds_across_workers` drives several workers at
//! once and checks the bound.
//!
//! Parameters are not stored in the bucket: they come from the snapshot at each
//! check, so a reload that changes a limit keeps the bucket's state (its `tat`)
//! and applies the new rate from then on.

use super::remote::RemoteRate;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// How long a worker may hold leased tokens before they lapse.
pub const LEASE_TTL_NS: u64 = 100_000_000;

/// Largest batch a worker leases at once.
pub const MAX_BATCH: u32 = 32;

/// A rate limit, compiled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateParams {
    pub requests_per_second: f64,
    /// Nanoseconds per token.
    pub interval_ns: u64,
    /// Tokens that may be spent at once.
    pub burst: u32,
    /// Tokens a worker leases at once.
    pub batch: u32,
}

impl RateParams {
    /// `None` when the rate is not a positive finite number.
    pub fn new(requests_per_second: f64, burst: Option<u32>) -> Option<RateParams> {
        if !(requests_per_second.is_finite() && requests_per_second > 0.0) {
            return None;
        }
        let interval_ns = (1e9 / requests_per_second)
            .round()
            .clamp(1.0, u64::MAX as f64) as u64;
        let burst = burst
            .unwrap_or_else(|| (requests_per_second / 10.0).ceil().min(u32::MAX as f64) as u32)
            .max(1);
        // A batch is at most ~5 ms of tokens and a quarter of the burst, so the
        // `cores·batch` term stays small next to `burst`.
        let batch = ((requests_per_second / 200.0) as u32)
            .min(burst / 4)
            .clamp(1, MAX_BATCH);
        Some(RateParams {
            requests_per_second,
            interval_ns,
            burst,
            batch,
        })
    }

    /// This rate shared by `nodes` nodes (cluster `local_share` fallback).
    pub fn shared_by(&self, nodes: u32) -> RateParams {
        if nodes <= 1 {
            return *self;
        }
        let burst = (self.burst / nodes).max(1);
        RateParams::new(self.requests_per_second / f64::from(nodes), Some(burst)).unwrap_or(*self)
    }

    fn capacity_ns(&self) -> u64 {
        self.interval_ns.saturating_mul(u64::from(self.burst))
    }
}

/// The state all workers share for one key.
#[derive(Debug)]
pub struct SharedBucket {
    /// Identity of this bucket in the workers' lease tables.
    pub uid: u64,
    tat: AtomicU64,
    /// Cluster mode: the node's reservation from the store, which then
    /// replaces the local GCRA (kept for the `local_share` fallback).
    remote: OnceLock<Arc<RemoteRate>>,
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// A fresh identity for a bucket or a table of buckets.
pub fn next_uid() -> u64 {
    NEXT_UID.fetch_add(1, Ordering::Relaxed)
}

impl Default for SharedBucket {
    fn default() -> Self {
        SharedBucket {
            uid: next_uid(),
            tat: AtomicU64::new(0),
            remote: OnceLock::new(),
        }
    }
}

impl SharedBucket {
    /// The state of `self` (counted at `old` interval) carried over to a new
    /// rate: the tokens spent and not yet refilled stay spent, refilling at
    /// `new` from now on.
    pub fn rescaled(&self, old: &RateParams, new: &RateParams, now: u64) -> SharedBucket {
        let debt = self.tat.load(Ordering::Relaxed).saturating_sub(now);
        let spent = debt / old.interval_ns.max(1);
        SharedBucket {
            uid: next_uid(),
            tat: AtomicU64::new(now.saturating_add(spent.saturating_mul(new.interval_ns))),
            remote: OnceLock::new(),
        }
    }

    /// The theoretical arrival time (for eviction: the smallest is closest to full).
    pub fn tat(&self) -> u64 {
        self.tat.load(Ordering::Relaxed)
    }

    /// Shares this bucket through the cluster store (once; at attach).
    pub fn set_remote(&self, remote: Arc<RemoteRate>) {
        let _ = self.remote.set(remote);
    }

    /// The cluster reservation, in cluster mode.
    pub fn remote(&self) -> Option<&Arc<RemoteRate>> {
        self.remote.get()
    }

    /// Takes up to `want` tokens at `now`; `Err(ns)` is how long until one
    /// token fits ([`super::remote::STORE_UNAVAILABLE`]: answer 503). In
    /// cluster mode the tokens come from the node's reservation.
    pub fn lease(&self, params: &RateParams, now: u64, want: u32) -> Result<u32, u64> {
        match self.remote.get() {
            Some(remote) => remote.lease(self, params, now, want),
            None => self.lease_local(params, now, want),
        }
    }

    /// Takes up to `want` tokens of this node's own GCRA.
    pub fn lease_local(&self, params: &RateParams, now: u64, want: u32) -> Result<u32, u64> {
        let interval = params.interval_ns;
        let capacity = params.capacity_ns();
        let mut tat = self.tat.load(Ordering::Relaxed);
        loop {
            let base = tat.max(now);
            let debt = base - now;
            let available = capacity.saturating_sub(debt) / interval;
            if available == 0 {
                return Err(debt
                    .saturating_add(interval)
                    .saturating_sub(capacity)
                    .max(1));
            }
            let take = available.min(u64::from(want.max(1)));
            let next = base.saturating_add(take * interval);
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return Ok(take as u32),
                Err(actual) => tat = actual,
            }
        }
    }

    /// True when the bucket is full at `now` (forgetting it loses nothing).
    pub fn is_full(&self, now: u64) -> bool {
        self.tat.load(Ordering::Relaxed) <= now
    }

    /// Tokens left at `now` (for the usage endpoint).
    pub fn remaining(&self, params: &RateParams, now: u64) -> u64 {
        let debt = self.tat.load(Ordering::Relaxed).saturating_sub(now);
        params.capacity_ns().saturating_sub(debt) / params.interval_ns
    }
}

/// A worker's leases, keyed by bucket identity (and client key for per-address tables).
#[derive(Debug, Default)]
pub struct LocalShares {
    leases: RefCell<HashMap<(u64, u128), Lease, ahash::RandomState>>,
    /// Size at which expired leases are swept next (doubles with live ones,
    /// so sweeping stays amortised under many live keys).
    sweep_at: std::cell::Cell<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    tokens: u32,
    expires: u64,
}

/// Leases kept before expired ones are swept.
const SWEEP_AT: usize = 4096;

impl LocalShares {
    /// Spends one token of `key` at `now`, leasing a batch from `shared` when
    /// the worker has none left. `Err(ns)`: refused, retry after `ns`.
    pub fn take(
        &self,
        key: (u64, u128),
        shared: impl FnOnce() -> Result<u32, u64>,
        now: u64,
    ) -> Result<(), u64> {
        let mut leases = self.leases.borrow_mut();
        if let Some(lease) = leases.get_mut(&key) {
            if lease.tokens > 0 && now < lease.expires {
                lease.tokens -= 1;
                return Ok(());
            }
        }
        let granted = shared()?;
        if leases.len() >= self.sweep_at.get().max(SWEEP_AT) {
            leases.retain(|_, l| l.tokens > 0 && now < l.expires);
            self.sweep_at.set((leases.len() * 2).max(SWEEP_AT));
        }
        leases.insert(
            key,
            Lease {
                tokens: granted - 1,
                expires: now.saturating_add(LEASE_TTL_NS),
            },
        );
        Ok(())
    }

    /// Spends one token of a single shared bucket.
    pub fn take_from(
        &self,
        bucket: &SharedBucket,
        params: &RateParams,
        now: u64,
    ) -> Result<(), u64> {
        self.take(
            (bucket.uid, 0),
            || bucket.lease(params, now, params.batch),
            now,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SECOND: u64 = 1_000_000_000;

    fn params(rate: f64, burst: u32) -> RateParams {
        RateParams::new(rate, Some(burst)).unwrap()
    }

    // A full bucket grants `burst` tokens at once and then refuses.
    #[test]
    fn burst_then_refuse() {
        let (bucket, p) = (SharedBucket::default(), params(10.0, 5));
        let local = LocalShares::default();
        let admitted = (0..8)
            .filter(|_| local.take_from(&bucket, &p, SECOND).is_ok())
            .count();
        assert_eq!(admitted, 5);
    }

    // A refusal says how long until the next token: one interval.
    #[test]
    fn refusal_waits_one_interval() {
        let (bucket, p) = (SharedBucket::default(), params(4.0, 1));
        bucket.lease(&p, SECOND, 1).unwrap();
        assert_eq!(bucket.lease(&p, SECOND, 1), Err(SECOND / 4));
    }

    // Tokens come back at the configured rate.
    #[test]
    fn refills_at_rate() {
        let (bucket, p) = (SharedBucket::default(), params(100.0, 1));
        let local = LocalShares::default();
        let admitted = (0..1000u64)
            .filter(|i| {
                local
                    .take_from(&bucket, &p, SECOND + i * SECOND / 1000)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 100);
    }

    // A rate change keeps the tokens spent: 100 spent at 10/s are 100 spent at 1000/s.
    #[test]
    fn rescale_keeps_spent_tokens() {
        let (slow, fast) = (params(10.0, 100), params(1000.0, 100));
        let bucket = SharedBucket::default();
        bucket.lease(&slow, SECOND, 100).unwrap();
        let rescaled = bucket.rescaled(&slow, &fast, SECOND);
        // 1 ms later one token is back at the new rate.
        assert_eq!(rescaled.lease(&fast, SECOND + 1_000_000, 5), Ok(1));
    }

    // A rate that is not positive is refused at compile time.
    #[test]
    fn zero_rate_is_invalid() {
        assert!(RateParams::new(0.0, None).is_none() && RateParams::new(f64::NAN, None).is_none());
    }

    // Several workers hammering one key stay within rate·W + burst + cores·batch.
    #[test]
    fn bound_holds_across_workers() {
        let p = params(1000.0, 100);
        let bucket = Arc::new(SharedBucket::default());
        let cores = 4u64;
        let window = 2 * SECOND;
        let start = 10 * SECOND;
        let threads: Vec<_> = (0..cores)
            .map(|c| {
                let bucket = Arc::clone(&bucket);
                std::thread::spawn(move || {
                    let local = LocalShares::default();
                    // Each worker offers a request every 50 µs of virtual time.
                    (0..window / 50_000)
                        .filter(|i| {
                            let now = start + i * 50_000 + c;
                            local.take_from(&bucket, &p, now).is_ok()
                        })
                        .count() as u64
                })
            })
            .collect();
        let admitted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        let bound = 1000 * 2 + u64::from(p.burst) + cores * u64::from(p.batch);
        assert!(
            admitted <= bound && admitted >= 1900,
            "admitted {admitted}, bound {bound}"
        );
    }

    // One worker alone can draw the whole allowance.
    #[test]
    fn one_worker_gets_everything() {
        let p = params(1000.0, 100);
        let bucket = SharedBucket::default();
        let local = LocalShares::default();
        let admitted = (0..200_000u64)
            .filter(|i| local.take_from(&bucket, &p, SECOND + i * 10_000).is_ok())
            .count() as u64;
        // The initial burst plus the refill, less at most one unspent batch.
        assert!((2090..=2100).contains(&admitted), "{admitted}");
    }
}
