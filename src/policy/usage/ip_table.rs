//! Per-client-address buckets for `rate_limit = { key = "client_ip" }`,
//! shared by every worker and bounded in memory.
//!
//! Connections from one address spread over all workers (`SO_REUSEPORT`
//! hashes the 4-tuple), so the buckets are shared; a worker reaches this table
//! only when its lease for the address runs out (see [`super::bucket`]), never
//! per request. IPv6 clients are keyed by their /64 (one host usually owns a
//! whole /64). Memory is bounded: a bucket that is full again is forgotten
//! (that loses nothing: a fresh bucket is full), and when a shard is still at
//! its capacity the entry closest to full is dropped, so a flood of distinct
//! addresses costs at most `capacity` entries.

use super::bucket::{next_uid, LocalShares, RateParams, SharedBucket};
use super::remote::{ClusterLink, RemoteRate};
use super::shared::address_name;
use crate::net::cidr::address_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock};

const SHARDS: usize = 16;

/// Addresses tracked per table by default.
pub const DEFAULT_CAPACITY: usize = 65_536;

/// The buckets of one deployment's per-address limit.
#[derive(Debug)]
pub struct IpTable {
    pub uid: u64,
    capacity_per_shard: usize,
    shards: Vec<Mutex<HashMap<u128, Arc<SharedBucket>, ahash::RandomState>>>,
    /// Cluster mode: the link and the store name prefix of every address's key.
    remote: OnceLock<(Arc<ClusterLink>, String)>,
}

impl Default for IpTable {
    fn default() -> Self {
        IpTable::with_capacity(DEFAULT_CAPACITY)
    }
}

impl IpTable {
    pub fn with_capacity(capacity: usize) -> Self {
        IpTable {
            uid: next_uid(),
            capacity_per_shard: (capacity / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            remote: OnceLock::new(),
        }
    }

    /// Cluster mode: each address's bucket leases from the store under `name:<address>`.
    pub fn share(&self, link: Arc<ClusterLink>, name: String) {
        let _ = self.remote.set((link, name));
    }

    /// Spends one token for `ip`: from the worker's lease, else from the shared bucket.
    pub fn take(
        &self,
        local: &LocalShares,
        params: &RateParams,
        ip: IpAddr,
        now: u64,
    ) -> Result<(), u64> {
        let key = address_key(ip);
        local.take((self.uid, key), || self.lease(key, params, now), now)
    }

    fn lease(&self, key: u128, params: &RateParams, now: u64) -> Result<u32, u64> {
        let shard = &self.shards[(key as usize ^ (key >> 64) as usize) % SHARDS];
        let mut map = match shard.lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !map.contains_key(&key) && map.len() >= self.capacity_per_shard {
            map.retain(|_, bucket| !bucket.is_full(now));
            if map.len() >= self.capacity_per_shard {
                // Still full: drop the eighth closest to full, so the next
                // capacity/8 new addresses need no scan at all.
                let mut by_tat: Vec<(u64, u128)> = map.iter().map(|(k, b)| (b.tat(), *k)).collect();
                let cut = (by_tat.len() / 8).max(1);
                by_tat.select_nth_unstable(cut - 1);
                for (_, victim) in &by_tat[..cut] {
                    map.remove(victim);
                }
            }
        }
        let bucket = map.entry(key).or_default();
        if let Some((link, name)) = self.remote.get() {
            if bucket.remote().is_none() {
                let name = format!("{name}:{}", address_name(key));
                bucket.set_remote(Arc::new(RemoteRate::new(name, Arc::clone(link), params)));
            }
        }
        bucket.lease(params, now, params.batch)
    }

    /// A table with every address's state carried over to a new rate.
    pub fn rescaled(&self, old: &RateParams, new: &RateParams, now: u64) -> IpTable {
        let table = IpTable {
            uid: next_uid(),
            capacity_per_shard: self.capacity_per_shard,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            remote: OnceLock::new(),
        };
        for (from, to) in self.shards.iter().zip(&table.shards) {
            let (Ok(from), Ok(mut to)) = (from.lock(), to.lock()) else {
                continue;
            };
            for (key, bucket) in from.iter().filter(|(_, b)| !b.is_full(now)) {
                to.insert(*key, Arc::new(bucket.rescaled(old, new, now)));
            }
        }
        table
    }

    /// Addresses currently tracked.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000_000;

    // Two addresses in one IPv6 /64 share a bucket; another /64 does not.
    #[test]
    fn ipv6_keyed_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(
            (
                address_key(a) == address_key(b),
                address_key(a) == address_key(c)
            ),
            (true, false)
        );
    }

    // Each address has its own allowance.
    #[test]
    fn addresses_limited_separately() {
        let table = IpTable::default();
        let p = RateParams::new(1.0, Some(1)).unwrap();
        let local = LocalShares::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let results = [a, a, b].map(|ip| table.take(&local, &p, ip, SECOND).is_ok());
        assert_eq!(results, [true, false, true]);
    }

    // Eviction drops the addresses closest to full, not a limited one.
    #[test]
    fn eviction_keeps_limited_addresses() {
        let table = IpTable::with_capacity(1024);
        let p = RateParams::new(1.0, Some(1)).unwrap();
        let local = LocalShares::default();
        let limited: IpAddr = "10.9.9.9".parse().unwrap();
        let _ = table.take(&local, &p, limited, SECOND);
        // Many more addresses than fit, each spending its token half a second
        // earlier: all closer to full than `limited`, none full yet.
        for i in 0..5000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            let _ = table.lease(address_key(ip), &p, SECOND - 500_000_000 + u64::from(i));
        }
        let fresh = LocalShares::default();
        assert!(table.take(&fresh, &p, limited, SECOND + 1).is_err());
    }

    // A flood of distinct addresses cannot grow the table past its capacity.
    #[test]
    fn flood_is_bounded() {
        let table = IpTable::with_capacity(1024);
        let p = RateParams::new(1.0, Some(1)).unwrap();
        for i in 0..100_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(i));
            // Every address spends its token, so none is full again.
            let _ = table.lease(address_key(ip), &p, SECOND);
        }
        assert!(table.len() <= 1024, "{}", table.len());
    }
}
