//! Interim (1xx) responses from a back end, relayed to the client before the
//! final response (RFC 9110 §15.2): `103 Early Hints` and any other 1xx but
//! `100 Continue` (the gateway answers `Expect: 100-continue` itself) and
//! `101` (a protocol switch, refused unless requested). HTTP/1.0 clients get
//! none. The head is written again as HTTP/1.1, hop-by-hop fields dropped.

use crate::http::fields::is_hop_by_hop;
use crate::http::Version;

/// Most header fields an interim response may carry to be relayed.
const MAX_INTERIM_FIELDS: usize = 64;

/// The client's copy of the interim response `raw` (a complete 1xx head),
/// or None when this client gets none of it.
pub fn client_interim(raw: &[u8], client_version: Version) -> Option<Vec<u8>> {
    if client_version != Version::Http11 {
        return None;
    }
    let mut fields = [httparse::EMPTY_HEADER; MAX_INTERIM_FIELDS];
    let mut response = httparse::Response::new(&mut fields);
    match response.parse(raw) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let status = response
        .code
        .filter(|s| (102..200).contains(s) && *s != 101)?;
    let mut out = Vec::with_capacity(raw.len());
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(response.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for field in response.headers.iter() {
        if is_hop_by_hop(field.name) {
            continue;
        }
        out.extend_from_slice(field.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Early Hints reach an HTTP/1.1 client with their Link fields, not an HTTP/1.0 one.
    #[test]
    fn early_hints_for_http11_clients_only() {
        let raw =
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: x\r\n\r\n";
        assert_eq!(
            (
                client_interim(raw, Version::Http11).as_deref(),
                client_interim(raw, Version::Http10)
            ),
            (
                Some(&b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"[..]),
                None
            )
        );
    }

    // `100 Continue` from the back end is not relayed.
    #[test]
    fn continue_is_not_relayed() {
        assert_eq!(
            client_interim(b"HTTP/1.1 100 Continue\r\n\r\n", Version::Http11),
            None
        );
    }
}
