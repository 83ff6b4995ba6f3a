//! Admission at accept (step 1): the listener's network rule and the
//! per-address connection cap decide, before a byte is read, whether a new
//! connection is served at all.
//!
//! The per-address counts are shared by every worker (a connection's address
//! decides its limit, whichever core accepted it); they are touched once when a
//! connection opens and once when it closes, never per request, and only on
//! listeners with a cap. They are split into [`SHARDS`] maps, each behind its
//! own mutex, chosen by a keyed hash of the address: two cores opening or
//! closing connections at the same moment contend only when their clients'
//! addresses fall in the same shard, and the count of each address stays
//! exact (a lock-free table of counters would merge addresses that collide).

use crate::snapshot::ListenerSpec;
use ahash::AHashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// How many independently locked maps the counts are split into.
pub const SHARDS: usize = 64;

/// Open connections per client address, across workers.
#[derive(Debug)]
pub struct AddressCounts {
    /// Keyed per process, so a client cannot choose its shard.
    shard_of: ahash::RandomState,
    shards: Box<[Mutex<AHashMap<IpAddr, u32>>]>,
}

impl Default for AddressCounts {
    fn default() -> Self {
        AddressCounts {
            shard_of: ahash::RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl AddressCounts {
    /// The locked map that counts `ip`.
    fn shard(&self, ip: IpAddr) -> std::sync::MutexGuard<'_, AHashMap<IpAddr, u32>> {
        let index = self.shard_of.hash_one(ip) as usize % self.shards.len();
        match self.shards[index].lock() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// Holds one connection's place in its address's count until dropped.
#[derive(Debug)]
pub struct AddressSlot {
    counts: Option<Arc<AddressCounts>>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Some(counts) = &self.counts {
            let mut map = counts.shard(self.ip);
            if let Some(n) = map.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&self.ip);
                }
            }
        }
    }
}

/// The verdict on a new connection.
#[derive(Debug)]
pub enum Admission {
    Admitted(AddressSlot),
    /// The listener's allow/deny rule refuses the peer.
    DeniedByRule,
    /// The peer already holds `max_connections_per_ip` connections.
    OverCap,
}

/// Decides whether `peer` may open a connection on the listener `spec`.
pub fn admit(spec: &ListenerSpec, counts: &Arc<AddressCounts>, peer: IpAddr) -> Admission {
    let peer = canonical(peer);
    if !spec.rule.permits(peer) {
        return Admission::DeniedByRule;
    }
    if spec.max_connections_per_ip == 0 {
        return Admission::Admitted(AddressSlot {
            counts: None,
            ip: peer,
        });
    }
    let mut map = counts.shard(peer);
    let open = map.entry(peer).or_insert(0);
    if *open >= spec.max_connections_per_ip {
        return Admission::OverCap;
    }
    *open += 1;
    Admission::Admitted(AddressSlot {
        counts: Some(Arc::clone(counts)),
        ip: peer,
    })
}

/// IPv4-mapped IPv6 peers count as their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::cidr::{CidrSet, NetworkRule};

    fn listener(deny: &[&str], cap: u32) -> ListenerSpec {
        ListenerSpec {
            security: Default::default(),
            tls: None,
            name: "l".into(),
            address: "127.0.0.1:0".parse().unwrap(),
            rule: NetworkRule {
                allow: CidrSet::default(),
                deny: CidrSet::parse(deny).unwrap(),
            },
            trusted_proxies: CidrSet::default(),
            max_connections_per_ip: cap,
        }
    }

    // A denied address is refused; the cap refuses the connection past it and frees a place on close.
    #[test]
    fn rule_and_cap() {
        let counts = Arc::new(AddressCounts::default());
        let spec = listener(&["10.0.0.0/8"], 1);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let denied = matches!(
            admit(&spec, &counts, "10.1.2.3".parse().unwrap()),
            Admission::DeniedByRule
        );
        let first = admit(&spec, &counts, ip);
        let over = matches!(admit(&spec, &counts, ip), Admission::OverCap);
        drop(first);
        let again = matches!(admit(&spec, &counts, ip), Admission::Admitted(_));
        assert_eq!((denied, over, again), (true, true, true));
    }
}
