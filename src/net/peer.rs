//! The client's address as the proxy writes it into forwarded headers,
//! formatted once per connection instead of once per request.

use super::cidr::CidrSet;
use crate::http::fields::is_named;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// Longest text form: an IPv6 address in the RFC 7239 `for="[...]"` form.
const MAX_TEXT: usize = 56;

/// A connection's peer with its address pre-formatted.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    ip_text: [u8; MAX_TEXT],
    ip_len: u8,
    forwarded: [u8; MAX_TEXT],
    forwarded_len: u8,
    /// What the TLS handshake established, on TLS listeners.
    pub tls: Option<std::rc::Rc<TlsInfo>>,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = canonical_ip(addr.ip());
        let mut peer = Peer {
            addr,
            ip_text: [0; MAX_TEXT],
            ip_len: 0,
            forwarded: [0; MAX_TEXT],
            forwarded_len: 0,
            tls: None,
        };
        peer.ip_len = format_into(&mut peer.ip_text, |w| write!(w, "{ip}"));
        peer.forwarded_len = format_into(&mut peer.forwarded, |w| match ip {
            IpAddr::V4(v4) => write!(w, "for={v4}"),
            IpAddr::V6(v6) => write!(w, "for=\"[{v6}]\""),
        });
        peer
    }

    /// The same peer, reached over TLS.
    pub fn with_tls(mut self, info: TlsInfo) -> Self {
        self.tls = Some(std::rc::Rc::new(info));
        self
    }

    /// The scheme the client used, as `X-Forwarded-Proto` carries it.
    pub fn proto(&self) -> &'static [u8] {
        if self.tls.is_some() {
            b"https"
        } else {
            b"http"
        }
    }

    /// The access log's `tls` value: the handshake's details, or `null`.
    pub fn tls_log_value(&self) -> &[u8] {
        self.tls.as_ref().map_or(b"null", |t| &t.log_value)
    }

    /// Subject of the verified client certificate (mTLS listeners).
    pub fn client_subject(&self) -> Option<&str> {
        self.tls.as_ref()?.client_subject.as_deref()
    }

    /// The address as `X-Forwarded-For` carries it (`192.0.2.1`, `2001:db8::1`).
    pub fn ip_text(&self) -> &[u8] {
        &self.ip_text[..usize::from(self.ip_len)]
    }

    /// The RFC 7239 `for=` parameter (`for=192.0.2.1`, `for="[2001:db8::1]"`).
    pub fn forwarded_for(&self) -> &[u8] {
        &self.forwarded[..usize::from(self.forwarded_len)]
    }
}

/// IPv4-mapped IPv6 peers (from dual-stack listeners) are shown as IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn format_into(
    buf: &mut [u8; MAX_TEXT],
    write: impl FnOnce(&mut &mut [u8]) -> std::io::Result<()>,
) -> u8 {
    let mut cursor: &mut [u8] = &mut buf[..];
    let _ = write(&mut cursor);
    let left = cursor.len();
    (MAX_TEXT - left) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    // IPv4 and IPv6 peers get their header forms.
    #[test]
    fn header_forms() {
        let v4 = Peer::new("192.0.2.1:5000".parse().unwrap());
        let v6 = Peer::new("[2001:db8::1]:5000".parse().unwrap());
        assert_eq!(
            (
                v4.ip_text(),
                v4.forwarded_for(),
                v6.ip_text(),
                v6.forwarded_for()
            ),
            (
                &b"192.0.2.1"[..],
                &b"for=192.0.2.1"[..],
                &b"2001:db8::1"[..],
                &b"for=\"[2001:db8::1]\""[..]
            )
        );
    }

    // A v4-mapped v6 peer is written as IPv4.
    #[test]
    fn mapped_v4() {
        let peer = Peer::new("[::ffff:10.0.0.1]:1".parse().unwrap());
        assert_eq!(peer.ip_text(), b"10.0.0.1");
    }
}

/// The client's address: the peer, or, when the peer is one of the
/// listener's `trusted_proxies`, the right-most `X-Forwarded-For` entry that is
/// not itself a trusted proxy (so a client cannot forge its address by
/// prepending entries).
pub fn client_address(
    peer: IpAddr,
    trusted_proxies: &CidrSet,
    headers: &[httparse::Header<'_>],
) -> IpAddr {
    if trusted_proxies.is_empty() || !trusted_proxies.contains(peer) {
        return peer;
    }
    let mut client = peer;
    let forwarded = headers
        .iter()
        .rev()
        .filter(|h| is_named(h.name, "x-forwarded-for"));
    for header in forwarded {
        for entry in header.value.rsplit(|&b| b == b',') {
            let text = std::str::from_utf8(crate::http::fields::trim_ows(entry)).unwrap_or("");
            let Ok(ip) = text.parse::<IpAddr>() else {
                return client;
            };
            if !trusted_proxies.contains(ip) {
                return ip;
            }
            client = ip;
        }
    }
    client
}

/// What a client connection's handshake established, for logs and policies.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: &'static str,
    /// The name the client asked for (SNI), if any.
    pub server_name: Option<String>,
    /// Subject of the client certificate, verified against the listener's
    /// `client_auth.ca` (absent without client authentication).
    pub client_subject: Option<String>,
    /// The access log's `tls` value, rendered once per connection.
    pub log_value: Vec<u8>,
}
