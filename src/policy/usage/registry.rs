//! The running gateway's limit state, keyed by stable config names, so that a
//! reload hands every unchanged subscriber entitlement and deployment limit
//! the very bucket and quota counter it had (never refilled, never reset).
//!
//! The control thread compiles a snapshot with fresh state, then
//! [`UsageRegistry::attach`] swaps in the running state for every name it
//! already knows; names the new config no longer has are forgotten. Quota
//! counts read back from `state_dir` at start are "seeds", used when the
//! counter is first attached. Never touched on the request path.

use super::quota::period_number;
use super::shared::{self, Shared, SharedNext};
use super::{
    DeploymentLimit, IpTable, LimitState, QuotaCounter, RateParams, SharedBucket, UsageSpec,
};
use crate::config::QuotaPeriod;
use crate::time::clock::Now;
/// Maps of the registry: keyed by names, hashed fast (100,000 subscribers per reload).
type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Gives `fresh` the running bucket `old` (rescaled if its rate changed).
fn carry_bucket(
    old: Option<&(Arc<SharedBucket>, RateParams)>,
    fresh: &mut Arc<SharedBucket>,
    params: &RateParams,
    mono: u64,
) {
    match old {
        Some((old, old_params)) if old_params == params => *fresh = Arc::clone(old),
        Some((old, old_params)) => *fresh = Arc::new(old.rescaled(old_params, params, mono)),
        None => {}
    }
}

/// Identifies one quota counter: subscriber, plan, entitlement and period kind.
pub type QuotaKey = (String, String, String, QuotaPeriod);

#[derive(Default)]
struct Maps {
    requests: HashMap<String, Arc<AtomicU64>>,
    /// Each with the rate its state was counted at.
    buckets: HashMap<String, (Arc<SharedBucket>, RateParams)>,
    tables: HashMap<String, (Arc<IpTable>, RateParams)>,
    quotas: HashMap<QuotaKey, Arc<QuotaCounter>>,
    seeds: HashMap<QuotaKey, (i64, u64)>,
}

/// Limit state shared by every snapshot of one process.
#[derive(Default)]
pub struct UsageRegistry {
    maps: Mutex<Maps>,
    /// Cluster mode: reservations from the store, by store name.
    shared: Mutex<Shared>,
    /// The seeded counts are final (a clean stop wrote them, or a
    /// predecessor handed them over live): see [`UsageRegistry::counts_final`].
    counts_final: std::sync::atomic::AtomicBool,
}

impl UsageRegistry {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        match self.maps.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Cluster mode: every shared limit attached from now on leases through `link`.
    pub fn set_cluster(&self, link: Arc<super::ClusterLink>) {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).link = Some(link);
    }

    /// The cluster link, in cluster mode.
    pub fn cluster(&self) -> Option<Arc<super::ClusterLink>> {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .link
            .clone()
    }

    /// Whether the counts this process started from are final. Not after a
    /// kill or a crash (the file lags by up to one flush) nor without a file:
    /// a cluster node then takes the store's record of its own counts as a
    /// floor (`cluster::sync`).
    pub fn counts_final(&self) -> bool {
        self.counts_final.load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn set_counts_final(&self, counts_final: bool) {
        self.counts_final
            .store(counts_final, std::sync::atomic::Ordering::Release);
    }

    /// Counts read from `state_dir`: (key, period number, used).
    pub fn seed(&self, counts: Vec<(QuotaKey, i64, u64)>) {
        let mut maps = self.maps();
        for (key, number, used) in counts {
            maps.seeds.insert(key, (number, used));
        }
    }

    /// Adds counts made elsewhere (a predecessor's drain) to the live
    /// counters, or to the seeds of counters not attached yet.
    pub fn add_counts(&self, counts: Vec<(QuotaKey, i64, u64)>) {
        let mut maps = self.maps();
        for (key, number, n) in counts {
            match maps.quotas.get(&key) {
                Some(counter) => counter.add(number, n),
                None => {
                    let seed = maps.seeds.entry(key).or_insert((number, 0));
                    if seed.0 == number {
                        // Counts come from another process: never trust them not to overflow.
                        seed.1 = seed.1.saturating_add(n);
                    } else if seed.0 < number {
                        *seed = (number, n);
                    }
                }
            }
        }
    }

    /// Gives a new snapshot's `limits` (by deployment name) and `usage` the
    /// running state of every limit it shares by name
    /// with the running configuration. A limit whose rate changed keeps the
    /// tokens spent, refilling at the new rate; the counters of subscribers
    /// the new configuration no longer has are kept as seeds (a subscriber
    /// removed and added back does not get a fresh quota).
    pub fn attach<'s>(
        &self,
        limits: impl Iterator<Item = (&'s str, &'s mut DeploymentLimit)>,
        usage: &mut UsageSpec,
        now: Now,
    ) {
        let (mono, now) = (now.mono_ns, now.unix_secs);
        let mut maps = self.maps();
        let mut cluster = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        let mut shared_next = SharedNext::default();
        let mut next = Maps {
            seeds: std::mem::take(&mut maps.seeds),
            ..Maps::default()
        };
        for (deployment, limit) in limits {
            match &mut limit.state {
                LimitState::Total(bucket) => {
                    let key = format!("{deployment}\u{1f}total");
                    carry_bucket(maps.buckets.get(&key), bucket, &limit.params, mono);
                    let name = shared::deployment_rate_name(deployment);
                    cluster.rate(&mut shared_next, name, bucket, &limit.params);
                    next.buckets.insert(key, (Arc::clone(bucket), limit.params));
                }
                LimitState::ClientIp(table) => {
                    let key = format!("{deployment}\u{1f}client_ip");
                    match maps.tables.get(&key) {
                        Some((old, params)) if *params == limit.params => *table = Arc::clone(old),
                        Some((old, params)) => {
                            *table = Arc::new(old.rescaled(params, &limit.params, mono))
                        }
                        None => {}
                    }
                    if let Some(link) = &cluster.link {
                        let name = shared::deployment_ip_name(deployment);
                        cluster.ip_rate(&mut shared_next, &name, &limit.params);
                        table.share(Arc::clone(link), name);
                    }
                    next.tables.insert(key, (Arc::clone(table), limit.params));
                }
            }
        }
        for subscriber in &mut usage.subscribers {
            if let Some(old) = maps.requests.get(&subscriber.name) {
                subscriber.requests = Arc::clone(old);
            }
            next.requests
                .insert(subscriber.name.clone(), Arc::clone(&subscriber.requests));
            for grant in &mut subscriber.grants {
                let plan = &usage.plans[grant.plan as usize];
                let entitlement = &plan.entitlements[grant.entitlement as usize];
                if let (Some(bucket), Some(params)) = (&mut grant.bucket, &entitlement.rate) {
                    let key = format!(
                        "{}\u{1f}{}\u{1f}{}",
                        subscriber.name, plan.name, entitlement.name
                    );
                    carry_bucket(maps.buckets.get(&key), bucket, params, mono);
                    let name = shared::entitlement_rate_name(
                        &subscriber.name,
                        &plan.name,
                        &entitlement.name,
                    );
                    cluster.rate(&mut shared_next, name, bucket, params);
                    next.buckets.insert(key, (Arc::clone(bucket), *params));
                }
                if let (Some(counter), Some(params)) = (&mut grant.quota, &entitlement.quota) {
                    let key = (
                        subscriber.name.clone(),
                        plan.name.clone(),
                        entitlement.name.clone(),
                        params.period,
                    );
                    if let Some(old) = maps.quotas.get(&key) {
                        *counter = Arc::clone(old);
                    } else if let Some((number, used)) = next.seeds.remove(&key) {
                        if number == period_number(params.period, now) {
                            *counter = Arc::new(QuotaCounter::seeded(number, used));
                        }
                    }
                    let name =
                        shared::quota_name(&subscriber.name, &plan.name, &entitlement.name, params);
                    cluster.quota(&mut shared_next, name, counter, params);
                    next.quotas.insert(key, Arc::clone(counter));
                }
            }
        }
        for (key, counter) in &maps.quotas {
            let used = counter.used(key.3, now);
            if used > 0 && !next.quotas.contains_key(key) {
                next.seeds
                    .insert(key.clone(), (period_number(key.3, now), used));
            }
        }
        *maps = next;
        cluster.finish(shared_next);
    }

    /// Every quota counter's count in its current period: (key, period number, used).
    pub fn quota_counts(&self, now: i64) -> Vec<(QuotaKey, i64, u64)> {
        let maps = self.maps();
        let mut counts: Vec<(QuotaKey, i64, u64)> = maps
            .quotas
            .iter()
            .filter_map(|(key, counter)| {
                let used = counter.used(key.3, now);
                (used > 0).then(|| (key.clone(), period_number(key.3, now), used))
            })
            .collect();
        // Seeds not attached yet (a subscriber missing from this config) are kept.
        counts.extend(
            maps.seeds
                .iter()
                .filter(|(key, (number, _))| *number == period_number(key.3, now))
                .map(|(key, (number, used))| (key.clone(), *number, *used)),
        );
        counts.sort();
        counts
    }
}
