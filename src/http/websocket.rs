//! WebSocket opening handshakes (RFC 6455 §4) as the gateway sees them: is a
//! request a WebSocket upgrade, and did the back end accept it. The gateway
//! relays the handshake; it neither computes nor checks
//! `Sec-WebSocket-Accept` (the client does), it only requires that the back
//! end sent one. Pure: headers in, a decision out.

use super::fields::list_elements;
use super::request::RequestHead;
use super::response::ResponseHead;
use super::Version;
use crate::http::fields::is_named;

/// True for a WebSocket opening request: `GET`, HTTP/1.1, `Upgrade:
/// websocket`, `Connection: upgrade`, a `Sec-WebSocket-Key` and
/// `Sec-WebSocket-Version: 13`, and no body. Any other upgrade (h2c, ...)
/// is not one: its `Upgrade` field is dropped as before.
pub fn is_upgrade_request(head: &RequestHead<'_, '_>) -> bool {
    if !head.connection_upgrade
        || head.method != "GET"
        || head.version != Version::Http11
        || head.body != super::BodyFraming::None
    {
        return false;
    }
    let mut upgrade = false;
    let mut connection = false;
    let mut key = false;
    let mut version = false;
    for h in head.headers {
        let name = h.name;
        if is_named(name, "upgrade") {
            upgrade |= lists(h.value, b"websocket");
        } else if is_named(name, "connection") {
            connection |= lists(h.value, b"upgrade");
        } else if is_named(name, "sec-websocket-key") {
            key = !super::fields::trim_ows(h.value).is_empty();
        } else if is_named(name, "sec-websocket-version") {
            version = super::fields::trim_ows(h.value) == b"13";
        }
    }
    upgrade && connection && key && version
}

/// True when a `101` answer switches to WebSocket: `Upgrade: websocket`, a
/// `Connection: upgrade` and a `Sec-WebSocket-Accept`.
pub fn is_accepted(head: &ResponseHead<'_, '_>) -> bool {
    if head.status != 101 {
        return false;
    }
    let mut upgrade = false;
    let mut connection = false;
    let mut accept = false;
    for h in head.headers {
        let name = h.name;
        if is_named(name, "upgrade") {
            upgrade |= lists(h.value, b"websocket");
        } else if is_named(name, "connection") {
            connection |= lists(h.value, b"upgrade");
        } else if is_named(name, "sec-websocket-accept") {
            accept = !super::fields::trim_ows(h.value).is_empty();
        }
    }
    upgrade && connection && accept
}

fn lists(value: &[u8], token: &[u8]) -> bool {
    list_elements(value).any(|t| t.eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{header_storage, parse_request, HeadLimits, Parsed};
    use crate::http::response::{parse_response, response_header_storage, ParsedResponse};

    fn upgrade(raw: &str) -> bool {
        let limits = HeadLimits {
            max_head_bytes: 8192,
            max_uri_bytes: 4096,
            max_headers: 100,
        };
        let mut storage = header_storage();
        match parse_request(raw.as_bytes(), &limits, &mut storage) {
            Ok(Parsed::Complete(head)) => is_upgrade_request(&head),
            _ => panic!("unparsed: {raw}"),
        }
    }

    // A WebSocket opening request needs every one of its fields; other
    // upgrades, other methods and HTTP/1.0 are not one.
    #[test]
    fn opening_request() {
        let fields = "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        assert!(upgrade(&format!(
            "GET /c HTTP/1.1\r\nHost: a\r\n{fields}\r\n"
        )));
        assert!(!upgrade(&format!(
            "GET /c HTTP/1.0\r\nHost: a\r\n{fields}\r\n"
        )));
        assert!(!upgrade(&format!(
            "POST /c HTTP/1.1\r\nHost: a\r\n{fields}\r\n"
        )));
        for missing in [
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Key",
            "Sec-WebSocket-Version",
        ] {
            let kept: String = fields
                .split_inclusive("\r\n")
                .filter(|l| !l.starts_with(&format!("{missing}:")))
                .collect();
            assert!(
                !upgrade(&format!("GET /c HTTP/1.1\r\nHost: a\r\n{kept}\r\n")),
                "{missing}"
            );
        }
        let h2c = "GET /c HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
        assert!(!upgrade(h2c));
        let old = fields.replace("Version: 13", "Version: 8");
        assert!(!upgrade(&format!(
            "GET /c HTTP/1.1\r\nHost: a\r\n{old}\r\n"
        )));
    }

    fn accepted(raw: &[u8]) -> bool {
        let mut headers = response_header_storage();
        match parse_response(raw, false, &mut headers) {
            Ok(ParsedResponse::Final(head)) => is_accepted(&head),
            _ => false,
        }
    }

    // A 101 is a WebSocket only with its upgrade fields and an accept key.
    #[test]
    fn switching_answer() {
        assert!(accepted(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        ));
        assert!(!accepted(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(!accepted(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        ));
        assert!(!accepted(b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\nContent-Length: 0\r\n\r\n"));
    }
}
