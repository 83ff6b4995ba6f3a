//! HTTP/1.1 conformance probes (RFC 9110, RFC 9112) that the framing, keep-alive, routing
//! and relay suites do not already hold, grouped in tables: request heads the gateway must
//! refuse (and close on, forwarding nothing), request forms it must accept, path spellings
//! that must route like their plain form, and back-end framing it must not trust.

mod common;

use common::*;
use std::time::Duration;

// Rule: a head that breaks the grammar or asks for what the gateway does not do gets its
// status, the connection closes, and the upstream receives nothing.
#[test]
fn refused_request_heads_close_and_reach_nothing() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let cases: [(&str, &[u8], u16); 9] = [
        // RFC 9112 §3.2: a Host with an invalid field value is a 400.
        (
            "non-numeric Host port",
            b"GET /api/echo HTTP/1.1\r\nHost: gw.test:abc\r\n\r\n",
            400,
        ),
        (
            "two Host ports",
            b"GET /api/echo HTTP/1.1\r\nHost: gw.test:80:81\r\n\r\n",
            400,
        ),
        (
            "unclosed IPv6 literal",
            b"GET /api/echo HTTP/1.1\r\nHost: [::1\r\n\r\n",
            400,
        ),
        (
            "absolute-form authority with a bad port",
            b"GET http://gw.test:x/api/echo HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            400,
        ),
        // RFC 9110 §9.3.6 / §15.6.2: no tunnels here; 501, never forwarded.
        (
            "CONNECT in authority form",
            b"CONNECT upstream.test:443 HTTP/1.1\r\nHost: upstream.test:443\r\n\r\n",
            501,
        ),
        (
            "CONNECT in origin form",
            b"CONNECT /api/echo HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            501,
        ),
        // RFC 9112 §6.3: chunked not final MUST be 400, whatever follows it.
        (
            "chunked followed by an unknown coding",
            b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked, foo\r\n\r\n0\r\n\r\n",
            400,
        ),
        // A dot segment hidden behind an encoded slash would walk a decoding back end.
        (
            "dot segment behind an encoded slash",
            b"GET /api/any/..%2Fecho HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            400,
        ),
        (
            "encoded dot segment behind an encoded backslash",
            b"GET /api/any/x%5C%2e%2e%5Cecho HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            400,
        ),
    ];
    for (what, raw, status) in cases {
        let mut c = gw.connect();
        let _ = c.try_send(raw);
        let r = c.read_response();
        assert_eq!(r.status, status, "{what}: {r:?}");
        c.assert_closed();
    }
    up.assert_received_nothing(gw);
}

// Rule: forms RFC 9112 lets a server accept are served as their plain equivalents: bare LF
// line ends (§2.2), an empty line before the request line (§2.2), any method token,
// forwarded verbatim (§9.1); methods are case-sensitive, so `get` is not `GET`; `OPTIONS *`
// is answered by the gateway and keeps the connection.
#[test]
fn accepted_request_forms_are_served_as_their_plain_equivalents() {
    let up = RecordingUpstream::start(|r| Reply::ok(format!("{} {}", r.method, r.target)));
    let gw = start_standard(&up, "");
    let cases: [(&str, &[u8], u16, &str); 5] = [
        (
            "bare LF line ends",
            b"GET /api/echo HTTP/1.1\nHost: gw.test\nX-A: 1\n\n",
            200,
            "GET /echo",
        ),
        (
            "empty line before the request line",
            b"\r\nGET /api/echo HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            200,
            "GET /echo",
        ),
        (
            "extension method",
            b"PURGE /api/echo HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            200,
            "PURGE /echo",
        ),
        (
            "lowercase method on a GET/POST route",
            b"get /api/items/1 HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            405,
            "405 Method Not Allowed\n",
        ),
        (
            "asterisk-form OPTIONS",
            b"OPTIONS * HTTP/1.1\r\nHost: gw.test\r\n\r\n",
            404,
            "404 Not Found\n",
        ),
    ];
    for (what, raw, status, body) in cases {
        let mut c = gw.connect();
        let r = c.roundtrip(raw);
        assert_eq!((r.status, r.text().as_str()), (status, body), "{what}");
        let next = c.roundtrip(get_req("/api/hello"));
        assert_eq!(next.status, 200, "{what}: connection not kept");
    }
    let lines: Vec<String> = up.requests().into_iter().map(|r| r.request_line).collect();
    assert_eq!(
        lines,
        [
            "GET /echo HTTP/1.1",
            "GET /echo HTTP/1.1",
            "PURGE /echo HTTP/1.1"
        ]
    );
}

// Rule: a request that arrives one byte per segment, with a Content-Length body and a
// pipelined request behind it, is served whole and in order.
#[test]
fn request_in_one_byte_pieces_is_served_with_its_pipelined_successor() {
    let up = RecordingUpstream::start(|r| {
        Reply::ok(format!("{} {}", r.target, String::from_utf8_lossy(&r.body)))
    });
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let raw = b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nabcGET /api/any/x HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    for byte in raw {
        c.send([*byte]);
        std::thread::sleep(Duration::from_millis(1));
    }
    let (first, second) = (c.read_response(), c.read_response());
    assert_eq!([first.text(), second.text()], ["/echo abc", "/anything/x "]);
}

// Rule: a chunked body sent after `Expect: 100-continue` waits for the 100, then is
// forwarded whole (no deadlock with a client that holds its body back).
#[test]
fn expect_continue_with_chunked_body_is_answered_then_forwarded() {
    let up = RecordingUpstream::start(|r| Reply::ok(r.body.clone()));
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(c.read_response().status, 100);
    c.send("5\r\nhello\r\n0\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, "hello".to_string()));
}

/// A deployment whose `/admin` is answered by the gateway and everything else goes to
/// `upstream` (`/*` → `http://UP/anything` + remainder).
fn guarded_admin_config(upstream: &RecordingUpstream) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/admin"
backend = {{ type = "stock", status = 403, headers = {{ "Content-Type" = "text/plain" }}, body = "guarded" }}

[[deployments.routes]]
path = "/*"
backend = {{ type = "http", url = "http://{}/anything", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }}
"#,
        upstream.addr()
    )
}

// Rule: runs of `/` route like one `/` (nginx `merge_slashes`), so `/api//admin` meets the
// `/admin` route instead of falling to the catch-all that a slash-merging back end would
// serve as `/admin`; what the back end receives is the merged path.
#[test]
fn double_slashes_route_like_single_ones() {
    let up = RecordingUpstream::echo_target();
    let gw = Gateway::start(&guarded_admin_config(&up));
    for path in ["/api//admin", "//api/admin", "/api///admin"] {
        let r = get(gw.addr(), path);
        assert_eq!((r.status, r.text()), (403, "guarded".to_string()), "{path}");
    }
    let r = get(gw.addr(), "/api/x//y");
    assert_eq!((r.status, r.text()), (200, "/anything/x/y".to_string()));
    up.assert_received_only(gw, &["/anything/x/y"]);
}

// Rule: an HTTP/1.0 response framed with Transfer-Encoding has faulty framing (RFC 9112
// §6.1): 502, not a relayed body.
#[test]
fn http10_response_with_transfer_encoding_is_502() {
    let up = RecordingUpstream::start(|_| {
        Reply::raw("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
            .then_close()
    });
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/echo");
    assert_eq!(r.status, 502, "{r:?}");
}

// Rule: every response carries exactly one `Date` (RFC 9110 §6.6.1): the gateway's own
// answers get the current time, a relayed response keeps the back end's Date or, without
// one, gets the gateway's.
#[test]
fn every_response_carries_one_date() {
    let up = RecordingUpstream::start(|r| match r.target.as_str() {
        "/anything/dated" => Reply::raw(
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\nok",
        ),
        _ => Reply::ok("undated"),
    });
    let gw = start_standard(&up, "");
    let is_imf_fixdate = |v: &str| v.len() == 29 && v.ends_with(" GMT") && v.as_bytes()[3] == b',';
    for (what, raw) in [
        ("stock", get_req("/api/hello")),
        ("no route", get_req("/api/nope")),
        (
            "wrong method",
            "DELETE /api/teapot HTTP/1.1\r\nHost: gw.test\r\n\r\n".into(),
        ),
        (
            "malformed head",
            "GET /api/echo HTTP/1.1\r\nHost: a b\r\n\r\n".into(),
        ),
        ("relayed without Date", get_req("/api/any/plain")),
    ] {
        let r = request(gw.addr(), raw);
        let dates = r.header_all("date");
        assert!(
            dates.len() == 1 && is_imf_fixdate(dates[0]),
            "{what}: {:?}",
            r.headers
        );
    }
    let r = get(gw.addr(), "/api/any/dated");
    assert_eq!(r.header_all("date"), ["Sun, 06 Nov 1994 08:49:37 GMT"]);
}
