//! The client's address as the proxy writes it into forwarded headers,
//! formatted once per connection instead of once per request.

use super::cidr::CidrSet;
use crate::http::fields::is_named;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// Longest text form: an IPv6 address in the RFC 7239 `for="[...]"` form.
const MAX_TEXT: usize = 56;

const FOR_NAME: &[u8] = b"X-Forwarded-For: ";
const FORWARDED_NAME: &[u8] = b"\r\nForwarded: ";
const MAX_LINES: usize = FOR_NAME.len() + MAX_TEXT + FORWARDED_NAME.len() + MAX_TEXT;

/// A connection's peer with its address pre-formatted.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `X-Forwarded-For: <ip>\r\nForwarded: for=<ip>`: the two forwarding
    /// lines a request without such fields gets, up to its `Forwarded`
    /// parameters; [`Peer::ip_text`] and [`Peer::forwarded_for`] are parts of it.
    lines: [u8; MAX_LINES],
    ip_end: u8,
    forwarded_start: u8,
    lines_len: u8,
    /// What the TLS handshake established, on TLS listeners.
    pub tls: Option<std::rc::Rc<TlsInfo>>,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = canonical_ip(addr.ip());
        let mut lines = [0; MAX_LINES];
        let mut len = FOR_NAME.len();
        lines[..len].copy_from_slice(FOR_NAME);
        len += format_into(&mut lines[len..len + MAX_TEXT], |w| write!(w, "{ip}"));
        let ip_end = len;
        lines[len..len + FORWARDED_NAME.len()].copy_from_slice(FORWARDED_NAME);
        len += FORWARDED_NAME.len();
        let forwarded_start = len;
        len += format_into(&mut lines[len..len + MAX_TEXT], |w| match ip {
            IpAddr::V4(v4) => write!(w, "for={v4}"),
            IpAddr::V6(v6) => write!(w, "for=\"[{v6}]\""),
        });
        Peer {
            addr,
            lines,
            ip_end: ip_end as u8,
            forwarded_start: forwarded_start as u8,
            lines_len: len as u8,
            tls: None,
        }
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
        &self.lines[FOR_NAME.len()..usize::from(self.ip_end)]
    }

    /// The RFC 7239 `for=` parameter (`for=192.0.2.1`, `for="[2001:db8::1]"`).
    pub fn forwarded_for(&self) -> &[u8] {
        &self.lines[usize::from(self.forwarded_start)..usize::from(self.lines_len)]
    }

    /// `X-Forwarded-For: <ip>` CRLF `Forwarded: for=<ip>`, without the CRLF
    /// that ends the `Forwarded` line: its other parameters follow.
    pub fn forwarding_lines(&self) -> &[u8] {
        &self.lines[..usize::from(self.lines_len)]
    }
}

/// IPv4-mapped IPv6 peers (from dual-stack listeners) are shown as IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Writes into `buf`, returning how many bytes were written.
fn format_into(buf: &mut [u8], write: impl FnOnce(&mut &mut [u8]) -> std::io::Result<()>) -> usize {
    let size = buf.len();
    let mut cursor: &mut [u8] = buf;
    let _ = write(&mut cursor);
    size - cursor.len()
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

    // The forwarding lines hold both header forms, the Forwarded line left open.
    #[test]
    fn forwarding_lines() {
        let v6 = Peer::new("[2001:db8::1]:5000".parse().unwrap());
        assert_eq!(
            v6.forwarding_lines(),
            b"X-Forwarded-For: 2001:db8::1\r\nForwarded: for=\"[2001:db8::1]\""
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
