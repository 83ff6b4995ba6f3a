//! The node level of cluster-wide limits: what the workers see of the
//! store. Workers keep leasing from the node exactly as on one node
//! ([`super::bucket`]); in cluster mode the node's shared bucket is not a
//! local GCRA but a reservation of tokens the store thread (`crate::cluster`)
//! took from the store ahead of need. Nothing here talks to the network.
//!
//! A worker whose key has no reserved token left asks the store thread
//! ([`ClusterLink::ask`]) and waits at most the budget for its answer
//! ([`ClusterLink::wait_for`]): the worker's thread blocks meanwhile, which
//! only happens when a key has nothing reserved and the store is up. When the store said "none left" the key is
//! refused until the store's own retry time, without waiting. When the store
//! is down, or did not answer within the budget, the configured fallback
//! decides ([`Fallback`]).
//!
//! Reserved rate tokens lapse after [`RESERVATION_TTL_NS`] (never given
//! back), so what a node holds is bounded and a node killed with -9 strands
//! at most its reservations. Quota reservations are in [`super::remote_quota`].

use super::bucket::{RateParams, SharedBucket};
use super::QuotaCounter;
use crate::time::clock::mono_ns;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// How long reserved rate tokens stay spendable on a node.
pub const RESERVATION_TTL_NS: u64 = 250_000_000;

/// A worker's `Err` meaning "the store is unavailable and the fallback is
/// `reject`": the request is answered 503.
pub const STORE_UNAVAILABLE: u64 = u64::MAX;

/// What a node does while the store does not answer (`on_store_unavailable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Limit ÷ live nodes on each node; quotas counted locally.
    LocalShare = 0,
    /// 503 with `Retry-After`.
    Reject = 1,
    /// Admit and count.
    Allow = 2,
}

/// A key the store thread has to look at: it ran low on reservations.
pub enum Asked {
    Rate(Arc<RemoteRate>),
    Quota(Arc<QuotaCounter>),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What workers and the store thread share: the store's state as last seen,
/// the queue of keys asking for more, and the round counter workers wait on.
pub struct ClusterLink {
    up: AtomicBool,
    live_nodes: AtomicU32,
    fallback: AtomicU8,
    budget_ns: AtomicU64,
    asked: Mutex<Vec<Asked>>,
    wake: Condvar,
    round: Mutex<u64>,
    answered: Condvar,
    /// Every quota counter of the running configuration (for republishing).
    quotas: Mutex<Vec<Arc<QuotaCounter>>>,
    /// Digest of the shared limits of the running configuration.
    digest: Mutex<String>,
}

impl std::fmt::Debug for ClusterLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterLink(up: {})", self.is_up())
    }
}

impl ClusterLink {
    pub fn new(fallback: Fallback, budget_ns: u64) -> ClusterLink {
        ClusterLink {
            up: AtomicBool::new(false),
            live_nodes: AtomicU32::new(1),
            fallback: AtomicU8::new(fallback as u8),
            budget_ns: AtomicU64::new(budget_ns),
            asked: Mutex::default(),
            wake: Condvar::new(),
            round: Mutex::new(0),
            answered: Condvar::new(),
            quotas: Mutex::default(),
            digest: Mutex::default(),
        }
    }

    /// True while the store answers.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    /// Live nodes from the last membership read (at least 1).
    pub fn live_nodes(&self) -> u32 {
        self.live_nodes.load(Ordering::Relaxed).max(1)
    }

    pub fn set_live_nodes(&self, n: u32) {
        self.live_nodes.store(n.max(1), Ordering::Relaxed);
    }

    pub fn fallback(&self) -> Fallback {
        match self.fallback.load(Ordering::Relaxed) {
            1 => Fallback::Reject,
            2 => Fallback::Allow,
            _ => Fallback::LocalShare,
        }
    }

    /// Applies a reloaded `on_store_unavailable` and wait budget.
    pub fn set_policy(&self, fallback: Fallback, budget_ns: u64) {
        self.fallback.store(fallback as u8, Ordering::Relaxed);
        self.budget_ns.store(budget_ns, Ordering::Relaxed);
    }

    pub fn budget_ns(&self) -> u64 {
        self.budget_ns.load(Ordering::Relaxed)
    }

    /// Queues `key` for the store thread and wakes it. Returns the round
    /// number by which it has been answered (see [`ClusterLink::wait_for`]).
    pub fn ask(&self, key: Asked) -> u64 {
        let mut asked = lock(&self.asked);
        asked.push(key);
        let target = Self::target(*lock(&self.round));
        drop(asked);
        self.wake.notify_one();
        target
    }

    /// Rounds count twice: odd while the thread serves what it took, even
    /// between. A key queued at an even count is taken by the next round
    /// (answered at +2); at an odd one, by the round after the current (+3).
    fn target(round: u64) -> u64 {
        if round.is_multiple_of(2) {
            round + 2
        } else {
            round + 3
        }
    }

    /// The round by which a key already in the queue has been answered.
    pub fn target_now(&self) -> u64 {
        Self::target(*lock(&self.round))
    }

    /// The store thread: takes the queued keys, waiting up to `timeout` for one.
    pub fn take_asked(&self, timeout: Duration) -> Vec<Asked> {
        let mut asked = lock(&self.asked);
        if asked.is_empty() {
            asked = match self.wake.wait_timeout(asked, timeout) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *lock(&self.round) += 1;
        std::mem::take(&mut *asked)
    }

    /// The store thread: one round of answers is in; waiting workers look again.
    pub fn finish_round(&self) {
        *lock(&self.round) += 1;
        self.answered.notify_all();
    }

    /// A worker: waits until round `target` is over, at most the budget.
    pub fn wait_for(&self, target: u64) {
        let budget = Duration::from_nanos(self.budget_ns());
        let round = lock(&self.round);
        let _ = self
            .answered
            .wait_timeout_while(round, budget, |r| *r < target);
    }

    /// Replaces the list of quota counters (each reload).
    pub fn set_quotas(&self, quotas: Vec<Arc<QuotaCounter>>, digest: String) {
        *lock(&self.quotas) = quotas;
        *lock(&self.digest) = digest;
    }

    pub fn quotas(&self) -> Vec<Arc<QuotaCounter>> {
        lock(&self.quotas).clone()
    }

    pub fn digest(&self) -> String {
        lock(&self.digest).clone()
    }
}

/// Packs a token count (low 24 bits) and an expiry in ms of the process clock.
fn pack(tokens: u64, expires_ms: u64) -> u64 {
    (expires_ms << 24) | tokens.min((1 << 24) - 1)
}

/// One rate-limited key's reservation on this node.
pub struct RemoteRate {
    /// The key's name in the store, under the prefix (`rate:...`): names, never tokens.
    pub name: String,
    pub link: Arc<ClusterLink>,
    interval_ns: AtomicU64,
    burst: AtomicU32,
    reservation: AtomicU64,
    /// Tokens handed to workers since the start (the store thread's rate estimate).
    pub taken: AtomicU64,
    /// Process-clock ns until which the store said the key has no token.
    pub denied_until: AtomicU64,
    /// Last time a worker asked (ns).
    pub last_asked: AtomicU64,
    queued: AtomicBool,
    /// The batch the store thread reserves next (adapted to the key's rate).
    pub batch: AtomicU32,
    /// Tokens admitted by a fallback, not yet charged to the store.
    pub debt: AtomicU64,
}

impl std::fmt::Debug for RemoteRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteRate({})", self.name)
    }
}

impl RemoteRate {
    pub fn new(name: String, link: Arc<ClusterLink>, params: &RateParams) -> RemoteRate {
        RemoteRate {
            name,
            link,
            interval_ns: AtomicU64::new(params.interval_ns),
            burst: AtomicU32::new(params.burst),
            reservation: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            denied_until: AtomicU64::new(0),
            last_asked: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            batch: AtomicU32::new(params.batch.max(1)),
            debt: AtomicU64::new(0),
        }
    }

    /// The rate as last compiled: (ns per token, burst).
    pub fn params(&self) -> (u64, u32) {
        (
            self.interval_ns.load(Ordering::Relaxed),
            self.burst.load(Ordering::Relaxed),
        )
    }

    pub fn set_params(&self, params: &RateParams) {
        self.interval_ns
            .store(params.interval_ns, Ordering::Relaxed);
        self.burst.store(params.burst, Ordering::Relaxed);
    }

    /// Tokens this node holds at `now` (ns).
    pub fn held(&self, now: u64) -> u64 {
        let r = self.reservation.load(Ordering::Acquire);
        if (r >> 24) * 1_000_000 > now {
            r & ((1 << 24) - 1)
        } else {
            0
        }
    }

    /// The store thread: adds `n` tokens the store granted at `now`.
    pub fn grant(&self, n: u64, now: u64) {
        let expires = (now + RESERVATION_TTL_NS) / 1_000_000;
        let mut r = self.reservation.load(Ordering::Acquire);
        loop {
            let next = pack(self.held_in(r, now) + n, expires);
            match self.reservation.compare_exchange_weak(
                r,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => r = actual,
            }
        }
    }

    fn held_in(&self, r: u64, now: u64) -> u64 {
        if (r >> 24) * 1_000_000 > now {
            r & ((1 << 24) - 1)
        } else {
            0
        }
    }

    /// Marks the key as asked for; queues it once until the store thread
    /// looks. Returns the round by which it has been answered.
    pub fn ask(self: &Arc<Self>, now: u64) -> u64 {
        self.last_asked.store(now, Ordering::Relaxed);
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.link.ask(Asked::Rate(Arc::clone(self)))
        } else {
            self.link.target_now()
        }
    }

    /// The store thread has taken the key off the queue.
    pub fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }

    fn take(self: &Arc<Self>, now: u64, want: u32) -> Option<u32> {
        let mut r = self.reservation.load(Ordering::Acquire);
        loop {
            let held = self.held_in(r, now);
            if held == 0 {
                return None;
            }
            let take = held.min(u64::from(want.max(1)));
            match self.reservation.compare_exchange_weak(
                r,
                pack(held - take, r >> 24),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.taken.fetch_add(take, Ordering::Relaxed);
                    // Refill ahead of need: at half a batch left.
                    if held - take < u64::from(self.batch.load(Ordering::Relaxed)) / 2 + 1 {
                        let _ = self.ask(now);
                    }
                    return Some(take as u32);
                }
                Err(actual) => r = actual,
            }
        }
    }

    /// A worker's lease from the node: reserved tokens, else the store's
    /// answer within the budget, else the fallback (`bucket` is the node's
    /// local bucket, used for `local_share` at limit ÷ live nodes).
    pub fn lease(
        self: &Arc<Self>,
        bucket: &SharedBucket,
        params: &RateParams,
        now: u64,
        want: u32,
    ) -> Result<u32, u64> {
        if self.link.is_up() {
            if let Some(n) = self.take(now, want) {
                return Ok(n);
            }
            let denied = self.denied_until.load(Ordering::Relaxed);
            if now < denied {
                return Err(denied - now);
            }
            let target = self.ask(now);
            self.link.wait_for(target);
            let now = mono_ns();
            if let Some(n) = self.take(now, want) {
                return Ok(n);
            }
            let denied = self.denied_until.load(Ordering::Relaxed);
            if now < denied {
                return Err(denied - now);
            }
        } else {
            // Keeps the key known, so that its reservations resume with the store.
            let _ = self.ask(now);
        }
        // Admitted by the fallback: charged to the store once it answers, so
        // the cluster-wide rate over time stays the limit.
        let admitted = match self.link.fallback() {
            Fallback::Reject => return Err(STORE_UNAVAILABLE),
            Fallback::Allow => 1,
            Fallback::LocalShare => {
                let share = params.shared_by(self.link.live_nodes());
                bucket.lease_local(&share, now, 1)?
            }
        };
        self.debt.fetch_add(u64::from(admitted), Ordering::Relaxed);
        Ok(admitted)
    }
}

/// What `/usage` shows of a quota in cluster mode.
pub fn quota_view(counter: &QuotaCounter) -> Option<(u64, u64)> {
    counter.remote().map(|r| r.view())
}
