//! Compiling a route's back end: URL templates with path parameters, resolved
//! socket addresses, timeouts, and prebuilt stock responses.

use super::stock::StockBackend;
use crate::config::{seconds, Backend, BackendKind};
use crate::route::table::{placeholder, Placeholder};
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The keys of an `http` back end, defaults applied.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    pub url: String,
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
            let url = backend
                .url
                .clone()
                .ok_or(("url", "an `http` back end needs a `url`".to_string()))?;
            let tls_keys_given = [
                ("tls_verify", backend.tls_verify.is_some()),
                ("ca", backend.ca.is_some()),
                ("client_cert", backend.client_cert.is_some()),
                ("client_key", backend.client_key.is_some()),
            ]
            .into_iter()
            .find_map(|(key, given)| given.then_some(key));
            Ok(TypedBackend::Http(HttpBackend {
                url,
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

/// A compiled back end.
#[derive(Debug)]
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
    /// Identifies the upstream for connection pooling: `scheme://host:port`.
    pub pool_key: Box<str>,
    /// What the `Host` header says: the URL's authority.
    pub authority: Box<str>,
    /// Host name or IP literal (IPv6 in brackets) and port, from the URL.
    pub host: Box<str>,
    pub port: u16,
    /// Where to connect: the IP literal, or what [`HttpBackendSpec::resolve`] found.
    pub addrs: Vec<SocketAddr>,
    pub tls: bool,
    /// How to run the TLS handshake (https back ends).
    pub tls_client: Option<std::sync::Arc<crate::tls::client::ClientTls>>,
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
}

/// Compiles an HTTP back end for a route whose path has `route_params` (the
/// catch-all last, if `catch_all`). Errors are messages for the `url` key.
pub fn compile_http(
    config: &HttpBackend,
    route_params: &[String],
    catch_all: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<HttpBackendSpec, (&'static str, String)> {
    let url = config.url.as_str();
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err((
            "url",
            format!(
                "back-end URL `{}` must start with http:// or https://",
                shown(url)
            ),
        ));
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let path_and_query = &rest[authority_end..];
    let (host, port) = split_host_port(authority, if tls { 443 } else { 80 }).ok_or_else(|| {
        (
            "url",
            format!(
                "back-end URL `{}` has no valid host[:port] (user:password@ is not supported)",
                shown(url)
            ),
        )
    })?;
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let path = parse_template(path).map_err(|m| ("url", m))?;
    for part in &path {
        if let UrlPart::Param(name) = part {
            if !route_params.iter().any(|p| p.as_str() == &**name) {
                return Err((
                    "url",
                    format!(
                        "back-end URL uses `{{{name}}}` but the route path has no such parameter"
                    ),
                ));
            }
        }
    }
    if path_and_query
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err((
            "url",
            format!(
                "back-end URL `{}` contains whitespace or control characters",
                shown(url)
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
    let addrs = literal_address(&host, port).into_iter().collect();
    let tls_client = match (tls, config.tls_keys_given) {
        (true, _) => Some(crate::tls::client::compile(&host, &config.tls, warnings)?),
        (false, Some(key)) => {
            return Err((key, format!("`{key}` applies to https:// back ends only")))
        }
        (false, None) => None,
    };
    Ok(HttpBackendSpec {
        host: host.clone().into(),
        port,
        pool_key: pool_key(tls, &host, port, &config.tls).into(),
        authority: authority.into(),
        addrs,
        tls,
        tls_client,
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

/// The pool key: `scheme://host:port`, and for https the TLS identity too
/// (verification, CA and client certificate), so that connections made with
/// different TLS settings never mix, nor plain and TLS ones.
fn pool_key(
    tls: bool,
    host: &str,
    port: u16,
    settings: &crate::tls::client::ClientTlsSettings,
) -> String {
    if !tls {
        return format!("http://{host}:{port}");
    }
    let mut key = format!("https://{host}:{port}");
    if !settings.verify {
        key.push_str(" verify=off");
    }
    for (name, value) in [
        ("ca", &settings.ca),
        ("cert", &settings.client_cert),
        ("key", &settings.client_key),
    ] {
        if let Some(value) = value {
            key.push_str(&format!(" {name}={value}"));
        }
    }
    key
}

/// A back-end URL as error messages (which reach logs and `/config`) show it:
/// without its query and user information, where credentials live.
fn shown(url: &str) -> String {
    let (before_query, query) = match url.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (url, ""),
    };
    let scheme_end = before_query.find("://").map_or(0, |i| i + 3);
    let authority_end = before_query[scheme_end..]
        .find('/')
        .map_or(before_query.len(), |i| scheme_end + i);
    match before_query[scheme_end..authority_end].rfind('@') {
        Some(at) => format!(
            "{}…@{}{query}",
            &before_query[..scheme_end],
            &before_query[scheme_end + at + 1..]
        ),
        None => format!("{before_query}{query}"),
    }
}

fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']')?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (format!("[{host}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (authority.to_string(), default_port),
        }
    };
    // Port 0 cannot be connected to: a typo, not a back end.
    let valid = port != 0
        && !host.is_empty()
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':')
        });
    valid.then_some((host, port))
}

/// The socket address of an IP-literal host; None for a name.
fn literal_address(host: &str, port: u16) -> Option<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

impl HttpBackendSpec {
    /// Resolves a host name with the system resolver (blocking: called by the
    /// main and control threads before a snapshot is published, never by a
    /// worker). A name that does not resolve leaves no address: its requests get
    /// 502 and the returned warning says why.
    pub fn resolve(&mut self) -> Option<String> {
        if !self.addrs.is_empty() {
            return None;
        }
        match (&*self.host, self.port).to_socket_addrs() {
            Ok(addrs) => {
                self.addrs = addrs.collect();
                None
            }
            Err(e) => Some(format!(
                "back-end host `{}` does not resolve ({e}); its requests will get 502",
                self.host
            )),
        }
    }
}

/// Splits a URL path into literals and `{name}` / `{name*}` placeholders.
fn parse_template(path: &str) -> Result<Vec<UrlPart>, String> {
    let mut parts = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(UrlPart::Literal(rest[..open].into()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in back-end URL path `{path}`"))?
            + open;
        let name = match placeholder(&rest[open + 1..close]) {
            Some(Placeholder::Param(name) | Placeholder::CatchAll(name)) => name,
            None => {
                return Err(format!(
                    "invalid parameter `{}` in back-end URL path",
                    &rest[open..=close]
                ))
            }
        };
        parts.push(UrlPart::Param(name.into()));
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("stray `}}` in back-end URL path `{path}`"));
    }
    if !rest.is_empty() {
        parts.push(UrlPart::Literal(rest.into()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {

    // Error messages show a back-end URL without its query and user information.
    #[test]
    fn urls_in_messages_hide_query_and_userinfo() {
        assert_eq!(
            super::shown("http://u:PASS@h:1/p?api_key=KEY"),
            "http://…@h:1/p?…"
        );
        assert_eq!(super::shown("ftp://h/p"), "ftp://h/p");
    }

    use super::*;

    // A URL path template splits into literals and parameters.
    #[test]
    fn template_parts() {
        assert_eq!(
            parse_template("/v1/{id}/x").unwrap(),
            vec![
                UrlPart::Literal("/v1/".into()),
                UrlPart::Param("id".into()),
                UrlPart::Literal("/x".into())
            ]
        );
    }

    // Host and port default by scheme; IPv6 stays bracketed.
    #[test]
    fn host_port_defaults() {
        assert_eq!(
            (
                split_host_port("a.example", 80),
                split_host_port("[::1]:81", 80)
            ),
            (Some(("a.example".into(), 80)), Some(("[::1]".into(), 81)))
        );
    }
}
