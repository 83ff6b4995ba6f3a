//! Back-end host names and their addresses: the table of what each name
//! resolved to (and when to ask again), and the step of compilation that
//! turns a URL naming a host into one server per address.
//!
//! Every address of a name is a server of its own, as Envoy's STRICT_DNS and
//! nginx's `server name` have it: balanced over with the URL's weight (each
//! address gets the whole weight, not a share), ejected, checked, pooled and
//! reported on its own, its pool key and health cell carrying the address.
//! A name that did not resolve stays one server without an address (502s).
//!
//! The table is the process's, shared by the threads that compile snapshots
//! (main at start, control at reload) and the resolver thread
//! (`crate::runtime::resolver`). A reload asks every name afresh; the
//! resolver thread asks a name again when its answer expires and, when the
//! addresses changed, has the running configuration compiled again with the
//! table's addresses, as a reload would, so that balancing, health and
//! metrics follow the same path. Never used on a worker.

use super::resolver::{keep_for, resolve, ResolverSpec, RETRY_AFTER_FAILURE};
use super::servers::{
    build_ring, compile_outlier, health_cell, monotonic_ms, BalanceSpec, ServerSpec,
};
use super::{BackendSpec, HttpBackendSpec, Snapshot};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Addresses of one name that become servers; more are left out (and said so).
pub const MAX_ADDRESSES_PER_NAME: usize = 64;

/// What a name resolved to.
#[derive(Debug, Clone, Default)]
pub struct NameEntry {
    /// Sorted, no duplicates; empty while the name never resolved.
    pub addrs: Vec<IpAddr>,
    /// When to ask again ([`monotonic_ms`]).
    pub due_ms: u64,
    /// Successful resolutions (`portcullis_server_resolutions_total`).
    pub resolutions: Arc<AtomicU64>,
}

/// The addresses of every back-end host name, by name.
#[derive(Debug, Default)]
pub struct NameTable {
    entries: Mutex<HashMap<String, NameEntry>>,
}

impl NameTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, NameEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `host` resolved to, if it was ever asked.
    pub fn get(&self, host: &str) -> Option<NameEntry> {
        self.lock().get(host).cloned()
    }

    /// Resolves `host` now (blocking; the table is not locked meanwhile) and
    /// records the answer, kept as [`keep_for`] says. A failure, or an answer
    /// without addresses, keeps the addresses known and asks again within
    /// [`RETRY_AFTER_FAILURE`]. Returns whether the addresses changed.
    pub fn refresh(
        &self,
        spec: Option<&ResolverSpec>,
        host: &str,
        interval: Option<Duration>,
    ) -> Result<bool, String> {
        let found = resolve(spec, host);
        let now = monotonic_ms();
        let mut entries = self.lock();
        let entry = entries.entry(host.to_string()).or_default();
        match found {
            Ok(found) if !found.addrs.is_empty() => {
                entry.resolutions.fetch_add(1, Relaxed);
                entry.due_ms = now + keep_for(spec, found.ttl, interval).as_millis() as u64;
                let changed = entry.addrs != found.addrs;
                entry.addrs = found.addrs;
                Ok(changed)
            }
            other => {
                let retry = RETRY_AFTER_FAILURE.min(interval.unwrap_or(RETRY_AFTER_FAILURE));
                entry.due_ms = now + retry.as_millis() as u64;
                Err(match other {
                    Err(e) => e,
                    Ok(_) => "no address".to_string(),
                })
            }
        }
    }

    /// Records `addrs` for `host` as if it had resolved (tests).
    #[cfg(test)]
    pub fn record(&self, host: &str, addrs: &[&str]) {
        let entry = NameEntry {
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            ..NameEntry::default()
        };
        self.lock().insert(host.to_string(), entry);
    }

    /// Forgets the names `keep` refuses (no back end names them any more).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|host, _| keep(host));
    }
}

impl Snapshot {
    /// Gives every back-end host name its addresses (blocking DNS; never on a
    /// worker) and makes each address a server. `fresh`: ask every name again
    /// (start, reload); else only names the table does not know (the resolver
    /// thread's recompilation, whose table is up to date). Names that do not
    /// resolve become warnings.
    pub fn resolve_backends(&mut self, names: &NameTable, fresh: bool) {
        let spec = self.resolver.clone();
        let mut asked = HashSet::new();
        let mut failed = Vec::new();
        for route in &mut self.routes {
            for backend in route.backend.each_mut() {
                let BackendSpec::Http(backend) = backend else {
                    continue;
                };
                for server in backend.servers.iter().filter(|s| s.addr.is_none()) {
                    let host = &*server.host;
                    let ask = fresh || names.get(host).is_none();
                    if ask && asked.insert(host.to_string()) {
                        if let Err(e) = names.refresh(spec.as_ref(), host, backend.resolve_interval)
                        {
                            failed.push(format!(
                                "back-end host `{host}` does not resolve ({e}); its requests will get 502"
                            ));
                        }
                    }
                }
                let left_out = backend.expand(names);
                self.warnings.extend(left_out);
            }
        }
        self.warnings.extend(failed);
    }

    /// Every back-end host name the snapshot re-resolves while it runs, with
    /// the shortest `resolve_interval` of the back ends naming it (with
    /// `[resolver]`, every name; else the names of back ends with an interval).
    pub fn names_to_watch(&self) -> HashMap<String, Option<Duration>> {
        let mut watched: HashMap<String, Option<Duration>> = HashMap::new();
        let backends = self.routes.iter().flat_map(|r| r.backend.each());
        for backend in backends {
            let BackendSpec::Http(h) = backend else {
                continue;
            };
            if self.resolver.is_none() && h.resolve_interval.is_none() {
                continue;
            }
            for server in h.servers.iter().filter(|s| s.names_a_host()) {
                let interval = watched
                    .entry(server.host.to_string())
                    .or_insert(h.resolve_interval);
                *interval = match (*interval, h.resolve_interval) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        watched
    }

    /// Every back-end host name of the snapshot.
    pub fn host_names(&self) -> HashSet<String> {
        let backends = self.routes.iter().flat_map(|r| r.backend.each());
        backends
            .filter_map(|b| match b {
                BackendSpec::Http(h) => Some(h.servers.iter()),
                _ => None,
            })
            .flatten()
            .filter(|s| s.names_a_host())
            .map(|s| s.host.to_string())
            .collect()
    }
}

impl crate::snapshot::servers::ServerSpec {
    /// The server stands for a host name (one of its addresses, or the name
    /// not resolved yet), not an IP literal.
    fn names_a_host(&self) -> bool {
        self.resolutions.is_some() || self.addr.is_none()
    }
}

impl HttpBackendSpec {
    /// Replaces each server naming a host by one server per address the
    /// table knows for it, then rebuilds what depends on the server list
    /// (the hashing ring; the default outlier settings). Returns warnings
    /// for names with more than [`MAX_ADDRESSES_PER_NAME`] addresses.
    fn expand(&mut self, names: &NameTable) -> Vec<String> {
        let mut warnings = Vec::new();
        let written = std::mem::take(&mut self.servers);
        for server in written {
            let entry = names.get(&server.host).filter(|e| !e.addrs.is_empty());
            let Some(entry) = entry.filter(|_| server.addr.is_none()) else {
                self.servers.push(server);
                continue;
            };
            if entry.addrs.len() > MAX_ADDRESSES_PER_NAME {
                warnings.push(format!(
                    "back-end host `{}` has {} addresses; the first {MAX_ADDRESSES_PER_NAME} are used",
                    server.host,
                    entry.addrs.len()
                ));
            }
            let tls_identity = &server.pool_key[server.name.len()..];
            for &ip in entry.addrs.iter().take(MAX_ADDRESSES_PER_NAME) {
                let name = format!("{} ({ip})", server.name);
                let pool_key: Box<str> = format!("{name}{tls_identity}").into();
                self.servers.push(ServerSpec {
                    health: health_cell(&pool_key),
                    pool_key,
                    name: name.into(),
                    host: server.host.clone(),
                    port: server.port,
                    addr: Some(SocketAddr::new(ip, server.port)),
                    tls_client: server.tls_client.clone(),
                    weight: server.weight,
                    resolutions: Some(Arc::clone(&entry.resolutions)),
                });
            }
        }
        if let BalanceSpec::ConsistentHash { ring, .. } = &mut self.balance {
            let keys: Vec<&str> = self.servers.iter().map(|s| &*s.pool_key).collect();
            let weights: Vec<u32> = self.servers.iter().map(|s| s.weight).collect();
            *ring = build_ring(&keys, &weights);
        }
        if !self.outlier_written {
            self.outlier = compile_outlier(None, self.servers.len()).unwrap_or(self.outlier);
        }
        warnings
    }
}

#[cfg(test)]
#[path = "names_tests.rs"]
mod tests;
