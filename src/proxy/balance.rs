//! Choosing a server for each try, on the worker's own state: smooth weighted
//! round robin, least outstanding requests (per weight), or consistent hashing
//! on a ring of virtual nodes. No lock and no atomic write here: a server's
//! health is read with relaxed loads of its shared cell.
//!
//! The state is kept per route of the snapshot in use and begins afresh when
//! a newer snapshot arrives (a reload); a try still running on an older
//! snapshot leaves the new state alone. Servers already tried by the request,
//! ejected, failing their health checks or at their concurrency cap are
//! skipped.

use super::retry::RetryBudget;
use crate::snapshot::servers::{monotonic_ms, BalanceSpec};
use crate::snapshot::HttpBackendSpec;
use std::cell::RefCell;
use std::sync::atomic::Ordering;

/// Where an exchange's back end sits: the snapshot's generation and the back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub generation: u64,
    /// Which back end: `RouteSpec::backend_slot` (plus the case of a dynamic one).
    pub backend: usize,
}

/// One worker's state for one back end.
#[derive(Debug, Default)]
struct Local {
    /// Smooth round robin: each server's current weight.
    current: Vec<i64>,
    /// Tries in flight to each server from this worker.
    outstanding: Vec<u32>,
    /// Where least-request's scan starts (ties go round).
    rotate: usize,
    budget: RetryBudget,
}

/// The balancing state of one worker (`!Send`).
#[derive(Debug, Default)]
pub struct WorkerBalance {
    generation: std::cell::Cell<u64>,
    routes: RefCell<Vec<Option<Local>>>,
}

/// Servers a request has tried, as a bit set (servers past 64 are never excluded).
#[derive(Debug, Default, Clone, Copy)]
pub struct Tried(u64);

impl Tried {
    pub fn add(&mut self, index: usize) {
        if index < 64 {
            self.0 |= 1 << index;
        }
    }
    fn has(self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }
}

impl WorkerBalance {
    /// Runs `f` on the state of `slot`'s back end, if it is the current one.
    fn with<R>(&self, slot: Slot, servers: usize, f: impl FnOnce(&mut Local) -> R) -> Option<R> {
        if slot.generation > self.generation.get() {
            self.generation.set(slot.generation);
            self.routes.borrow_mut().clear();
        } else if slot.generation < self.generation.get() {
            return None;
        }
        let mut routes = self.routes.borrow_mut();
        if routes.len() <= slot.backend {
            routes.resize_with(slot.backend + 1, || None);
        }
        let local = routes[slot.backend].get_or_insert_with(|| Local {
            current: vec![0; servers],
            outstanding: vec![0; servers],
            ..Local::default()
        });
        Some(f(local))
    }

    /// Spends one retry of the budget; false when it is empty.
    pub fn take_retry(&self, slot: Slot, backend: &HttpBackendSpec) -> bool {
        self.with(slot, backend.servers.len(), |l| l.budget.withdraw())
            .unwrap_or(false)
    }

    /// Returns a retry taken by [`WorkerBalance::take_retry`] and not used.
    pub fn give_back_retry(&self, slot: Slot, backend: &HttpBackendSpec) {
        self.with(slot, backend.servers.len(), |l| l.budget.give_back());
    }

    /// The server for the next try of a request keyed by `hash`, or None
    /// when no server may take it. A request's first pick earns its share of
    /// the retry budget (a back end of one server has no retries: no state is
    /// touched); least-request counts the try as outstanding.
    pub fn pick(
        &self,
        slot: Slot,
        backend: &HttpBackendSpec,
        hash: u64,
        tried: Tried,
    ) -> Option<usize> {
        let mut now = 0;
        let mut eligible = |i: usize| {
            let server = &backend.servers[i];
            !tried.has(i)
                && server.health.available(|| {
                    if now == 0 {
                        now = monotonic_ms();
                    }
                    now
                })
                && (backend.max_requests_per_server == u32::MAX
                    || server.health.active.load(Ordering::Relaxed)
                        < backend.max_requests_per_server)
        };
        let n = backend.servers.len();
        if n == 1 {
            return eligible(0).then_some(0);
        }
        self.with(slot, n, |l| {
            if tried.0 == 0 {
                l.budget.deposit(&backend.retry);
            }
            let chosen = match &backend.balance {
                BalanceSpec::RoundRobin => smooth_round_robin(l, backend, &mut eligible),
                BalanceSpec::LeastRequest => least_request(l, backend, &mut eligible),
                BalanceSpec::ConsistentHash { ring, .. } => on_ring(ring, hash, &mut eligible),
            };
            if let (Some(i), BalanceSpec::LeastRequest) = (chosen, &backend.balance) {
                l.outstanding[i] += 1;
            }
            chosen
        })
        .unwrap_or_else(|| (0..n).find(|&i| eligible(i)))
    }

    /// A try picked by [`WorkerBalance::pick`] ended.
    pub fn done(&self, slot: Slot, backend: &HttpBackendSpec, index: usize) {
        if backend.servers.len() > 1 && backend.balance == BalanceSpec::LeastRequest {
            self.with(slot, backend.servers.len(), |l| {
                l.outstanding[index] = l.outstanding[index].saturating_sub(1)
            });
        }
    }
}

/// nginx's smooth weighted round robin over the eligible servers.
fn smooth_round_robin(
    l: &mut Local,
    backend: &HttpBackendSpec,
    eligible: &mut impl FnMut(usize) -> bool,
) -> Option<usize> {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for (i, server) in backend.servers.iter().enumerate() {
        if !eligible(i) {
            continue;
        }
        let weight = i64::from(server.weight);
        l.current[i] += weight;
        total += weight;
        if best.is_none_or(|b| l.current[i] > l.current[b]) {
            best = Some(i);
        }
    }
    let best = best?;
    l.current[best] -= total;
    Some(best)
}

/// The eligible server with the fewest outstanding tries per weight.
fn least_request(
    l: &mut Local,
    backend: &HttpBackendSpec,
    eligible: &mut impl FnMut(usize) -> bool,
) -> Option<usize> {
    let n = backend.servers.len();
    l.rotate = (l.rotate + 1) % n;
    let mut best: Option<usize> = None;
    for i in (l.rotate..n).chain(0..l.rotate) {
        if !eligible(i) {
            continue;
        }
        let load = |j: usize| u64::from(l.outstanding[j]) + 1;
        let weight = |j: usize| u64::from(backend.servers[j].weight);
        if best.is_none_or(|b| load(i) * weight(b) < load(b) * weight(i)) {
            best = Some(i);
        }
    }
    best
}

/// The first eligible server at or after `hash` on the ring.
fn on_ring(
    ring: &[(u64, u16)],
    hash: u64,
    eligible: &mut impl FnMut(usize) -> bool,
) -> Option<usize> {
    let start = ring.partition_point(|p| p.0 < hash);
    let mut last = usize::MAX;
    for &(_, server) in ring[start..].iter().chain(&ring[..start]) {
        let server = usize::from(server);
        if server != last && eligible(server) {
            return Some(server);
        }
        last = server;
    }
    None
}

/// The hash of the request's consistent-hashing key (0 for other balancing;
/// a request without the key hashes an empty one).
pub fn request_hash(
    backend: &HttpBackendSpec,
    client: std::net::IpAddr,
    subscriber: Option<&str>,
    headers: &[httparse::Header<'_>],
) -> u64 {
    use crate::snapshot::servers::{hash64, HashOn};
    let BalanceSpec::ConsistentHash { on, .. } = &backend.balance else {
        return 0;
    };
    match on {
        HashOn::ClientAddress => match client {
            std::net::IpAddr::V4(ip) => hash64(&ip.octets()),
            std::net::IpAddr::V6(ip) => hash64(&ip.octets()),
        },
        HashOn::Subscriber => hash64(subscriber.unwrap_or_default().as_bytes()),
        HashOn::Header(name) => hash64(
            headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map_or(&[][..], |h| h.value),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{BackendSpec, Snapshot};
    use std::path::Path;

    /// The first route's back end of a config with `servers` and `extra` keys.
    fn snapshot(servers: &str, extra: &str) -> Snapshot {
        let text = format!(
            "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n\
             [[deployments]]\nname = \"d\"\nlistener = \"l\"\npath_prefix = \"/\"\n\
             [[deployments.routes]]\npath = \"/x\"\n\
             backend = {{ type = \"http\", servers = [{servers}]{extra} }}\n"
        );
        let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
        Snapshot::compile(&config, &text, Path::new("t.toml")).unwrap()
    }

    fn backend(s: &Snapshot) -> &HttpBackendSpec {
        match &s.routes[0].backend {
            BackendSpec::Http(h) => h,
            _ => unreachable!(),
        }
    }

    const SLOT: Slot = Slot {
        generation: 1,
        backend: 0,
    };

    // Smooth round robin spreads weights 1 and 3 as b, a, b, b: each four picks hold one a.
    #[test]
    fn smooth_round_robin_interleaves_by_weight() {
        let s = snapshot(
            "{ url = \"http://127.0.0.1:1/\", weight = 1 }, { url = \"http://127.0.0.1:2/\", weight = 3 }",
            "",
        );
        let balance = WorkerBalance::default();
        let picks: Vec<usize> = (0..8)
            .map(|_| {
                balance
                    .pick(SLOT, backend(&s), 0, Tried::default())
                    .unwrap()
            })
            .collect();
        assert_eq!(picks, [1, 0, 1, 1, 1, 0, 1, 1]);
    }

    // A server the request already tried is not picked again.
    #[test]
    fn tried_servers_are_skipped() {
        let s = snapshot(
            "{ url = \"http://127.0.0.1:1/\" }, { url = \"http://127.0.0.1:2/\" }",
            "",
        );
        let mut tried = Tried::default();
        tried.add(0);
        let balance = WorkerBalance::default();
        assert_eq!(
            (0..3)
                .map(|_| balance.pick(SLOT, backend(&s), 0, tried))
                .collect::<Vec<_>>(),
            [Some(1), Some(1), Some(1)]
        );
    }

    // Consistent hashing picks the same server for the same key, whatever came before.
    #[test]
    fn consistent_hash_is_stable_per_key() {
        let s = snapshot(
            "{ url = \"http://127.0.0.1:1/\" }, { url = \"http://127.0.0.1:2/\" }, { url = \"http://127.0.0.1:3/\" }",
            ", balance = \"consistent_hash\", hash_key = \"header:x-user\"",
        );
        let balance = WorkerBalance::default();
        let pick = |key: u64| balance.pick(SLOT, backend(&s), key, Tried::default());
        let first: Vec<_> = (0..50u64)
            .map(|k| pick(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let again: Vec<_> = (0..50u64)
            .map(|k| pick(k.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        assert_eq!(first, again);
    }
}
