//! Reading a back-end URL: scheme, authority, host and port, the path
//! template with `{param}` placeholders, the connection-pool key, and the URL
//! as messages may show it (without query or user information).

use super::backend::UrlPart;
use crate::route::table::{placeholder, Placeholder};
use std::net::SocketAddr;

/// A back-end URL's parts.
pub(super) struct UrlSplit<'u> {
    pub(super) tls: bool,
    pub(super) authority: &'u str,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) path_and_query: &'u str,
}

pub(super) fn split_url(url: &str) -> Result<UrlSplit<'_>, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!(
            "back-end URL `{}` must start with http:// or https://",
            shown(url)
        ));
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let (host, port) = split_host_port(authority, if tls { 443 } else { 80 }).ok_or_else(|| {
        format!(
            "back-end URL `{}` has no valid host[:port] (user:password@ is not supported)",
            shown(url)
        )
    })?;
    Ok(UrlSplit {
        tls,
        authority,
        host,
        port,
        path_and_query: &rest[authority_end..],
    })
}

/// The pool key: `scheme://host:port`, and for https the TLS identity too
/// (verification, CA and client certificate), so that connections made with
/// different TLS settings never mix, nor plain and TLS ones.
pub(super) fn pool_key(
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
pub(super) fn shown(url: &str) -> String {
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
pub(super) fn literal_address(host: &str, port: u16) -> Option<SocketAddr> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port))
}

/// Splits a URL path into literals and `{name}` / `{name*}` placeholders.
pub(super) fn parse_template(path: &str) -> Result<Vec<UrlPart>, String> {
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
