//! Byte-level tests of the client's response head: fields passed on as
//! received (copied as runs of raw lines) and fields written again.

use super::*;
use crate::http::respond::Persistence;
use crate::http::response::{parse_response, response_header_storage, ParsedResponse};
use crate::policy::headers::edits::ResponseExtras;
use crate::policy::security_headers::SecurityHeaders;

/// The client head for `raw`, with no route edits, a keep-alive HTTP/1.1
/// client, and the `Date` and request id fields cut out of the result.
fn client_head(raw: &[u8]) -> String {
    let mut storage = response_header_storage();
    let Ok(ParsedResponse::Final(head)) = parse_response(raw, false, &mut storage) else {
        panic!("not a final head");
    };
    let extras = ResponseExtras::default();
    let security = SecurityHeaders::default();
    let edits = ResponseEdits {
        transform: None,
        extras: &extras,
        security: &security,
    };
    let id = RequestId::from_client(b"req-1").unwrap();
    let mut out = Vec::new();
    let framing = match head.body {
        BodyFraming::Length(n) => ClientFraming::Length(n),
        _ => ClientFraming::None,
    };
    write_client_response(
        &mut out,
        &head,
        framing,
        Persistence::KeepAlive,
        &id,
        &edits,
    );
    String::from_utf8(out).unwrap()
}

// Kept fields pass byte for byte, in order, with their spelling and spacing;
// hop-by-hop fields, those `Connection` names and the framing are dropped
// and the gateway's own framing is written.
#[test]
fn kept_lines_pass_as_received() {
    let head = client_head(
        b"HTTP/1.1 200 OK\r\nServer: up/1\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\nX-A:tight\r\n\
          Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-B:  spaced\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nServer: up/1\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\nX-A:tight\r\n\
         X-B:  spaced\r\nX-Request-Id: req-1\r\nContent-Length: 2\r\n\r\n"
    );
}

// A value httparse trimmed (trailing whitespace), an empty value and a line
// ending in a bare LF are written again, normalised, between raw runs; an
// empty body keeps its declared `Content-Length: 0`.
#[test]
fn lines_not_copied_are_written_again() {
    let head = client_head(
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\nX-Trail: v \t\r\nX-Empty:\r\nX-Lf: 2\nX-B: 3\r\n\
          Date: Mon, 07 Dec 2026 10:00:00 GMT\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        head,
        "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-Trail: v\r\nX-Empty: \r\nX-Lf: 2\r\nX-B: 3\r\n\
         Date: Mon, 07 Dec 2026 10:00:00 GMT\r\nContent-Length: 0\r\nX-Request-Id: req-1\r\n\r\n"
    );
}
