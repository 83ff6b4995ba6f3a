//! Cluster mode at attach time: gives every shared limit of a new snapshot
//! its node-level reservation ([`RemoteRate`], [`RemoteQuota`]), kept across
//! reloads by name like the buckets themselves, and names its key in the
//! store. Store keys carry names (deployment, subscriber, plan, entitlement,
//! client address), never a token or a token's digest.

use super::quota::period_name;
use super::remote::{ClusterLink, RemoteRate};
use super::remote_quota::RemoteQuota;
use super::{QuotaCounter, QuotaParams, RateParams, SharedBucket};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Arc;

/// The cluster state kept by the registry across reloads.
#[derive(Default)]
pub struct Shared {
    pub link: Option<Arc<ClusterLink>>,
    rates: HashMap<String, Arc<RemoteRate>>,
    quotas: HashMap<String, Arc<RemoteQuota>>,
}

/// What the next generation keeps, built during one attach.
#[derive(Default)]
pub struct SharedNext {
    rates: HashMap<String, Arc<RemoteRate>>,
    quotas: HashMap<String, Arc<RemoteQuota>>,
    counters: Vec<Arc<QuotaCounter>>,
    /// One line per shared limit, for the membership digest.
    lines: Vec<String>,
}

/// The store name of a deployment's `key = "total"` limit.
pub fn deployment_rate_name(deployment: &str) -> String {
    format!("rate:deployment:{deployment}:total")
}

/// The store name prefix of a deployment's `key = "client_ip"` limit.
pub fn deployment_ip_name(deployment: &str) -> String {
    format!("rate:deployment:{deployment}:client_ip")
}

/// The store name of an entitlement's rate limit for one subscriber.
pub fn entitlement_rate_name(subscriber: &str, plan: &str, entitlement: &str) -> String {
    format!("rate:subscriber:{subscriber}:{plan}:{entitlement}")
}

/// The store name of an entitlement's quota for one subscriber (period appended by the store thread).
pub fn quota_name(subscriber: &str, plan: &str, entitlement: &str, params: &QuotaParams) -> String {
    format!(
        "quota:{subscriber}:{plan}:{entitlement}:{}",
        period_name(params.period)
    )
}

/// A client address key (IPv4 address or IPv6 /64) as text.
pub fn address_name(key: u128) -> String {
    let v6 = Ipv6Addr::from(key);
    match v6.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => format!("{v6}/64"),
    }
}

impl Shared {
    /// Gives `bucket` the reservation named `name`.
    pub fn rate(
        &self,
        next: &mut SharedNext,
        name: String,
        bucket: &SharedBucket,
        params: &RateParams,
    ) {
        let Some(link) = &self.link else { return };
        let remote = match bucket.remote().or_else(|| self.rates.get(&name)) {
            Some(remote) => {
                remote.set_params(params);
                Arc::clone(remote)
            }
            None => Arc::new(RemoteRate::new(name.clone(), Arc::clone(link), params)),
        };
        bucket.set_remote(Arc::clone(&remote));
        next.lines.push(format!(
            "{name}={}/{}",
            params.requests_per_second, params.burst
        ));
        next.rates.insert(name, remote);
    }

    /// A per-address limit: only its digest line (buckets get theirs when created).
    pub fn ip_rate(&self, next: &mut SharedNext, name: &str, params: &RateParams) {
        next.lines.push(format!(
            "{name}={}/{}",
            params.requests_per_second, params.burst
        ));
    }

    /// Gives `counter` the reservation named `name`.
    pub fn quota(
        &self,
        next: &mut SharedNext,
        name: String,
        counter: &Arc<QuotaCounter>,
        params: &QuotaParams,
    ) {
        let Some(link) = &self.link else { return };
        let remote = match counter.remote().or_else(|| self.quotas.get(&name)) {
            Some(remote) => {
                remote.set_params(*params);
                Arc::clone(remote)
            }
            None => Arc::new(RemoteQuota::new(name.clone(), Arc::clone(link), *params)),
        };
        counter.set_remote(Arc::clone(&remote));
        next.lines.push(format!("{name}={}", params.limit));
        next.counters.push(Arc::clone(counter));
        next.quotas.insert(name, remote);
    }

    /// Makes `next` the running state; hands the store thread the counters
    /// and the digest of the shared limits.
    pub fn finish(&mut self, mut next: SharedNext) {
        let Some(link) = &self.link else { return };
        next.lines.sort();
        let digest = crate::config::digest::sha256_hex(&next.lines.join("\n"));
        link.set_quotas(next.counters, digest[..16].to_string());
        self.rates = next.rates;
        self.quotas = next.quotas;
    }
}
