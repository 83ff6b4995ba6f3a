//! Where a remote authentication service (an HTTP authorizer, an OAuth2
//! introspection endpoint) is reached: its URL compiled into what the
//! worker's own connection pool needs (pool key, addresses, `Host`, target,
//! TLS). Compiled once per snapshot on the main or control thread (a host
//! name is resolved here, never by a worker); the call itself is
//! [`crate::proxy::side_call`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// A compiled remote endpoint.
#[derive(Debug)]
pub struct RemoteTarget {
    /// Pool key: `scheme://host:port` (its connections are reused like a back end's).
    pub pool_key: Box<str>,
    /// The `Host` value.
    pub authority: Box<str>,
    /// Path and query of the URL (`/` when empty).
    pub target: Box<str>,
    pub addrs: Vec<SocketAddr>,
    /// TLS (system roots, the host name verified) for `https://`.
    pub tls: Option<Arc<crate::tls::client::ClientTls>>,
}

/// Compiles `url` (`http://` or `https://`); errors are messages.
pub fn compile(url: &str, warnings: &mut Vec<String>) -> Result<RemoteTarget, String> {
    let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err(format!("`{url}` must start with http:// or https://")),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let target = match &rest[end..] {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    if authority.is_empty()
        || authority.contains('@')
        || target
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!(
            "`{url}` is not a valid URL (no user information, no spaces)"
        ));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !authority.ends_with(']') => (
            h,
            p.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("`{url}` has an invalid port"))?,
        ),
        _ => (authority, default_port),
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match (bare, port).to_socket_addrs() {
            Ok(found) => found.collect(),
            Err(e) => {
                warnings.push(format!(
                    "`{bare}` does not resolve ({e}); calls to it fail until a reload resolves it"
                ));
                Vec::new()
            }
        },
    };
    let tls = match tls {
        false => None,
        true => Some(
            crate::tls::client::compile(
                host,
                &crate::tls::client::ClientTlsSettings {
                    verify: true,
                    ca: None,
                    client_cert: None,
                    client_key: None,
                },
                warnings,
            )
            .map_err(|(_, m)| m)?,
        ),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    Ok(RemoteTarget {
        pool_key: format!("{scheme}://{host}:{port}").into(),
        authority: authority.into(),
        target: target.into(),
        addrs,
        tls,
    })
}

/// What a remote service answered, as the policy reads it.
#[derive(Debug, Clone, Default)]
pub struct SideAnswer {
    pub status: u16,
    /// Its `WWW-Authenticate` field lines, as `Name: value\r\n`.
    pub challenge: Vec<u8>,
    pub body: Vec<u8>,
}
