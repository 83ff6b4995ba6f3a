//! The fields the gateway adds to every request it forwards (step 6), after
//! the client's own: `X-Forwarded-For` and `Forwarded` (unless the client's
//! fields were joined with ours already), `Max-Forwards` decremented,
//! `X-Forwarded-Proto`, `X-Request-Id` and `X-Forwarded-Host`, in that order.
//!
//! The common request (no forwarding fields of its own, no `Max-Forwards`)
//! gets them in a few copies: the connection's pre-formatted lines
//! ([`Peer::forwarding_lines`]), the request's host and id, and constant
//! runs. Only [`super::rewrite`] calls this; it writes nothing else.

use crate::http::fields::write_field;
use crate::http::max_forwards;
use crate::net::peer::Peer;
use crate::telemetry::record::RequestId;

/// From the end of the `Forwarded` element to the `X-Request-Id` value, plain.
const HTTP_TAIL: &[u8] = b";proto=http\r\nX-Forwarded-Proto: http\r\nX-Request-Id: ";
/// The same on a TLS listener.
const HTTPS_TAIL: &[u8] = b";proto=https\r\nX-Forwarded-Proto: https\r\nX-Request-Id: ";

/// What the client's own forwarding fields already carried.
#[derive(Debug, Clone, Copy)]
pub(super) struct Joined {
    /// Its `X-Forwarded-For` fields were written with our address appended.
    pub(super) forwarded_for: bool,
    /// Its `Forwarded` fields were written with our element appended.
    pub(super) forwarded: bool,
}

/// Appends the gateway's forwarding fields. `hops`: the `Max-Forwards` the
/// client sent on an OPTIONS or TRACE (written again, one fewer).
pub(super) fn write_forwarding_fields(
    out: &mut Vec<u8>,
    peer: &Peer,
    host: Option<&[u8]>,
    joined: Joined,
    hops: Option<u32>,
    id: &RequestId,
) {
    if joined.forwarded_for || joined.forwarded || hops.is_some() {
        return write_each(out, peer, host, joined, hops, id);
    }
    out.extend_from_slice(peer.forwarding_lines());
    if let Some(host) = host {
        write_host_param(out, host);
    }
    out.extend_from_slice(if peer.tls.is_some() {
        HTTPS_TAIL
    } else {
        HTTP_TAIL
    });
    out.extend_from_slice(id.as_bytes());
    if let Some(host) = host {
        out.extend_from_slice(b"\r\nX-Forwarded-Host: ");
        out.extend_from_slice(host);
    }
    out.extend_from_slice(b"\r\n");
}

/// The same fields, one at a time, for the rarer requests.
fn write_each(
    out: &mut Vec<u8>,
    peer: &Peer,
    host: Option<&[u8]>,
    joined: Joined,
    hops: Option<u32>,
    id: &RequestId,
) {
    if !joined.forwarded_for {
        write_field(out, b"X-Forwarded-For", peer.ip_text());
    }
    if !joined.forwarded {
        out.extend_from_slice(b"Forwarded: ");
        write_forwarded_element(out, peer, host);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(received) = hops {
        max_forwards::write_decremented(out, received);
    }
    write_field(out, b"X-Forwarded-Proto", peer.proto());
    id.write_field(out);
    if let Some(host) = host {
        write_field(out, b"X-Forwarded-Host", host);
    }
}

/// One RFC 7239 element: `for=...;host="...";proto=http|https`.
pub(super) fn write_forwarded_element(out: &mut Vec<u8>, peer: &Peer, host: Option<&[u8]>) {
    out.extend_from_slice(peer.forwarded_for());
    if let Some(host) = host {
        write_host_param(out, host);
    }
    out.extend_from_slice(b";proto=");
    out.extend_from_slice(peer.proto());
}

/// `;host="<host>"`.
fn write_host_param(out: &mut Vec<u8>, host: &[u8]) {
    out.extend_from_slice(b";host=\"");
    out.extend_from_slice(host);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::peer::TlsInfo;

    fn peers() -> [Peer; 3] {
        let tls = TlsInfo {
            version: "TLSv1.3",
            server_name: None,
            client_subject: None,
            log_value: Vec::new(),
        };
        [
            Peer::new("192.0.2.1:5000".parse().unwrap()),
            Peer::new("[2001:db8::1]:5000".parse().unwrap()),
            Peer::new("192.0.2.1:5000".parse().unwrap()).with_tls(tls),
        ]
    }

    fn written(write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out);
        out
    }

    const NONE_JOINED: Joined = Joined {
        forwarded_for: false,
        forwarded: false,
    };

    // The few-copies path writes the same bytes as the field-by-field path.
    #[test]
    fn common_path_matches_field_by_field() {
        let id = RequestId::generate(0xabc, 7);
        let mut mismatches = Vec::new();
        for peer in peers() {
            for host in [None, Some(&b"gw.test:8443"[..])] {
                let fast =
                    written(|o| write_forwarding_fields(o, &peer, host, NONE_JOINED, None, &id));
                let each = written(|o| write_each(o, &peer, host, NONE_JOINED, None, &id));
                if fast != each {
                    mismatches.push(String::from_utf8_lossy(&fast).into_owned());
                }
            }
        }
        assert_eq!(mismatches, Vec::<String>::new());
    }

    // A plain request from an IPv4 peer gets every forwarding field, in order.
    #[test]
    fn plain_request_fields() {
        let peer = Peer::new("192.0.2.1:5000".parse().unwrap());
        let id = RequestId::generate(0xabc, 7);
        let out = written(|o| {
            write_forwarding_fields(o, &peer, Some(b"gw.test"), NONE_JOINED, None, &id)
        });
        assert_eq!(
            String::from_utf8_lossy(&out),
            "X-Forwarded-For: 192.0.2.1\r\n\
             Forwarded: for=192.0.2.1;host=\"gw.test\";proto=http\r\n\
             X-Forwarded-Proto: http\r\n\
             X-Request-Id: 0000000000000abc-000000000007\r\n\
             X-Forwarded-Host: gw.test\r\n"
        );
    }
}
