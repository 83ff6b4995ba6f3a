//! Compiling a route's back end: URL templates with path parameters, the
//! servers (`super::servers`; IP literals get their address here, host names
//! theirs when `super::names` resolves them), timeouts, and prebuilt stock
//! responses.

use super::backend_url::{literal_address, parse_template, pool_key, shown, split_url};
use super::servers::{
    compile_balance, compile_outlier, compile_retry, health_cell, BalanceSpec, OutlierSpec,
    RetrySpec, ServerSpec,
};
use super::stock::StockBackend;
use crate::config::{seconds, Backend, BackendKind};
use std::time::Duration;

/// The keys of an `http` back end, defaults applied.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    /// The servers' URLs (one for `url`) and weights.
    pub servers: Vec<(String, u32)>,
    /// `balance`, `hash_key`, `outlier`, `retry` and the limits, as written.
    pub several: Box<Backend>,
    pub connect_timeout: f64,
    pub read_timeout: f64,
    pub send_timeout: f64,
    /// `tls_verify`, `ca`, `client_cert`, `client_key` (https only).
    pub tls: crate::tls::client::ClientTlsSettings,
    /// Whether any of the TLS keys was written.
    pub tls_keys_given: Option<&'static str>,
    /// The credentials the gateway presents to the back end.
    pub credentials: Option<Box<crate::config::BackendCredentials>>,
}

/// A back-end table read as its type: required keys present, keys of the
/// other type absent. Errors are (key, message).
pub enum TypedBackend {
    Http(HttpBackend),
    Stock(StockBackend),
    /// Compiled by `snapshot::dynamic` (its cases are back ends of their own).
    Dynamic,
}

/// Checks which keys a back-end table uses against its `type`.
pub fn typed(backend: &Backend) -> Result<TypedBackend, (&'static str, String)> {
    let misplaced = |key: &'static str, present: bool, kind: &str| {
        if present {
            Err((
                key,
                format!("`{key}` does not apply to a `{kind}` back end"),
            ))
        } else {
            Ok(())
        }
    };
    if backend.kind != BackendKind::Dynamic {
        let kind = if backend.kind == BackendKind::Http {
            "http"
        } else {
            "stock"
        };
        misplaced("selector", backend.selector.is_some(), kind)?;
        misplaced("cases", backend.cases.is_some(), kind)?;
    }
    match backend.kind {
        BackendKind::Dynamic => {
            let keys = [
                ("url", backend.url.is_some()),
                ("connect_timeout", backend.connect_timeout.is_some()),
                ("read_timeout", backend.read_timeout.is_some()),
                ("send_timeout", backend.send_timeout.is_some()),
                ("tls_verify", backend.tls_verify.is_some()),
                ("ca", backend.ca.is_some()),
                ("client_cert", backend.client_cert.is_some()),
                ("client_key", backend.client_key.is_some()),
                ("status", backend.status.is_some()),
                ("headers", backend.headers.is_some()),
                ("body", backend.body.is_some()),
                ("credentials", backend.credentials.is_some()),
                ("websocket", backend.websocket.is_some()),
            ];
            for (key, given) in keys {
                misplaced(key, given, "dynamic")?;
            }
            Ok(TypedBackend::Dynamic)
        }
        BackendKind::Http => {
            misplaced("status", backend.status.is_some(), "http")?;
            misplaced("headers", backend.headers.is_some(), "http")?;
            misplaced("body", backend.body.is_some(), "http")?;
            let servers = match (&backend.url, &backend.servers) {
                (Some(url), None) => vec![(url.clone(), 1)],
                (None, Some(list)) if !list.is_empty() && list.len() <= 1000 => list
                    .iter()
                    .map(|s| (s.url.clone(), s.weight.unwrap_or(1)))
                    .collect(),
                (None, Some(_)) => {
                    return Err(("servers", "must list 1 to 1000 servers".to_string()))
                }
                (Some(_), Some(_)) => {
                    return Err((
                        "servers",
                        "give either `url` or `servers`, not both".to_string(),
                    ))
                }
                (None, None) => {
                    return Err(("url", "an `http` back end needs a `url`".to_string()))
                }
            };
            if let Some((url, _)) = servers.iter().find(|(_, w)| !(1..=100).contains(w)) {
                return Err((
                    "servers",
                    format!("the weight of `{}` must be 1 to 100", shown(url)),
                ));
            }
            let tls_keys_given = [
                ("tls_verify", backend.tls_verify.is_some()),
                ("ca", backend.ca.is_some()),
                ("client_cert", backend.client_cert.is_some()),
                ("client_key", backend.client_key.is_some()),
            ]
            .into_iter()
            .find_map(|(key, given)| given.then_some(key));
            Ok(TypedBackend::Http(HttpBackend {
                servers,
                several: Box::new(backend.clone()),
                connect_timeout: backend.connect_timeout.unwrap_or(60.0),
                read_timeout: backend.read_timeout.unwrap_or(10.0),
                send_timeout: backend.send_timeout.unwrap_or(10.0),
                tls: crate::tls::client::ClientTlsSettings {
                    verify: backend.tls_verify.unwrap_or(true),
                    ca: backend.ca.clone(),
                    client_cert: backend.client_cert.clone(),
                    client_key: backend.client_key.clone(),
                },
                tls_keys_given,
                credentials: backend.credentials.clone().map(Box::new),
            }))
        }
        BackendKind::Stock => {
            misplaced("url", backend.url.is_some(), "stock")?;
            misplaced(
                "connect_timeout",
                backend.connect_timeout.is_some(),
                "stock",
            )?;
            misplaced("read_timeout", backend.read_timeout.is_some(), "stock")?;
            misplaced("send_timeout", backend.send_timeout.is_some(), "stock")?;
            misplaced("tls_verify", backend.tls_verify.is_some(), "stock")?;
            misplaced("ca", backend.ca.is_some(), "stock")?;
            misplaced("client_cert", backend.client_cert.is_some(), "stock")?;
            misplaced("client_key", backend.client_key.is_some(), "stock")?;
            misplaced("credentials", backend.credentials.is_some(), "stock")?;
            misplaced("websocket", backend.websocket.is_some(), "stock")?;
            misplaced("servers", backend.servers.is_some(), "stock")?;
            misplaced("balance", backend.balance.is_some(), "stock")?;
            misplaced("hash_key", backend.hash_key.is_some(), "stock")?;
            misplaced("outlier", backend.outlier.is_some(), "stock")?;
            misplaced("retry", backend.retry.is_some(), "stock")?;
            misplaced("health_check", backend.health_check.is_some(), "stock")?;
            misplaced(
                "resolve_interval",
                backend.resolve_interval.is_some(),
                "stock",
            )?;
            misplaced("max_requests", backend.max_requests.is_some(), "stock")?;
            misplaced(
                "max_requests_per_server",
                backend.max_requests_per_server.is_some(),
                "stock",
            )?;
            let status = backend
                .status
                .ok_or(("status", "a `stock` back end needs a `status`".to_string()))?;
            Ok(TypedBackend::Stock(StockBackend {
                status,
                headers: backend.headers.clone().unwrap_or_default(),
                body: backend.body.clone().unwrap_or_default(),
            }))
        }
    }
}

/// A compiled back end. One per route, read on every request: kept inline
/// (no box to follow), whatever the size difference of its variants.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BackendSpec {
    Http(HttpBackendSpec),
    Stock(super::stock::StockSpec),
    /// Chosen per request (`snapshot::dynamic`).
    Dynamic(Box<super::dynamic::DynamicSpec>),
}

/// One piece of a back-end URL path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlPart {
    Literal(Box<str>),
    /// Replaced by the value of the route's path parameter of this name.
    Param(Box<str>),
}

/// An HTTP back end, ready to forward to.
#[derive(Debug)]
pub struct HttpBackendSpec {
    /// What the `Host` header says: the first server's URL authority (the
    /// servers of a back end serve the same site).
    pub authority: Box<str>,
    /// Where requests go; never empty. One per URL until host names are
    /// resolved, then one per address of each name (`super::names`).
    pub servers: Vec<ServerSpec>,
    /// The servers as written: each URL's pool key and weight.
    pub written: Vec<(Box<str>, u32)>,
    /// `resolve_interval`: the longest an answer for a host name is kept.
    pub resolve_interval: Option<Duration>,
    /// The `outlier` table was written (else its default follows the
    /// number of servers, which resolving names changes).
    pub outlier_written: bool,
    pub balance: BalanceSpec,
    pub outlier: OutlierSpec,
    pub retry: RetrySpec,
    /// Active health checks, if configured (run by `crate::proxy::health_check`).
    pub health_check: Option<super::servers::HealthCheckSpec>,
    /// Requests in flight, all workers together, beyond which requests get 503.
    pub max_requests: u32,
    pub max_requests_per_server: u32,
    /// Requests in flight to this back end (this snapshot's), all workers together.
    pub active: std::sync::atomic::AtomicU32,
    pub tls: bool,
    pub path: Vec<UrlPart>,
    /// The URL's own query string, if any, without `?`.
    pub query: Option<Box<str>>,
    /// Prefix route whose URL does not use the catch-all: append the remainder.
    pub append_remainder: Option<Box<str>>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub send_timeout: Duration,
    /// What the gateway presents to the back end (`Authorization`).
    pub credentials: Option<crate::policy::credentials::BackendAuth>,
    /// WebSocket upgrades are forwarded (else dropped like other upgrades).
    pub websocket: bool,
}

/// Compiles an HTTP back end for a route whose path has `route_params` (the
/// catch-all last, if `catch_all`). Errors are messages for the `url` key.
pub fn compile_http(
    config: &HttpBackend,
    route_params: &[String],
    catch_all: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<HttpBackendSpec, (&'static str, String)> {
    let key = if config.servers.len() == 1 && config.several.servers.is_none() {
        "url"
    } else {
        "servers"
    };
    let (first_url, _) = &config.servers[0];
    let first = split_url(first_url).map_err(|m| (key, m))?;
    let (path, query) = match first.path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (first.path_and_query, None),
    };
    let path = parse_template(path).map_err(|m| (key, m))?;
    for part in &path {
        if let UrlPart::Param(name) = part {
            if !route_params.iter().any(|p| p.as_str() == &**name) {
                return Err((
                    key,
                    format!(
                        "back-end URL uses `{{{name}}}` but the route path has no such parameter"
                    ),
                ));
            }
        }
    }
    if first
        .path_and_query
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err((
            key,
            format!(
                "back-end URL `{}` contains whitespace or control characters",
                shown(first_url)
            ),
        ));
    }
    let append_remainder = catch_all
        .filter(|name| {
            !path
                .iter()
                .any(|p| matches!(p, UrlPart::Param(n) if &**n == *name))
        })
        .map(Into::into);
    if let (false, Some(key)) = (first.tls, config.tls_keys_given) {
        return Err((key, format!("`{key}` applies to https:// back ends only")));
    }
    let several = &config.several;
    let mut servers = Vec::with_capacity(config.servers.len());
    for (url, weight) in &config.servers {
        let server = split_url(url).map_err(|m| (key, m))?;
        if server.tls != first.tls || server.path_and_query != first.path_and_query {
            return Err((
                key,
                format!(
                    "server `{}` must have the same scheme, path and query as `{}`",
                    shown(url),
                    shown(first_url)
                ),
            ));
        }
        let pool_key: Box<str> = pool_key(first.tls, &server.host, server.port, &config.tls).into();
        if servers.iter().any(|s: &ServerSpec| s.pool_key == pool_key) {
            return Err((key, format!("server `{}` is listed twice", shown(url))));
        }
        let tls_client = match first.tls {
            true => Some(crate::tls::client::compile(
                &server.host,
                &config.tls,
                warnings,
            )?),
            false => None,
        };
        servers.push(ServerSpec {
            health: health_cell(&pool_key),
            name: pool_key.split(' ').next().unwrap_or_default().into(),
            pool_key,
            addr: literal_address(&server.host, server.port),
            host: server.host.into(),
            port: server.port,
            tls_client,
            weight: *weight,
            resolutions: None,
        });
    }
    let resolve_interval = match several.resolve_interval {
        Some(every) => Some(seconds(every).ok_or((
            "resolve_interval",
            "must be a positive number of seconds".to_string(),
        ))?),
        None => None,
    };
    let keys: Vec<&str> = servers.iter().map(|s| &*s.pool_key).collect();
    let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
    Ok(HttpBackendSpec {
        authority: first.authority.into(),
        balance: compile_balance(
            several.balance,
            several.hash_key.as_deref(),
            &keys,
            &weights,
        )?,
        outlier: compile_outlier(several.outlier.as_ref(), servers.len())?,
        outlier_written: several.outlier.is_some(),
        resolve_interval,
        written: servers
            .iter()
            .map(|s| (s.pool_key.clone(), s.weight))
            .collect(),
        retry: compile_retry(several.retry.as_ref())?,
        health_check: super::servers::compile_health_check(several.health_check.as_ref())?,
        max_requests: several.max_requests.unwrap_or(u32::MAX),
        max_requests_per_server: several.max_requests_per_server.unwrap_or(u32::MAX),
        websocket: several.websocket.unwrap_or(true),
        active: Default::default(),
        servers,
        tls: first.tls,
        path,
        query: query.map(Into::into),
        append_remainder,
        connect_timeout: seconds(config.connect_timeout).ok_or((
            "connect_timeout",
            "must be a positive number of seconds".into(),
        ))?,
        read_timeout: seconds(config.read_timeout).ok_or((
            "read_timeout",
            "must be a positive number of seconds".into(),
        ))?,
        send_timeout: seconds(config.send_timeout).ok_or((
            "send_timeout",
            "must be a positive number of seconds".into(),
        ))?,
        credentials: match &config.credentials {
            Some(c) => Some(crate::policy::credentials::compile_for_backend(
                c, warnings,
            )?),
            None => None,
        },
    })
}

impl HttpBackendSpec {
    /// The servers' `scheme://host:port` as written, comma-separated (logs,
    /// `/config`, `check`): one per URL, however many addresses a name has.
    pub fn label(&self) -> String {
        let bases: Vec<&str> = self
            .written
            .iter()
            .map(|(key, _)| key.split(' ').next().unwrap_or_default())
            .collect();
        bases.join(",")
    }
}
