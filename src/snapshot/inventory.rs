//! What a snapshot defines, in plain fields: `/config` publishes it, and two
//! of them are compared ([`super::diff`]) for the reload audit line and for
//! `check --admin`.
//!
//! Settings, listeners, deployments and usage plans appear as written (CIDRs,
//! token locations and file paths as in the file, numbers as numbers,
//! defaults filled in), taken from the config when the snapshot is compiled
//! ([`Written`]); routes by name, with their back end's target and a
//! fingerprint; subscribers with their plans; clients by name with a
//! fingerprint; and the files a reload reads besides the config (client CA
//! bundles of TLS listeners, JWT key files, back-end CA bundles and client
//! certificates) with their modification times. Listener certificates and
//! keys are not among them: they are watched and rotated on their own.
//!
//! Never a secret: no token or token digest, no JWT key, no back-end URL path
//! or query, no stock answer, no header value. Those enter fingerprints only
//! (the first 16 hex digits of a SHA-256), so that a change shows.

use super::{BackendSpec, RouteSpec, Snapshot};
use crate::config::{self, AuthenticationKind, Config, PublicKeysKind};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What a snapshot defines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    pub settings: Settings,
    pub listeners: Vec<config::Listener>,
    pub deployments: Vec<DeploymentEntry>,
    pub routes: Vec<RouteEntry>,
    pub usage_plans: Vec<config::UsagePlan>,
    pub subscribers: Vec<SubscriberEntry>,
    pub clients: Vec<ClientEntry>,
    pub files: Vec<FileEntry>,
}

/// The inventory's parts taken from the config as written (a few entries:
/// computed when the snapshot is compiled).
#[derive(Debug, Clone)]
pub struct Written {
    settings: Settings,
    listeners: Vec<config::Listener>,
    deployments: Vec<DeploymentEntry>,
    usage_plans: Vec<config::UsagePlan>,
    files: Vec<FileEntry>,
}

/// The top-level settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The admin endpoint's address; null when it is off.
    pub admin: Option<String>,
    /// `stdout` or a file path; null without an access log.
    pub access_log: Option<String>,
    /// As written; null for the default.
    pub state_dir: Option<String>,
    pub limits: config::Limits,
    /// Seconds.
    pub timeouts: config::Timeouts,
    pub upstream: config::UpstreamPool,
    pub metrics: config::MetricsConfig,
    /// `[resolver]` as written; null when absent.
    #[serde(default)]
    pub resolver: Option<config::ResolverConfig>,
}

/// A deployment and its request policies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEntry {
    pub name: String,
    pub listener: String,
    pub path_prefix: String,
    pub network: Option<config::NetworkPolicy>,
    pub authentication: Option<AuthenticationEntry>,
    pub cors: Option<config::Cors>,
    pub usage_plans: Option<config::DeploymentUsagePlans>,
    pub rate_limit: Option<config::DeploymentRateLimit>,
}

/// A deployment's authentication, keys left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthenticationEntry {
    /// `jwt`.
    #[serde(rename = "type")]
    pub kind: String,
    pub token_header: Option<String>,
    pub token_query_param: Option<String>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub is_anonymous_access_allowed: bool,
    /// `static_keys` or `remote_jwks`.
    pub public_keys: String,
    /// Of every authentication setting, keys included.
    pub fingerprint: String,
}

/// A route: where it goes, and a fingerprint of the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    /// `deployment METHODS pattern` (`*`: no methods list).
    pub name: String,
    pub deployment: String,
    /// As listed; empty: every method but TRACE and TRACK.
    pub methods: Vec<String>,
    /// The full pattern (deployment prefix + route path).
    pub path: String,
    /// `scheme://host:port`, or `stock STATUS`.
    pub backend: String,
    /// Of the rest of the back end (URL path and query, timeouts, TLS
    /// settings; a stock answer's fields and body) and of the route's
    /// policies (authorization, CORS, header transformations).
    pub fingerprint: String,
}

/// A subscriber and its plans, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberEntry {
    pub name: String,
    pub usage_plans: Vec<String>,
}

/// A client credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEntry {
    /// `subscriber/client`.
    pub name: String,
    /// 8 hex digits of a SHA-256 of the token's digest: a rotated token changes it.
    pub fingerprint: String,
}

/// A file a reload reads besides the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// As the gateway opens it.
    pub path: String,
    /// RFC 3339; null when the file cannot be read.
    pub modified: Option<String>,
    pub bytes: Option<u64>,
}

impl Written {
    /// The written parts of `config`; `base` is the config file's directory
    /// (JWT key files are relative to it).
    pub fn of(config: &Config) -> Written {
        Written {
            settings: Settings {
                admin: (!config.admin.is_empty()).then(|| config.admin.clone()),
                access_log: config.access_log.as_ref().map(|a| a.path.clone()),
                state_dir: config.state_dir.clone(),
                limits: config.limits.clone(),
                timeouts: config.timeouts.clone(),
                upstream: config.upstream.clone(),
                metrics: config.metrics.clone(),
                resolver: config.resolver.clone(),
            },
            listeners: config.listeners.clone(),
            deployments: config.deployments.iter().map(deployment_entry).collect(),
            usage_plans: config.usage_plans.clone(),
            files: referenced_files(config),
        }
    }
}

impl Inventory {
    pub fn of(snapshot: &Snapshot) -> Inventory {
        let written = &snapshot.written;
        let usage = &snapshot.usage;
        Inventory {
            settings: written.settings.clone(),
            listeners: written.listeners.clone(),
            deployments: written.deployments.clone(),
            routes: snapshot
                .routes
                .iter()
                .map(|r| route_entry(snapshot, r))
                .collect(),
            usage_plans: written.usage_plans.clone(),
            subscribers: usage
                .subscribers
                .iter()
                .map(|s| {
                    let mut plans: Vec<String> = Vec::new();
                    for grant in &s.grants {
                        let plan = usage.plans.get(grant.plan as usize).map(|p| &p.name);
                        if let Some(plan) = plan.filter(|p| !plans.contains(p)) {
                            plans.push(plan.clone());
                        }
                    }
                    SubscriberEntry {
                        name: s.name.clone(),
                        usage_plans: plans,
                    }
                })
                .collect(),
            clients: usage
                .client_prints()
                .into_iter()
                .map(|(name, fingerprint)| ClientEntry { name, fingerprint })
                .collect(),
            files: written.files.clone(),
        }
    }
}

/// The first 16 hex digits of the SHA-256 of `text`.
pub fn fingerprint(text: &str) -> String {
    let mut digest = crate::config::digest::sha256_hex(text);
    digest.truncate(16);
    digest
}

fn deployment_entry(d: &config::Deployment) -> DeploymentEntry {
    DeploymentEntry {
        name: d.name.clone(),
        listener: d.listener.clone(),
        path_prefix: d.path_prefix.clone(),
        network: d.network.clone(),
        authentication: d.authentication.as_ref().map(|a| AuthenticationEntry {
            kind: match a.kind {
                AuthenticationKind::Jwt => "jwt".into(),
                AuthenticationKind::HttpAuthorizer => "http_authorizer".into(),
                AuthenticationKind::Oauth2Introspection => "oauth2_introspection".into(),
            },
            token_header: a.token_header.clone(),
            token_query_param: a.token_query_param.clone(),
            issuers: a.issuers.clone(),
            audiences: a.audiences.clone(),
            is_anonymous_access_allowed: a.is_anonymous_access_allowed,
            public_keys: match a.public_keys.kind {
                PublicKeysKind::StaticKeys => "static_keys".into(),
                PublicKeysKind::RemoteJwks => "remote_jwks".into(),
            },
            fingerprint: fingerprint(&format!("{a:?}")),
        }),
        cors: d.cors.clone(),
        usage_plans: d.usage_plans.clone(),
        rate_limit: d.rate_limit.clone(),
    }
}

/// A route's stable name: `deployment METHODS pattern`.
pub fn route_name(snapshot: &Snapshot, route: &RouteSpec) -> String {
    let deployment = &snapshot.deployments[route.deployment].name;
    let methods = if route.methods.is_empty() {
        "*".to_string()
    } else {
        route.methods.join(",")
    };
    format!("{deployment} {methods} {}", route.pattern)
}

/// A route's entry. The back end shows where it goes (`scheme://host:port`
/// or the stock status); the rest (URL path and query, stock header values
/// and body) enters the fingerprint only: an API key in a back-end URL's
/// query is common.
fn route_entry(snapshot: &Snapshot, route: &RouteSpec) -> RouteEntry {
    let (backend, details) = backend_entry(&route.backend);
    RouteEntry {
        name: route_name(snapshot, route),
        deployment: snapshot.deployments[route.deployment].name.clone(),
        methods: route.methods.iter().map(|m| m.to_string()).collect(),
        path: route.pattern.clone(),
        backend,
        fingerprint: fingerprint(&format!("{details} {:?}", route.policies)),
    }
}

/// What `/config` shows of a back end, and what only enters the fingerprint.
fn backend_entry(backend: &BackendSpec) -> (String, String) {
    match backend {
        BackendSpec::Http(h) => (
            h.label(),
            format!(
                "{:?} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
                h.written,
                written_balance(&h.balance),
                h.outlier_written.then_some(h.outlier),
                h.retry,
                h.health_check,
                h.path,
                h.query,
                h.append_remainder,
                h.connect_timeout,
                h.read_timeout,
                h.send_timeout
            ),
        ),
        BackendSpec::Stock(s) => (
            format!("stock {}", s.status),
            format!("{:?} {:?}", s.head, s.body),
        ),
        BackendSpec::Dynamic(d) => {
            let mut shown = format!("dynamic on {}:", d.selector_text);
            let mut details = format!("{:?}", d.cases);
            for (name, case) in d.names.iter().zip(&d.backends) {
                let (backend, more) = backend_entry(case);
                shown.push_str(&format!(" {name} -> {backend};"));
                details.push_str(&more);
            }
            shown.pop();
            (shown, details)
        }
    }
}

/// The balancing method as written: the hashing ring follows the servers'
/// addresses (`super::names`), which are not part of the configuration.
fn written_balance(balance: &super::servers::BalanceSpec) -> String {
    match balance {
        super::servers::BalanceSpec::ConsistentHash { on, .. } => format!("ConsistentHash {on:?}"),
        other => format!("{other:?}"),
    }
}

/// The files a reload reads besides the config, each once, in path order.
/// Paths are used as written: loading made them absolute.
fn referenced_files(config: &Config) -> Vec<FileEntry> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for listener in &config.listeners {
        let client_auth = listener.tls.as_ref().and_then(|t| t.client_auth.as_ref());
        paths.extend(client_auth.map(|auth| PathBuf::from(&auth.ca)));
    }
    for deployment in &config.deployments {
        if let Some(keys) = deployment.authentication.as_ref().map(|a| &a.public_keys) {
            let key_files = keys.keys.iter().filter_map(|k| k.key_file.as_ref());
            let files = keys.jwks_file.iter().chain(&keys.ca_file).chain(key_files);
            paths.extend(files.map(PathBuf::from));
        }
        let introspection = deployment
            .authentication
            .as_ref()
            .and_then(|a| a.introspection.as_ref());
        if let Some(crate::config::SecretSource::File(path)) =
            introspection.and_then(|i| i.client_secret.as_ref())
        {
            paths.push(PathBuf::from(path));
        }
        for route in &deployment.routes {
            let schema = route
                .validation
                .as_ref()
                .and_then(|v| v.body_schema.as_ref());
            paths.extend(schema.map(PathBuf::from));
            let cases = route.backend.cases.iter().flatten().map(|c| &c.backend);
            for b in std::iter::once(&route.backend).chain(cases) {
                let files = [&b.ca, &b.client_cert, &b.client_key].into_iter().flatten();
                paths.extend(files.map(PathBuf::from));
            }
            paths.extend(secret_files(route).map(PathBuf::from));
        }
    }
    paths.sort();
    paths.dedup();
    paths.iter().map(|p| stamp(p)).collect()
}

/// The files a route's secrets are read from (header values, back-end
/// credentials): a changed one is a change a reload applies.
fn secret_files(route: &config::Route) -> impl Iterator<Item = &String> {
    use crate::config::SecretSource;
    let sets = [&route.request_headers, &route.response_headers]
        .into_iter()
        .flatten()
        .flat_map(|t| t.set.iter().filter_map(|s| s.value.as_ref()));
    let cases = route.backend.cases.iter().flatten().map(|c| &c.backend);
    let credentials = std::iter::once(&route.backend)
        .chain(cases)
        .flat_map(|b| b.credentials.iter())
        .flat_map(|c| [&c.password, &c.client_secret].into_iter().flatten());
    sets.chain(credentials).filter_map(|source| match source {
        SecretSource::File(path) => Some(path),
        _ => None,
    })
}

/// A file's path, modification time and size.
fn stamp(path: &Path) -> FileEntry {
    let meta = std::fs::metadata(path).ok();
    FileEntry {
        path: path.display().to_string(),
        modified: meta
            .as_ref()
            .and_then(|m| m.modified().ok())
            .map(|t| humantime::format_rfc3339_nanos(t).to_string()),
        bytes: meta.map(|m| m.len()),
    }
}
