//! A quota counted across nodes: each node reserves counts from the store
//! ahead of need and admits locally while its own count stays under what it
//! reserved.
//!
//! In the store each quota period is one hash with a field per node: that
//! node's contribution (its reservation, or its count when higher). The
//! store thread writes the field as an absolute value and reserves more in the
//! same script only while the sum of all fields stays ≤ the limit. So:
//! - admitted ≤ Σ reservations ≤ the quota while the store answers;
//! - a reservation not used is handed back when the key goes idle (the
//!   field is set down to the count), and the sum is then exactly the count;
//! - counts made while the store was away are in the node's local counter
//!   (and its `state_dir` file), so the next write publishes them; a store
//!   that comes back empty gets every node's contribution again the same way.

use super::quota::{period_number, QuotaParams, QuotaVerdict};
use super::remote::{Asked, ClusterLink, Fallback};
use super::QuotaCounter;
use crate::config::QuotaPeriod;
use crate::time::clock::mono_ns;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// How long a quota stays refused after the store said it is used up, before
/// the store is asked again (another node may have handed counts back).
pub const EXHAUSTED_NS: u64 = 200_000_000;

/// One quota's reservation on this node.
pub struct RemoteQuota {
    /// Name in the store under the prefix, without the period number.
    pub name: String,
    pub link: Arc<ClusterLink>,
    pub params: Mutex<Option<QuotaParams>>,
    /// The period the reservation is for.
    period: AtomicI64,
    /// Counts this node may admit in `period` (its count included).
    reserved: AtomicU64,
    /// Sum of every node's contribution, as last read from the store.
    cluster_total: AtomicU64,
    exhausted_until: AtomicU64,
    /// Last time a request was counted (ns), for the idle hand-back.
    pub last_count: AtomicU64,
    queued: AtomicBool,
    /// The store thread's last batch: workers ask again at half of it left.
    pub batch: AtomicU64,
    /// Requests that reached this quota (admitted or not): the demand the
    /// store thread sizes batches to.
    pub demand: AtomicU64,
}

impl RemoteQuota {
    pub fn new(name: String, link: Arc<ClusterLink>, params: QuotaParams) -> RemoteQuota {
        RemoteQuota {
            name,
            link,
            params: Mutex::new(Some(params)),
            period: AtomicI64::new(i64::MIN),
            reserved: AtomicU64::new(0),
            cluster_total: AtomicU64::new(0),
            exhausted_until: AtomicU64::new(0),
            last_count: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            batch: AtomicU64::new(10),
            demand: AtomicU64::new(0),
        }
    }

    pub fn quota_params(&self) -> Option<QuotaParams> {
        *self.params.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_params(&self, params: QuotaParams) {
        *self.params.lock().unwrap_or_else(|p| p.into_inner()) = Some(params);
    }

    /// What this node may count in period `period`.
    pub fn reserved_in(&self, period: i64) -> u64 {
        if self.period.load(Ordering::Acquire) == period {
            self.reserved.load(Ordering::Acquire)
        } else {
            0
        }
    }

    /// The store thread: the store's answer for `period`: this node now
    /// holds `reserved`, every node together `total`; `exhausted` when the
    /// store had nothing more to give.
    pub fn answer(&self, period: i64, reserved: u64, total: u64, exhausted: bool) {
        if self.period.swap(period, Ordering::AcqRel) != period {
            self.reserved.store(0, Ordering::Release);
        }
        self.reserved.store(reserved, Ordering::Release);
        self.cluster_total.store(total, Ordering::Relaxed);
        let until = if exhausted {
            mono_ns() + EXHAUSTED_NS
        } else {
            0
        };
        self.exhausted_until.store(until, Ordering::Relaxed);
    }

    /// (cluster-wide count, this node's contribution) for `/usage`.
    pub fn view(&self) -> (u64, u64) {
        (
            self.cluster_total.load(Ordering::Relaxed),
            self.reserved.load(Ordering::Relaxed),
        )
    }

    pub fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }

    fn ask(&self, counter: &Arc<QuotaCounter>) -> u64 {
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.link.ask(Asked::Quota(Arc::clone(counter)))
        } else {
            self.link.target_now()
        }
    }

    /// Counts one request of `counter` at Unix second `now`, within this
    /// node's reservation; waits at most the budget for more; falls back
    /// when the store is away.
    pub fn count(
        &self,
        counter: &Arc<QuotaCounter>,
        params: &QuotaParams,
        now: i64,
    ) -> QuotaVerdict {
        let period = period_number(params.period, now);
        let mono = mono_ns();
        self.last_count.store(mono, Ordering::Relaxed);
        self.demand.fetch_add(1, Ordering::Relaxed);
        if self.link.is_up() {
            for attempt in 0..2 {
                let allowed = self.reserved_in(period).min(params.limit);
                if let Some(used) = counter.count_below(params.period, now, allowed) {
                    let low = self.batch.load(Ordering::Relaxed) / 2 + 1;
                    if allowed - used < low && allowed < params.limit {
                        let _ = self.ask(counter);
                    }
                    return QuotaVerdict::Within { used };
                }
                if allowed >= params.limit
                    || mono_ns() < self.exhausted_until.load(Ordering::Relaxed)
                {
                    // The cluster's quota is used up: refused, or counted past
                    // it with `on_breach = allow`.
                    let cluster_wide = QuotaParams {
                        limit: allowed,
                        ..*params
                    };
                    return counter.count_plain(&cluster_wide, now);
                }
                if attempt == 0 {
                    let target = self.ask(counter);
                    self.link.wait_for(target);
                }
            }
        } else {
            let _ = self.ask(counter);
        }
        // The store answers later than the budget (it is up): `local_share`
        // lends at most one batch past the reservation, so a slow store
        // costs the quota at most a batch per node, not a share of it.
        let late = self.link.is_up();
        match self.link.fallback() {
            Fallback::Reject => QuotaVerdict::Unavailable,
            Fallback::Allow => match counter.count_below(params.period, now, u64::MAX >> 24) {
                Some(used) => QuotaVerdict::Within { used },
                None => QuotaVerdict::Refused,
            },
            Fallback::LocalShare => {
                // This node's reservation plus its share of what was left.
                let left = params
                    .limit
                    .saturating_sub(self.cluster_total.load(Ordering::Relaxed));
                let mut lent = left / u64::from(self.link.live_nodes());
                if late {
                    lent = lent.min(self.batch.load(Ordering::Relaxed));
                }
                let share = self.reserved_in(period) + lent;
                let ceiling = share.min(params.limit);
                match counter.count_below(params.period, now, ceiling) {
                    Some(used) => QuotaVerdict::Within { used },
                    None => counter.count_plain(
                        &QuotaParams {
                            limit: ceiling,
                            ..*params
                        },
                        now,
                    ),
                }
            }
        }
    }

    /// The store thread: the idle hand-back. Lowers the reservation to what
    /// was counted; returns the contribution to publish.
    pub fn hand_back(&self, used: u64, period: i64) -> u64 {
        if self.period.load(Ordering::Acquire) == period {
            self.reserved.fetch_min(used, Ordering::AcqRel);
        }
        used
    }
}

/// Identifies which `QuotaPeriod` a store key counts (for its name).
pub fn period_key(period: QuotaPeriod, number: i64) -> String {
    format!("{}:{number}", super::quota::period_name(period))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnBreach;
    use crate::policy::usage::{RateParams, RemoteRate, SharedBucket};

    const NOW: i64 = 1_795_355_130;

    fn params(limit: u64) -> QuotaParams {
        QuotaParams {
            limit,
            period: QuotaPeriod::Day,
            on_breach: OnBreach::Reject,
        }
    }

    fn shared(fallback: Fallback, limit: u64) -> (Arc<ClusterLink>, Arc<QuotaCounter>) {
        let link = Arc::new(ClusterLink::new(fallback, 1_000_000));
        let counter = Arc::new(QuotaCounter::default());
        counter.set_remote(Arc::new(RemoteQuota::new(
            "quota:a:p:e:day".into(),
            Arc::clone(&link),
            params(limit),
        )));
        (link, counter)
    }

    // With the store up a node admits what it reserved and no more, even
    // far under the quota: the rest belongs to other nodes.
    #[test]
    fn admits_only_its_reservation_while_the_store_answers() {
        let (link, counter) = shared(Fallback::LocalShare, 100);
        link.set_up(true);
        let period = period_number(QuotaPeriod::Day, NOW);
        counter.remote().unwrap().answer(period, 3, 100, true);
        let verdicts: Vec<QuotaVerdict> = (0..4)
            .map(|_| counter.count_shared(&params(100), NOW))
            .collect();
        assert_eq!(verdicts[2], QuotaVerdict::Within { used: 3 });
        assert_eq!(verdicts[3], QuotaVerdict::Refused);
    }

    // Store down: `reject` answers 503, `allow` counts, `local_share` takes
    // the reservation plus a share of what was left.
    #[test]
    fn fallbacks_when_the_store_is_down() {
        let period = period_number(QuotaPeriod::Day, NOW);
        let (_, reject) = shared(Fallback::Reject, 100);
        assert_eq!(
            reject.count_shared(&params(100), NOW),
            QuotaVerdict::Unavailable
        );
        let (_, allow) = shared(Fallback::Allow, 1);
        allow.count_shared(&params(1), NOW);
        assert_eq!(
            allow.count_shared(&params(1), NOW),
            QuotaVerdict::Within { used: 2 }
        );
        let (link, share) = shared(Fallback::LocalShare, 100);
        link.set_live_nodes(4);
        // 2 reserved here, 60 used cluster-wide: 2 + 40 / 4 = 12 for this node.
        share.remote().unwrap().answer(period, 2, 60, false);
        let admitted = (0..20)
            .filter(|_| {
                matches!(
                    share.count_shared(&params(100), NOW),
                    QuotaVerdict::Within { .. }
                )
            })
            .count();
        assert_eq!(admitted, 12);
    }

    // Reserved rate tokens are spent by workers and lapse after their TTL;
    // a key the store refused is refused without waiting.
    #[test]
    fn rate_reservation_lapses_and_denial_refuses() {
        let link = Arc::new(ClusterLink::new(Fallback::Reject, 1_000_000));
        link.set_up(true);
        let p = RateParams::new(100.0, Some(10)).unwrap();
        let remote = Arc::new(RemoteRate::new("rate:x".into(), Arc::clone(&link), &p));
        let bucket = SharedBucket::default();
        bucket.set_remote(Arc::clone(&remote));
        let now = 10_000_000_000;
        remote.grant(5, now);
        assert_eq!(bucket.lease(&p, now, 3), Ok(3));
        assert_eq!(remote.held(now), 2);
        assert_eq!(
            remote.held(now + crate::policy::usage::RESERVATION_TTL_NS + 1_000_000),
            0
        );
        remote.denied_until.store(u64::MAX - 1, Ordering::Relaxed);
        let later = now + crate::policy::usage::RESERVATION_TTL_NS + 1_000_000;
        assert!(
            matches!(bucket.lease(&p, later, 1), Err(wait) if wait != crate::policy::usage::STORE_UNAVAILABLE)
        );
        link.set_up(false);
        assert_eq!(
            bucket.lease(&p, later, 1),
            Err(crate::policy::usage::STORE_UNAVAILABLE)
        );
    }
}
