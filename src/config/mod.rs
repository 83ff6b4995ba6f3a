//! The configuration as an operator writes it: plain serde data, no logic.
//!
//! First stage of the config pipeline (`TOML → Config → Snapshot`). Everything
//! here mirrors the TOML keys one to one (`deny_unknown_fields` everywhere, so a
//! typo is an error, not a silently ignored key). Validation, name resolution and
//! anything derived belong to [`crate::snapshot`], never here. Loading does two
//! things beyond parsing: relative paths become absolute against the config
//! file's directory ([`paths`]), and errors are located and worded for the
//! operator (`locate.rs`, `words.rs`).
//!
//! Only types that can hold no secret derive `Serialize`: `/config` publishes
//! them as written (`snapshot::inventory`). Tokens, JWT keys, back-end URLs,
//! stock answers and header values live in types that never do.

pub mod auth_remote;
pub mod backend;
mod cluster;
pub mod credentials;
pub mod digest;
mod load;
mod locate;
pub mod paths;
mod policies;
mod resolver;
mod seconds;
pub mod secret;
mod usage;
pub mod validation;
mod words;

pub use auth_remote::{HttpAuthorizer, Introspection, OnAuthorizerError};
pub use cluster::{ClusterConfig, OnStoreUnavailable};
pub use credentials::{BackendCredentials, ClientAuthorization, CredentialsKind};
pub use load::{load_file, load_sources, parse_str, ConfigError, SourceFile, Sources};
pub use locate::locate_key;
pub use paths::{Resolved, ResolvedPath};
pub use policies::*;
pub use resolver::ResolverConfig;
pub use seconds::seconds;
pub use secret::{Secret, SecretSource};
pub use usage::{
    Client, DeploymentRateLimit, DeploymentUsagePlans, Entitlement, Fragment, OnBreach, Quota,
    QuotaPeriod, RateLimit, RateLimitKey, Subscriber, UsagePlan,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the admin endpoint (metrics, health, config); `""` turns it off.
    #[serde(default = "default_admin")]
    pub admin: String,
    /// Access log; absent means no access log.
    #[serde(default)]
    pub access_log: Option<AccessLogConfig>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default)]
    pub upstream: UpstreamPool,
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// Files (relative to this one's directory) holding more `usage_plans` and `subscribers`.
    #[serde(default)]
    pub include: Vec<String>,
    /// Where quota counts are kept across restarts (relative to this file's
    /// directory; default `$STATE_DIRECTORY`, else `state` beside this file).
    #[serde(default)]
    pub state_dir: Option<String>,
    #[serde(default)]
    pub usage_plans: Vec<UsagePlan>,
    #[serde(default)]
    pub subscribers: Vec<Subscriber>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Limits shared with other nodes through a store; absent: this node counts alone.
    #[serde(default)]
    pub cluster: Option<ClusterConfig>,
    /// How back-end host names are resolved again; absent: at start and reload.
    #[serde(default)]
    pub resolver: Option<ResolverConfig>,
}

/// What `/metrics` exports beyond the fixed series.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Subscribers with their own series (the busiest ones); 0 for none.
    pub max_subscriber_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            max_subscriber_series: 100,
        }
    }
}

/// The admin endpoint listens on loopback unless configured otherwise.
pub fn default_admin() -> String {
    "127.0.0.1:9901".to_string()
}

/// Where access log lines go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// A file path (relative to the config file's directory; appended to;
    /// reopened on SIGUSR1 or when rotated away) or `"stdout"`.
    pub path: String,
}

/// HTTP size limits applied to every request.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Request line plus header fields, in bytes (431 above).
    pub max_head_bytes: usize,
    /// Request target, in bytes (414 above).
    pub max_uri_bytes: usize,
    /// Number of header fields (431 above).
    pub max_headers: usize,
    /// Request body, in bytes (413 above).
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8192,
            max_uri_bytes: 4096,
            max_headers: 100,
            max_body_bytes: 20_000_000,
        }
    }
}

/// Client-side timeouts, in seconds.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// First byte of a request head to its end (408 after).
    pub head: f64,
    /// Longest wait for the next piece of a request body (408 after).
    pub body: f64,
    /// Idle keep-alive connection lifetime.
    pub keep_alive: f64,
    /// Longest wait for the client to accept response bytes.
    pub send: f64,
    /// How long in-flight requests may run after SIGTERM.
    pub drain: f64,
    /// A WebSocket with no byte either way for this long is closed.
    pub websocket_idle: f64,
    /// After SIGTERM or a takeover, how long open WebSockets may go on.
    pub websocket_grace: f64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            head: 15.0,
            body: 15.0,
            keep_alive: 60.0,
            send: 15.0,
            drain: 30.0,
            websocket_idle: 300.0,
            websocket_grace: 10.0,
        }
    }
}

/// Per-worker pooling of upstream keep-alive connections.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamPool {
    /// Idle connections kept per back end and worker.
    pub max_idle_per_backend: usize,
    /// Seconds an idle pooled connection may wait before it is no longer reused.
    pub idle_timeout: f64,
}

impl Default for UpstreamPool {
    fn default() -> Self {
        UpstreamPool {
            max_idle_per_backend: 64,
            idle_timeout: 50.0,
        }
    }
}

/// A socket the gateway accepts clients on.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub name: String,
    /// `IP:PORT`; port 0 picks a free port (reported in the log).
    pub address: String,
    /// CIDRs allowed to connect (empty: everyone not denied).
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDRs refused at accept; deny wins over allow.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed: the client is then the
    /// right-most untrusted address in it.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Open connections one client address may hold (0: no cap).
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: u32,
    /// Security headers added to (and back-end headers removed from) every response.
    #[serde(default)]
    pub security_headers: Option<SecurityHeadersConfig>,
    /// HTTPS: certificates (chosen by SNI) and optional client mTLS.
    #[serde(default)]
    pub tls: Option<ListenerTls>,
}

/// A listener's TLS settings (see [`crate::tls::server`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Certificate/key pairs; SNI picks one by its names, the first is the default.
    pub certificates: Vec<CertificateFiles>,
    /// Ask clients for a certificate signed by `ca`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// Seconds a client may take to complete the handshake (default 10).
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout: f64,
}

fn default_handshake_timeout() -> f64 {
    10.0
}

/// A PEM certificate chain and its PEM private key (paths, relative to the
/// config file's directory).
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert: String,
    pub key: String,
}

/// Client certificate verification on a listener.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// PEM file of the CA certificates client certificates must chain to.
    pub ca: String,
    /// Refuse clients without a certificate (default true); false makes it optional.
    #[serde(default = "default_true")]
    pub required: bool,
}

fn default_true() -> bool {
    true
}

fn default_max_connections_per_ip() -> u32 {
    1000
}

/// A group of routes under one path prefix on one listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub name: String,
    pub listener: String,
    /// Prepended to every route path; `"/"` or empty for none.
    #[serde(default)]
    pub path_prefix: String,
    /// Which client addresses may call this deployment.
    #[serde(default)]
    pub network: Option<NetworkPolicy>,
    /// Requests need a subscriber's client token.
    #[serde(default)]
    pub usage_plans: Option<DeploymentUsagePlans>,
    /// A limit on the whole deployment or per client address.
    #[serde(default)]
    pub rate_limit: Option<DeploymentRateLimit>,
    /// Who the caller is (JWT); absent: no authentication.
    #[serde(default)]
    pub authentication: Option<Authentication>,
    /// CORS for every route (a route's own `cors` wins).
    #[serde(default)]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A deployment's network rule (client address after `trusted_proxies`).
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkPolicy {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    /// `forbidden` (403, the default) or `close` (close without an answer).
    #[serde(default)]
    pub on_deny: OnDeny,
}

/// What a denied client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDeny {
    #[default]
    Forbidden,
    Close,
}

/// One path (and method set) to one back end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact (`/a/b`), with `{param}` segments, or a prefix ending in `{name*}` or `*`.
    pub path: String,
    /// Allowed methods; empty or absent means every method.
    #[serde(default)]
    pub methods: Vec<String>,
    pub backend: Backend,
    /// Who may call the route (default: `authenticated` when the deployment
    /// has authentication, else `anonymous`).
    #[serde(default)]
    pub authorization: Option<AuthorizationConfig>,
    #[serde(default)]
    pub cors: Option<Cors>,
    /// Changes to the headers the back end receives.
    #[serde(default)]
    pub request_headers: Option<HeaderTransformConfig>,
    /// Changes to the headers the client receives.
    #[serde(default)]
    pub response_headers: Option<HeaderTransformConfig>,
    /// Required fields, content types and a JSON body schema.
    #[serde(default)]
    pub validation: Option<validation::ValidationConfig>,
}

/// Where a route's requests go: `type = "http"` (with `url` and timeouts) or
/// `type = "stock"` (with `status`, `headers`, `body`).
///
/// One flat table rather than a tagged enum, so that an error inside it keeps
/// its exact key and line; which keys belong to which type is checked by the
/// snapshot compiler.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    #[serde(rename = "type")]
    pub kind: BackendKind,
    /// http: `http://host[:port][/path]`, `{param}` placeholders allowed in the path.
    pub url: Option<String>,
    /// http: seconds to establish the TCP connection (default 60).
    pub connect_timeout: Option<f64>,
    /// http: seconds to wait for each read of the response (default 10).
    pub read_timeout: Option<f64>,
    /// http: seconds to wait for each write of the request (default 10).
    pub send_timeout: Option<f64>,
    /// https: verify the back end's certificate (default true).
    pub tls_verify: Option<bool>,
    /// https: extra PEM CA certificates trusted besides the system store
    /// (this and the two below: paths relative to the config file's directory).
    pub ca: Option<String>,
    /// https: PEM client certificate chain presented to the back end.
    pub client_cert: Option<String>,
    /// https: PEM private key of `client_cert`.
    pub client_key: Option<String>,
    /// stock: the status code.
    pub status: Option<u16>,
    /// stock: response header fields.
    pub headers: Option<BTreeMap<String, String>>,
    /// stock: response body (default empty).
    pub body: Option<String>,
    /// dynamic: the request value that picks a case, e.g.
    /// `request.headers[X-Region]` (see `route::selector`).
    pub selector: Option<String>,
    /// dynamic: the cases, each a back end of type `http` or `stock`.
    pub cases: Option<Vec<BackendCase>>,
    /// http: credentials the gateway presents to the back end (Basic, or an
    /// OAuth2 client-credentials token it fetches and renews).
    pub credentials: Option<BackendCredentials>,
    // Several servers (see `backend.rs`): instead of `url`, servers with the
    // same scheme and path; balancing, outlier ejection, retries, limits.
    pub servers: Option<Vec<backend::ServerEntry>>,
    pub balance: Option<backend::Balance>,
    /// consistent_hash: `client_address`, `subscriber` or `header:NAME`.
    pub hash_key: Option<String>,
    pub outlier: Option<backend::Outlier>,
    pub retry: Option<backend::Retry>,
    pub health_check: Option<backend::HealthCheck>,
    /// http: longest time between resolutions of the servers' host names.
    pub resolve_interval: Option<f64>,
    /// Requests in flight to the back end, all workers together (default unlimited).
    pub max_requests: Option<u32>,
    /// Requests in flight to each server, all workers together (default unlimited).
    pub max_requests_per_server: Option<u32>,
    /// http: forward WebSocket upgrades (default true).
    pub websocket: Option<bool>,
}

/// One case of a `dynamic` back end.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendCase {
    /// Names the case in logs and `/config` (default `case-N`).
    #[serde(default)]
    pub name: Option<String>,
    /// Values of the selector that lead here: exact, or patterns with `*`
    /// (any run of characters) and `?` (one character).
    #[serde(default)]
    pub keys: Vec<String>,
    /// The case for a value no key matches (and for a request without the value).
    #[serde(default)]
    pub default: bool,
    pub backend: Backend,
}

/// The kinds of back end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    Http,
    Stock,
    /// The back end is chosen per request by a selector over cases.
    Dynamic,
}
