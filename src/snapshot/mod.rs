//! The compiled, immutable configuration every worker serves from.
//!
//! Second stage of the config pipeline (`Config → Snapshot::compile → ArcSwap`):
//! validates the operator's config, resolves names to indices, builds one route
//! table per listener and prebuilds stock responses. A snapshot never changes
//! once published; a new config produces a new snapshot. Nothing here does I/O on
//! the request path or knows about connections.

mod addresses;
mod backend;
mod backend_url;
mod diff;
mod dynamic;
mod inventory;
mod names;
pub mod resolver;
mod routes;
pub mod servers;
mod stock;
#[cfg(test)]
mod usage_tests;

pub use backend::{BackendSpec, HttpBackendSpec, UrlPart};
pub use diff::{ChangeSummary, Changes};
pub use dynamic::DynamicSpec;
pub use inventory::{
    ClientEntry, DeploymentEntry, FileEntry, Inventory, RouteEntry, Settings, SubscriberEntry,
};
pub use names::NameTable;
pub use routes::{MethodDispatch, PathEntry, RouteSpec};
pub use stock::StockSpec;

use crate::config::{seconds, Config, ConfigError, Sources};
use crate::http::request::{HeadLimits, MAX_HEADERS};
use crate::net::cidr::{CidrSet, NetworkRule};
use crate::policy::usage::{self, UsageRegistry, UsageSpec};
use crate::route::table::RouteTable;
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A listener as the workers bind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    pub name: String,
    pub address: SocketAddr,
    /// Checked at accept: a denied peer is closed before a byte is read.
    pub rule: NetworkRule,
    pub trusted_proxies: CidrSet,
    /// 0: no cap.
    pub max_connections_per_ip: u32,
    /// Security response headers.
    pub security: crate::policy::security_headers::SecurityHeaders,
    /// HTTPS listeners: certificates, SNI, client authentication.
    pub tls: Option<Arc<crate::tls::server::ServerTls>>,
}

/// A deployment: its identity and its request policies.
#[derive(Debug)]
pub struct DeploymentSpec {
    pub name: String,
    pub listener: usize,
    pub path_prefix: String,
    /// Network rules, authentication, CORS, usage plans, rate limit.
    pub policies: crate::policy::DeploymentPolicies,
}

/// Client-side timeouts.
#[derive(Debug, Clone, Copy)]
pub struct ClientTimeouts {
    pub head: Duration,
    pub body: Duration,
    pub keep_alive: Duration,
    pub send: Duration,
    pub drain: Duration,
    pub websocket_idle: Duration,
    pub websocket_grace: Duration,
}

/// Upstream pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_idle_per_backend: usize,
    pub idle_timeout: Duration,
}

/// Everything a worker needs to serve requests, compiled from one config.
#[derive(Debug)]
pub struct Snapshot {
    /// Counts published snapshots: 1 at start, +1 per applied reload.
    pub generation: u64,
    /// SHA-256 of the config file text, hex.
    pub digest: String,
    /// When this snapshot was compiled.
    pub loaded_at: SystemTime,
    /// Where the admin endpoint listens, if on.
    pub admin: Option<SocketAddr>,
    /// Where access log lines go, if anywhere.
    pub access_log: Option<crate::telemetry::access_log::Destination>,
    pub head_limits: HeadLimits,
    pub max_body_bytes: u64,
    pub timeouts: ClientTimeouts,
    pub pool: PoolSettings,
    pub listeners: Vec<ListenerSpec>,
    pub deployments: Vec<DeploymentSpec>,
    pub routes: Vec<RouteSpec>,
    /// One table per listener, indexed like `listeners`.
    pub tables: Vec<RouteTable<PathEntry>>,
    /// Usage plans, subscribers and their counters.
    pub usage: UsageSpec,
    /// Where quota counts are kept across restarts.
    pub state_dir: PathBuf,
    /// Limits shared with other nodes through a store (`[cluster]`).
    pub cluster: Option<crate::cluster::ClusterSpec>,
    /// How back-end host names are resolved again (`[resolver]`).
    pub resolver: Option<resolver::ResolverSpec>,
    /// Subscribers exported with their own metric series (the busiest).
    pub max_subscriber_series: usize,
    /// Every file the configuration was read from (the main file first).
    pub files: Vec<PathBuf>,
    /// Every path key of the configuration and the absolute path it names.
    pub paths: Vec<crate::config::ResolvedPath>,
    /// Non-fatal findings (unresolvable hosts, ...), for `check` and the log.
    pub warnings: Vec<String>,
    /// The inventory's parts as written in the config.
    written: inventory::Written,
    /// What this snapshot defines, computed once when first asked for.
    inventory: std::sync::OnceLock<Inventory>,
}

impl Snapshot {
    /// Gives every rate limit and quota the running state it shares by name
    /// with the running configuration ([`UsageRegistry::attach`]).
    pub fn attach_usage(&mut self, registry: &UsageRegistry, now: crate::time::clock::Now) {
        let limits = self.deployments.iter_mut().filter_map(|d| {
            let name = d.name.as_str();
            d.policies.rate_limit.as_mut().map(|limit| (name, limit))
        });
        registry.attach(limits, &mut self.usage, now);
    }

    /// Gives every route its counters, keeping those of routes that existed before.
    pub fn attach_stats(&mut self, registry: &crate::telemetry::counters::StatsRegistry) {
        let names: Vec<String> = self
            .routes
            .iter()
            .map(|r| inventory::route_name(self, r))
            .collect();
        for (route, name) in self.routes.iter_mut().zip(names) {
            route.stats = registry.for_route(&name);
        }
    }

    /// What this snapshot defines, by name (computed once: 10,000 subscribers
    /// take milliseconds, and every reload compares against it).
    pub fn inventory(&self) -> &Inventory {
        self.inventory.get_or_init(|| Inventory::of(self))
    }

    /// True when some entitlement has a quota (counts then go to `state_dir`).
    pub fn has_quotas(&self) -> bool {
        self.usage
            .plans
            .iter()
            .flat_map(|p| &p.entitlements)
            .any(|e| e.quota.is_some())
    }
}

/// Where workers find the current snapshot; reloads store a new one.
pub type SnapshotStore = Arc<ArcSwap<Snapshot>>;

impl Snapshot {
    /// Validates `config` (whose text is `source`, read from `file`) and compiles it.
    /// Its paths are used as they are: [`crate::config::load_sources`] makes
    /// them absolute; a config from [`crate::config::parse_str`] keeps them
    /// as written.
    pub fn compile(config: &Config, source: &str, file: &Path) -> Result<Snapshot, ConfigError> {
        Snapshot::compile_sources(config, &Sources::single(file, source, config))
    }

    /// Validates and compiles a configuration read from several files.
    pub fn compile_sources(config: &Config, sources: &Sources) -> Result<Snapshot, ConfigError> {
        let err = |key: String, message: String| sources.error_at(&key, message);
        let limits = &config.limits;
        if limits.max_head_bytes < 256 || limits.max_head_bytes > 1 << 20 {
            return Err(err(
                "limits.max_head_bytes".into(),
                "must be between 256 and 1048576".into(),
            ));
        }
        if limits.max_uri_bytes == 0 || limits.max_uri_bytes > limits.max_head_bytes {
            return Err(err(
                "limits.max_uri_bytes".into(),
                "must be between 1 and max_head_bytes".into(),
            ));
        }
        if limits.max_headers == 0 || limits.max_headers > MAX_HEADERS {
            return Err(err(
                "limits.max_headers".into(),
                format!("must be between 1 and {MAX_HEADERS}"),
            ));
        }
        let t = &config.timeouts;
        let positive = |name: &str, value: f64| {
            seconds(value).ok_or_else(|| {
                err(
                    format!("timeouts.{name}"),
                    "must be a positive number of seconds".into(),
                )
            })
        };
        let timeouts = ClientTimeouts {
            head: positive("head", t.head)?,
            body: positive("body", t.body)?,
            keep_alive: positive("keep_alive", t.keep_alive)?,
            send: positive("send", t.send)?,
            drain: positive("drain", t.drain)?,
            websocket_idle: positive("websocket_idle", t.websocket_idle)?,
            websocket_grace: positive("websocket_grace", t.websocket_grace)?,
        };
        let pool = PoolSettings {
            max_idle_per_backend: config.upstream.max_idle_per_backend,
            idle_timeout: seconds(config.upstream.idle_timeout).ok_or_else(|| {
                err(
                    "upstream.idle_timeout".into(),
                    "must be a positive number of seconds".into(),
                )
            })?,
        };
        let mut warnings = sources.resolved.warnings.clone();
        let listeners = compile_listeners(config, &err, &mut warnings)?;
        let mut deployments = Vec::with_capacity(config.deployments.len());
        for (i, d) in config.deployments.iter().enumerate() {
            let key = |k: &str| format!("deployments[{i}].{k}");
            if d.name.is_empty() {
                return Err(err(key("name"), "deployment name must not be empty".into()));
            }
            if deployments
                .iter()
                .any(|o: &DeploymentSpec| o.name == d.name)
            {
                return Err(err(
                    key("name"),
                    format!("duplicate deployment name `{}`", d.name),
                ));
            }
            let listener = listeners
                .iter()
                .position(|l| l.name == d.listener)
                .ok_or_else(|| {
                    err(
                        key("listener"),
                        format!("unknown listener `{}`", d.listener),
                    )
                })?;
            let prefix = d.path_prefix.trim_end_matches('/');
            if !prefix.is_empty()
                && (!prefix.starts_with('/') || prefix.contains(['{', '}', '*', '?']))
            {
                return Err(err(
                    key("path_prefix"),
                    "must start with `/` and hold no parameters".into(),
                ));
            }
            let policies = crate::policy::compile::deployment_policies(d, &mut warnings)
                .map_err(|(k, m)| err(key(&k), m))?;
            deployments.push(DeploymentSpec {
                name: d.name.clone(),
                listener,
                path_prefix: prefix.to_string(),
                policies,
            });
        }
        for (spec, l) in listeners.iter().zip(&config.listeners) {
            if let (Some(tls), Some(settings)) = (&spec.tls, &l.tls) {
                tls.expiry_warnings(&settings.certificates, &mut warnings);
            }
        }
        let (routes, tables) =
            routes::compile_routes(config, &deployments, listeners.len(), &mut warnings)
                .map_err(|(key, message)| err(key, message))?;
        let names: Vec<&str> = deployments.iter().map(|d| d.name.as_str()).collect();
        let usage = usage::compile_usage(config, &names, &mut warnings)
            .map_err(|(key, message)| err(key, message))?;
        // Paths are used as they are: loading made them absolute.
        let state_dir = match (&config.state_dir, std::env::var_os("STATE_DIRECTORY")) {
            (Some(dir), _) if dir.is_empty() => {
                return Err(err("state_dir".into(), "must be a directory path".into()))
            }
            (Some(dir), _) => PathBuf::from(dir),
            (None, Some(systemd)) if !systemd.is_empty() => PathBuf::from(systemd),
            (None, _) => sources.config_dir().join("state"),
        };
        let cluster = match &config.cluster {
            Some(c) => Some(
                crate::cluster::compile(c, &sources.config_dir())
                    .map_err(|(key, m)| err(key, m))?,
            ),
            None => None,
        };
        let resolver =
            resolver::compile(config.resolver.as_ref()).map_err(|(key, m)| err(key, m))?;
        let admin = match config.admin.as_str() {
            "" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|_| {
                err("admin".into(), format!("`{text}` is not an IP:PORT address (use \"\" to turn the admin endpoint off)"))
            })?),
        };
        if let Some(admin) = admin {
            addresses::check_admin(admin, &listeners, &mut warnings)
                .map_err(|m| err("admin".into(), m))?;
        }
        let access_log = match config.access_log.as_ref().map(|a| a.path.as_str()) {
            None => None,
            Some("") => {
                return Err(err(
                    "access_log.path".into(),
                    "must be a file path or \"stdout\"".into(),
                ))
            }
            Some("stdout") => Some(crate::telemetry::access_log::Destination::Stdout),
            Some(path) => Some(crate::telemetry::access_log::Destination::File(path.into())),
        };
        Ok(Snapshot {
            generation: 1,
            access_log,
            digest: crate::config::digest::sha256_hex(&sources.digest_input()),
            loaded_at: SystemTime::now(),
            admin,
            head_limits: HeadLimits {
                max_head_bytes: limits.max_head_bytes,
                max_uri_bytes: limits.max_uri_bytes,
                max_headers: limits.max_headers,
            },
            max_body_bytes: limits.max_body_bytes,
            timeouts,
            pool,
            listeners,
            deployments,
            routes,
            tables,
            usage,
            state_dir,
            cluster,
            resolver,
            max_subscriber_series: config.metrics.max_subscriber_series,
            files: sources.files.iter().map(|f| f.path.clone()).collect(),
            paths: sources.resolved.paths.clone(),
            warnings,
            written: inventory::Written::of(config),
            inventory: std::sync::OnceLock::new(),
        })
    }
}

fn compile_listeners(
    config: &Config,
    err: &dyn Fn(String, String) -> ConfigError,
    warnings: &mut Vec<String>,
) -> Result<Vec<ListenerSpec>, ConfigError> {
    if config.listeners.is_empty() {
        return Err(err(
            "listeners".into(),
            "at least one [[listeners]] entry is needed".into(),
        ));
    }
    let mut listeners: Vec<ListenerSpec> = Vec::with_capacity(config.listeners.len());
    for (i, l) in config.listeners.iter().enumerate() {
        if l.name.is_empty() || listeners.iter().any(|o| o.name == l.name) {
            return Err(err(
                format!("listeners[{i}].name"),
                format!("listener name `{}` is empty or repeated", l.name),
            ));
        }
        let address: SocketAddr = l.address.parse().map_err(|_| {
            err(
                format!("listeners[{i}].address"),
                format!("`{}` is not an IP:PORT address", l.address),
            )
        })?;
        if let Some(other) = listeners
            .iter()
            .find(|o| addresses::collide(o.address, address))
        {
            return Err(err(
                format!("listeners[{i}].address"),
                format!(
                    "address {address} overlaps listener `{}` at {}: one process cannot bind both",
                    other.name, other.address
                ),
            ));
        }
        let key = |k: &str| format!("listeners[{i}].{k}");
        let rule = crate::policy::network::compile_rule(&l.allow, &l.deny)
            .map_err(|(k, m)| err(key(&k), m))?;
        let trusted_proxies = CidrSet::parse(&l.trusted_proxies).map_err(|e| {
            err(
                format!("{}[{}]", key("trusted_proxies"), e.index),
                e.to_string(),
            )
        })?;
        let security = crate::policy::security_headers::SecurityHeaders::compile(
            l.security_headers.as_ref(),
            l.tls.is_some(),
            &l.name,
            warnings,
        )
        .map_err(|(k, m)| err(key(&format!("security_headers.{k}")), m))?;
        let tls = match &l.tls {
            Some(tls) => Some(
                crate::tls::server::compile(&l.name, tls)
                    .map_err(|(k, message)| err(key(&format!("tls.{k}")), message))?,
            ),
            None => None,
        };
        listeners.push(ListenerSpec {
            name: l.name.clone(),
            address,
            rule,
            trusted_proxies,
            max_connections_per_ip: l.max_connections_per_ip,
            security,
            tls,
        });
    }
    Ok(listeners)
}
