//! Reloading the configuration on a live gateway: re-read, parse, validate,
//! compile and publish a new snapshot atomically, or change nothing.
//!
//! Called by the control thread (file watcher) and the main thread (SIGHUP);
//! never by a worker. Workers pick the new snapshot up on their next request.
//! Per-worker state is keyed by stable names (upstream pools by
//! `scheme://host:port`), so what an edit did not touch carries over. Every
//! attempt writes one audit line (target `portcullis::audit`) with the
//! generation, the result (`applied`, `rejected`, or `unchanged` for a SIGHUP
//! that found nothing to change) and a summary of what changed (names only;
//! every setting a reload applies is compared, [`ChangeSummary`]).
//!
//! Back-end host names: a reload resolves every name again
//! ([`crate::snapshot::NameTable`]). When the resolver thread finds that a
//! name's addresses changed, [`Reloader::refresh_names`] compiles the
//! configuration last applied again (kept in memory: files edited since are
//! left to the watcher or SIGHUP) with the table's addresses and publishes
//! it when it differs, as a reload would, with its own audit line
//! (`result = "addresses"`); the reload counters and `/config`'s last reload
//! are the operator's and are left alone.
//!
//! Listeners: a reload applies every change to a listener's rules
//! (`allow`, `deny`, `trusted_proxies`, `max_connections_per_ip`), its
//! `security_headers` and its `tls` table (new connections); it refuses
//! (`listener_change`) a listener renamed, moved to another address,
//! added, removed or reordered, which needs a restart or a takeover.

use crate::config::{load_sources, Config, ConfigError, Sources};
use crate::policy::usage::UsageRegistry;
use crate::snapshot::{ChangeSummary, NameTable, Snapshot, SnapshotStore};
use crate::telemetry::counters::StatsRegistry;
use crate::telemetry::reloads::{ReloadStats, Trigger};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tracing::{error, info, warn};

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("listeners changed ({0}); a restart is needed to change listeners")]
    ListenersChanged(String),
    #[error("the admin address changed; a restart is needed to change it")]
    AdminChanged,
    #[error("the access log destination changed; a restart is needed to change it")]
    AccessLogChanged,
    #[error("state_dir changed; a restart is needed to change it")]
    StateDirChanged,
    #[error("[cluster] store changed (address, credentials, key prefix or node name); a restart is needed to change it (on_store_unavailable and wait_budget_ms reload)")]
    ClusterStoreChanged,
}

/// Loads and compiles the config file and its includes (no DNS: what `check` runs).
pub fn compile_file(path: &Path) -> Result<Snapshot, ConfigError> {
    let (config, sources) = load_sources(path)?;
    Snapshot::compile_sources(&config, &sources)
}

/// A configuration as read: what a snapshot was compiled from.
pub type Compiled = Arc<(Config, Sources)>;

/// Loads the file and its includes, compiles, resolves back-end names into
/// `names` and attaches route counters (limit state is attached by the
/// caller). Returns what it compiled from too.
pub fn load_snapshot(
    path: &Path,
    stats: &StatsRegistry,
    names: &NameTable,
) -> Result<(Snapshot, Compiled), ConfigError> {
    let (config, sources) = load_sources(path)?;
    let mut snapshot = Snapshot::compile_sources(&config, &sources)?;
    snapshot.resolve_backends(names, true);
    snapshot.attach_stats(stats);
    Ok((snapshot, Arc::new((config, sources))))
}

/// Owns the path of the config and the store workers read from.
pub struct Reloader {
    path: PathBuf,
    store: SnapshotStore,
    /// Addresses the listeners are bound to (port 0 resolved).
    bound: Vec<SocketAddr>,
    /// Serialises reloads (file watcher and SIGHUP).
    reloading: Mutex<()>,
    pub stats: Arc<ReloadStats>,
    route_stats: Arc<StatsRegistry>,
    usage: Arc<UsageRegistry>,
    /// Back-end host names and their addresses.
    pub names: Arc<NameTable>,
    /// What the running snapshot was compiled from.
    compiled: Mutex<Compiled>,
}

/// What a [`Reloader`] works with besides the config's path and the store.
pub struct ReloaderParts {
    pub bound: Vec<SocketAddr>,
    pub route_stats: Arc<StatsRegistry>,
    pub usage: Arc<UsageRegistry>,
    pub names: Arc<NameTable>,
    pub compiled: Compiled,
}

impl Reloader {
    pub fn new(path: PathBuf, store: SnapshotStore, parts: ReloaderParts) -> Self {
        Reloader {
            path,
            store,
            bound: parts.bound,
            reloading: Mutex::new(()),
            route_stats: parts.route_stats,
            usage: parts.usage,
            names: parts.names,
            compiled: Mutex::new(parts.compiled),
            stats: Arc::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reloads the file. A file whose text did not change is skipped when the
    /// trigger is a file event (editors write several events per save). A
    /// SIGHUP always reads everything again; when neither the files' text nor
    /// anything the comparison sees (the inventory, the files it refers to,
    /// the back ends' resolved addresses) differs, the result is `unchanged`:
    /// nothing is published and the generation stays.
    pub fn reload(&self, trigger: Trigger) {
        let _serialised = match self.reloading.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = self.store.load_full();
        match self.prepare(&current) {
            Ok((next, compiled)) => {
                if trigger == Trigger::FileChange && next.digest == current.digest {
                    self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let summary = ChangeSummary::between(&current, &next);
                if next.digest == current.digest && summary.is_empty() {
                    self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
                    self.stats.record("unchanged", trigger, None);
                    info!(
                        target: "portcullis::audit",
                        generation = current.generation,
                        result = "unchanged",
                        trigger = trigger.as_str(),
                        file = %self.path.display(),
                        "config reload: the configuration and the files it refers to are what already runs"
                    );
                    return;
                }
                for warning in &next.warnings {
                    warn!("{warning}");
                }
                let generation = next.generation;
                self.store.store(Arc::new(next));
                *self.compiled.lock().unwrap_or_else(|p| p.into_inner()) = compiled;
                self.stats.applied.fetch_add(1, Ordering::Relaxed);
                self.stats.record("applied", trigger, None);
                info!(
                    target: "portcullis::audit",
                    generation,
                    result = "applied",
                    trigger = trigger.as_str(),
                    file = %self.path.display(),
                    changes = %summary,
                    "config reload"
                );
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.stats.record("rejected", trigger, Some(e.to_string()));
                error!(
                    target: "portcullis::audit",
                    generation = current.generation,
                    result = "rejected",
                    trigger = trigger.as_str(),
                    error = %e,
                    "config reload: keeping the running configuration"
                );
            }
        }
    }

    /// Every file of the running configuration (the main file and its includes).
    pub fn files(&self) -> Vec<PathBuf> {
        self.store.load().files.clone()
    }

    /// Forgets the names the running configuration no longer has, never
    /// while a reload is between resolving a name and using its addresses.
    pub fn forget_names_except(&self, keep: &std::collections::HashSet<String>) {
        let _serialised = match self.reloading.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // The configuration may have changed since `keep` was read: what
        // the newest one names is kept too.
        let newest = self.store.load().host_names();
        self.names
            .retain(|host| keep.contains(host) || newest.contains(host));
    }

    /// Compiles the configuration last applied again with the name table's
    /// addresses (called by the resolver thread when some changed) and
    /// publishes it when the servers differ from the running ones.
    pub fn refresh_names(&self) {
        let _serialised = match self.reloading.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let current = self.store.load_full();
        let compiled = Arc::clone(&self.compiled.lock().unwrap_or_else(|p| p.into_inner()));
        let mut next = match Snapshot::compile_sources(&compiled.0, &compiled.1) {
            Ok(next) => next,
            Err(e) => {
                warn!(error = %e, "back-end addresses changed but the running configuration no longer compiles; keeping the servers");
                return;
            }
        };
        next.resolve_backends(&self.names, false);
        let summary = ChangeSummary::between(&current, &next);
        if summary.is_empty() {
            return;
        }
        next.attach_stats(&self.route_stats);
        next.attach_usage(&self.usage, crate::time::clock::now());
        next.generation = current.generation + 1;
        let generation = next.generation;
        self.store.store(Arc::new(next));
        info!(
            target: "portcullis::audit",
            generation,
            result = "addresses",
            changes = %summary,
            "back-end host names resolved to other addresses: servers updated"
        );
    }

    fn prepare(&self, current: &Snapshot) -> Result<(Snapshot, Compiled), ReloadError> {
        let (config, sources) = load_sources(&self.path)?;
        let mut next = Snapshot::compile_sources(&config, &sources)?;
        if let Some(change) = listener_change(&next, current, &self.bound) {
            return Err(ReloadError::ListenersChanged(change));
        }
        if next.admin != current.admin {
            return Err(ReloadError::AdminChanged);
        }
        if next.access_log != current.access_log {
            return Err(ReloadError::AccessLogChanged);
        }
        if next.state_dir != current.state_dir {
            return Err(ReloadError::StateDirChanged);
        }
        match (&next.cluster, &current.cluster) {
            (None, None) => {}
            (Some(n), Some(c)) if n.same_store(c) => {
                if let Some(link) = self.usage.cluster() {
                    link.set_policy(n.fallback(), n.wait_budget_ms * 1_000_000);
                }
            }
            _ => return Err(ReloadError::ClusterStoreChanged),
        }
        // Only a snapshot that will be published takes over the running state.
        next.resolve_backends(&self.names, true);
        next.attach_stats(&self.route_stats);
        next.attach_usage(&self.usage, crate::time::clock::now());
        next.generation = current.generation + 1;
        Ok((next, Arc::new((config, sources))))
    }
}

/// The first difference between the running listeners and the new file's
/// (`public: 127.0.0.1:8080 -> 127.0.0.1:8081`), or None when they match. A
/// configured port 0 matches the port it was bound to.
fn listener_change(next: &Snapshot, current: &Snapshot, bound: &[SocketAddr]) -> Option<String> {
    for (i, (n, c)) in next.listeners.iter().zip(&current.listeners).enumerate() {
        let same_address = n.address == c.address || bound.get(i) == Some(&n.address);
        if n.name != c.name || !same_address {
            return Some(format!(
                "`{}` at {} -> `{}` at {}",
                c.name, c.address, n.name, n.address
            ));
        }
    }
    match next.listeners.len().cmp(&current.listeners.len()) {
        std::cmp::Ordering::Equal => None,
        std::cmp::Ordering::Greater => Some(format!(
            "`{}` added",
            next.listeners[current.listeners.len()].name
        )),
        std::cmp::Ordering::Less => Some(format!(
            "`{}` removed",
            current.listeners[next.listeners.len()].name
        )),
    }
}
