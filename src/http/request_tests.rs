//! Rules of request-head parsing, one per test.

use super::*;

const LIMITS: HeadLimits = HeadLimits {
    max_head_bytes: 8192,
    max_uri_bytes: 4096,
    max_headers: 100,
};

/// The framing of a complete head, or the error.
fn framing(raw: &[u8]) -> Result<BodyFraming, RequestError> {
    let mut storage = header_storage();
    match parse_request(raw, &LIMITS, &mut storage)? {
        Parsed::Complete(head) => Ok(head.body),
        Parsed::Partial => panic!("partial"),
    }
}

fn error_status(raw: &[u8]) -> u16 {
    let mut storage = header_storage();
    match parse_request(raw, &LIMITS, &mut storage) {
        Err(e) => e.status(),
        Ok(_) => 0,
    }
}

// A plain GET has no body.
#[test]
fn get_has_no_body() {
    assert_eq!(
        framing(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Ok(BodyFraming::None)
    );
}

// Content-Length gives the body length.
#[test]
fn content_length_body() {
    assert_eq!(
        framing(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n"),
        Ok(BodyFraming::Length(7))
    );
}

// A final chunked coding gives a chunked body.
#[test]
fn chunked_body() {
    assert_eq!(
        framing(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Ok(BodyFraming::Chunked)
    );
}

// The smuggling and framing cases each get their status.
#[test]
fn framing_violations_have_their_status() {
    let cases: [(&[u8], u16); 17] = [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1,2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nFoo : bar\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nFoo: bar\r\n baz\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    ];
    let statuses: Vec<u16> = cases.iter().map(|(raw, _)| error_status(raw)).collect();
    assert_eq!(statuses, cases.iter().map(|(_, s)| *s).collect::<Vec<_>>());
}

// Fragments, backslashes and too many Connection options are refused.
#[test]
fn target_and_connection_oddities_refused() {
    let nine = "a,b,c,d,e,f,g,h,i";
    let raw = format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: {nine}\r\n\r\n");
    assert_eq!(
        [
            &b"GET /admin# HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /a\\b HTTP/1.1\r\nHost: a\r\n\r\n",
            raw.as_bytes()
        ]
        .map(error_status),
        [400, 400, 400]
    );
}

// HTTP/0.9 simple requests are refused with 505.
#[test]
fn http09_is_not_supported() {
    assert_eq!(error_status(b"GET /\r\n"), 505);
}

// An over-long target is 414 even before the head completes.
#[test]
fn long_target_is_414() {
    let mut raw = b"GET /".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 5000));
    assert_eq!(error_status(&raw), 414);
}

// A head that reaches the limit without ending is 431.
#[test]
fn large_head_is_431() {
    let mut raw = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 9000));
    assert_eq!(error_status(&raw), 431);
}

// Dot segments, raw or encoded, are refused.
#[test]
fn dot_segments_refused() {
    assert_eq!(
        [
            &b"GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /a/%2e%2E/b HTTP/1.1\r\nHost: a\r\n\r\n"
        ]
        .map(error_status),
        [400, 400]
    );
}

// A dot segment bounded by an encoded slash or backslash is refused; an
// encoded slash alone, and dots inside a longer segment, are data.
#[test]
fn dot_segments_behind_encoded_slashes_refused() {
    assert_eq!(
        [
            &b"GET /a/..%2Fadmin HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /a/%2e%2e%2fadmin HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a/x%5C..%5Cadmin HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a/x%2F. HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a/group%2Fproject HTTP/1.1\r\nHost: a\r\n\r\n",
            b"GET /a/v1..2/...%2Fx HTTP/1.1\r\nHost: a\r\n\r\n",
        ]
        .map(error_status),
        [400, 400, 400, 400, 0, 0]
    );
}

// An absolute-form target supplies the host and the path.
#[test]
fn absolute_form_target() {
    let mut storage = header_storage();
    let raw = b"GET http://example.test:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n";
    let Ok(Parsed::Complete(head)) = parse_request(raw, &LIMITS, &mut storage) else {
        panic!()
    };
    assert_eq!(
        (head.host, head.path, head.query),
        (Some(&b"example.test:8080"[..]), "/a/b", Some("x=1"))
    );
}

// HTTP/1.0 keeps the connection only when asked.
#[test]
fn http10_keep_alive_on_request() {
    let keep = |raw: &[u8]| {
        let mut storage = header_storage();
        match parse_request(raw, &LIMITS, &mut storage) {
            Ok(Parsed::Complete(head)) => head.keep_alive,
            _ => panic!(),
        }
    };
    assert_eq!(
        [
            keep(b"GET / HTTP/1.0\r\n\r\n"),
            keep(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            keep(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        ],
        [false, true, false]
    );
}

// A Host or absolute-form authority that breaks `uri-host [":" port]` is a 400.
#[test]
fn malformed_authority_is_400() {
    assert_eq!(
        [
            &b"GET / HTTP/1.1\r\nHost: gw.test:abc\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: gw.test:80:81\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n",
            b"GET http://gw.test:x/ HTTP/1.1\r\nHost: gw.test\r\n\r\n",
        ]
        .map(error_status),
        [400; 4]
    );
}

// CONNECT is not implemented, whatever its target form.
#[test]
fn connect_is_501() {
    assert_eq!(
        [
            &b"CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n"[..],
            b"CONNECT /api HTTP/1.1\r\nHost: gw.test\r\n\r\n",
        ]
        .map(error_status),
        [501, 501]
    );
}

// A `chunked` that is not final is a 400 even when an unknown coding follows.
#[test]
fn chunked_not_final_before_unknown_coding_is_400() {
    assert_eq!(
        error_status(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, foo\r\n\r\n"),
        400
    );
}

/// The (options, upgrade) flags the `Connection` fields of a head set.
fn connection_flags(raw: &[u8]) -> (bool, bool) {
    let mut storage = header_storage();
    match parse_request(raw, &LIMITS, &mut storage) {
        Ok(Parsed::Complete(head)) => (head.connection_options, head.connection_upgrade),
        other => panic!("not a complete head: {other:?}"),
    }
}

// Only a Connection option besides close and keep-alive is marked; `upgrade` is marked as such.
#[test]
fn connection_options_marked() {
    assert_eq!(
        [
            &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, Keep-Alive\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close, x-trace\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: Upgrade\r\n\r\n",
        ]
        .map(connection_flags),
        [(false, false), (false, false), (true, false), (true, true)]
    );
}

// The first X-Request-Id value and the presence of Idempotency-Key are kept from the one field pass.
#[test]
fn request_id_and_idempotency_key_marked() {
    let mut storage = header_storage();
    let raw = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: x\r\nx-request-id: first\r\nX-Request-Id: second\r\nIdempotency-Key: k\r\nContent-Length: 0\r\n\r\n";
    let marks = match parse_request(raw, &LIMITS, &mut storage) {
        Ok(Parsed::Complete(head)) => (head.request_id, head.idempotency_key),
        other => panic!("not a complete head: {other:?}"),
    };
    assert_eq!(marks, (Some(&b"first"[..]), true));
}
