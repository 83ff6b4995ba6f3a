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
use super::{IpTable, QuotaCounter, SharedBucket};
use crate::config::QuotaPeriod;
use crate::snapshot::{LimitState, Snapshot};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// Identifies one quota counter: subscriber, plan, entitlement and period kind.
pub type QuotaKey = (String, String, String, QuotaPeriod);

#[derive(Default)]
struct Maps {
    requests: HashMap<String, Arc<AtomicU64>>,
    buckets: HashMap<String, Arc<SharedBucket>>,
    tables: HashMap<String, Arc<IpTable>>,
    quotas: HashMap<QuotaKey, Arc<QuotaCounter>>,
    seeds: HashMap<QuotaKey, (i64, u64)>,
}

/// Limit state shared by every snapshot of one process.
#[derive(Default)]
pub struct UsageRegistry {
    maps: Mutex<Maps>,
}

impl UsageRegistry {
    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        match self.maps.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        }
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
                        seed.1 += n;
                    } else if seed.0 < number {
                        *seed = (number, n);
                    }
                }
            }
        }
    }

    /// Gives `snapshot` the running state of every limit it shares by name
    /// with the running configuration; `now` is Unix seconds.
    pub fn attach(&self, snapshot: &mut Snapshot, now: i64) {
        let mut maps = self.maps();
        let mut next = Maps {
            seeds: std::mem::take(&mut maps.seeds),
            ..Maps::default()
        };
        for deployment in &mut snapshot.deployments {
            let Some(limit) = &mut deployment.rate_limit else {
                continue;
            };
            match &mut limit.state {
                LimitState::Total(bucket) => {
                    let key = format!("{}\u{1f}total", deployment.name);
                    if let Some(old) = maps.buckets.get(&key) {
                        *bucket = Arc::clone(old);
                    }
                    next.buckets.insert(key, Arc::clone(bucket));
                }
                LimitState::ClientIp(table) => {
                    let key = format!("{}\u{1f}client_ip", deployment.name);
                    if let Some(old) = maps.tables.get(&key) {
                        *table = Arc::clone(old);
                    }
                    next.tables.insert(key, Arc::clone(table));
                }
            }
        }
        let usage = &mut snapshot.usage;
        for subscriber in &mut usage.subscribers {
            if let Some(old) = maps.requests.get(&subscriber.name) {
                subscriber.requests = Arc::clone(old);
            }
            next.requests
                .insert(subscriber.name.clone(), Arc::clone(&subscriber.requests));
            for grant in &mut subscriber.grants {
                let plan = &usage.plans[grant.plan as usize];
                let entitlement = &plan.entitlements[grant.entitlement as usize];
                if let Some(bucket) = &mut grant.bucket {
                    let key = format!(
                        "{}\u{1f}{}\u{1f}{}",
                        subscriber.name, plan.name, entitlement.name
                    );
                    if let Some(old) = maps.buckets.get(&key) {
                        *bucket = Arc::clone(old);
                    }
                    next.buckets.insert(key, Arc::clone(bucket));
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
                    next.quotas.insert(key, Arc::clone(counter));
                }
            }
        }
        *maps = next;
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
