//! The request as the upstream sees it: request line in origin form with the back-end path,
//! `Host` set to the back end's authority, hop-by-hop headers (and those named in
//! `Connection`) dropped, end-to-end headers kept, and the forwarding headers
//! (`X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Forwarded`) set.

mod common;

use common::*;

/// Sends `GET /api/items/42?x=1` with `Host: client.example` and `extra` header lines
/// (each ending in CRLF); returns what the upstream received and its address.
fn forward(extra: &str) -> (RecordedRequest, String) {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        format!("GET /api/items/42?x=1 HTTP/1.1\r\nHost: client.example\r\n{extra}\r\n"),
    );
    assert_eq!(r.status, 200, "response: {r:?}");
    (up.only_request(), up.addr().to_string())
}

// Rule: the upstream's request line is the back-end path with the client's query, in HTTP/1.1.
#[test]
fn request_line_is_rewritten() {
    let (req, _) = forward("");
    assert_eq!(req.request_line, "GET /v1/items/42?x=1 HTTP/1.1");
}

// Rule: `Host` is the back end's authority, sent once.
#[test]
fn host_is_backend_authority() {
    let (req, up) = forward("");
    assert_eq!(req.header_all("host"), vec![up.as_str()]);
}

// Rule: `X-Forwarded-Host` carries the client's Host.
#[test]
fn x_forwarded_host_is_client_host() {
    let (req, _) = forward("");
    assert_eq!(req.header_all("x-forwarded-host"), vec!["client.example"]);
}

// Rule: `X-Forwarded-Proto` is `http` on a plain listener.
#[test]
fn x_forwarded_proto_is_http() {
    let (req, _) = forward("");
    assert_eq!(req.header_all("x-forwarded-proto"), vec!["http"]);
}

// Rule: without a client `X-Forwarded-For`, the upstream gets the peer address alone.
#[test]
fn x_forwarded_for_is_set_to_peer() {
    let (req, _) = forward("");
    assert_eq!(req.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
}

// Rule: a client `X-Forwarded-For` has the peer address appended.
#[test]
fn x_forwarded_for_is_appended() {
    let (req, _) = forward("X-Forwarded-For: 10.0.0.1\r\n");
    assert_eq!(
        req.header_all("x-forwarded-for"),
        vec!["10.0.0.1, 127.0.0.1"]
    );
}

// Rule: several client `X-Forwarded-For` lines keep their order and get the peer appended last.
#[test]
fn multiple_x_forwarded_for_lines_are_kept_in_order() {
    let (req, _) = forward("X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n");
    let joined: Vec<String> = req
        .header_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(joined, ["10.0.0.1", "10.0.0.2", "127.0.0.1"]);
}

// Rule: `Forwarded` carries `for=127.0.0.1` and `proto=http`.
#[test]
fn forwarded_header_has_for_and_proto() {
    let (req, _) = forward("");
    let fwd = req.header_all("forwarded").join(", ");
    let params: Vec<String> = fwd
        .split([';', ','])
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    assert!(
        params.iter().any(|p| p == "for=127.0.0.1"),
        "Forwarded: {fwd:?}"
    );
    assert!(
        params.iter().any(|p| p == "proto=http"),
        "Forwarded: {fwd:?}"
    );
}

// Rule: `Connection` and every header it names are dropped; the client's `close` does not reach the upstream.
#[test]
fn connection_and_named_headers_are_dropped() {
    let (req, _) = forward("Connection: close, X-Foo\r\nX-Foo: secret\r\nX-Bar: kept\r\n");
    assert_eq!(
        req.header("x-foo"),
        None,
        "upstream headers: {:?}",
        req.headers
    );
    assert_eq!(req.header("x-bar"), Some("kept"));
    for v in req.header_all("connection") {
        assert!(
            v.eq_ignore_ascii_case("keep-alive"),
            "upstream Connection: {v:?}"
        );
    }
}

// Rule: the hop-by-hop headers Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection and Proxy-Authorization are dropped.
#[test]
fn hop_by_hop_headers_are_dropped() {
    let (req, _) = forward(
        "Keep-Alive: timeout=5\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic YTpi\r\n",
    );
    let present: Vec<&str> = [
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "proxy-authorization",
    ]
    .into_iter()
    .filter(|h| req.has_header(h))
    .collect();
    assert!(
        present.is_empty(),
        "hop-by-hop headers reached the upstream: {present:?}; headers: {:?}",
        req.headers
    );
}

// Rule: `Authorization` is end-to-end and reaches the upstream unchanged.
#[test]
fn authorization_is_kept() {
    let (req, _) = forward("Authorization: Bearer abc.def\r\n");
    assert_eq!(req.header_all("authorization"), vec!["Bearer abc.def"]);
}

// Rule: ordinary end-to-end headers reach the upstream with their values, repeated ones included.
#[test]
fn end_to_end_headers_are_kept() {
    let (req, _) =
        forward("User-Agent: test/1\r\nAccept: text/plain\r\nX-Multi: a\r\nX-Multi: b\r\n");
    assert_eq!(req.header("user-agent"), Some("test/1"));
    assert_eq!(req.header("accept"), Some("text/plain"));
    let multi: Vec<String> = req
        .header_all("x-multi")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect();
    assert_eq!(multi, ["a", "b"]);
}

// Rule: the method and body of a POST are forwarded with its Content-Length.
#[test]
fn post_method_and_body_are_forwarded() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "POST /api/items/7 HTTP/1.1\r\nHost: client.example\r\nContent-Length: 4\r\n\r\nbody",
    );
    assert_eq!(r.status, 200);
    let req = up.only_request();
    assert_eq!(req.request_line, "POST /v1/items/7 HTTP/1.1");
    assert_eq!(
        (req.header_all("content-length"), req.body.as_slice()),
        (vec!["4"], &b"body"[..])
    );
}

// Rule: an HTTP/1.0 client's request is forwarded as HTTP/1.1 with the back end's Host.
#[test]
fn http10_request_is_forwarded_as_http11() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(gw.addr(), "GET /api/items/3 HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200);
    let req = up.only_request();
    assert_eq!(req.request_line, "GET /v1/items/3 HTTP/1.1");
    assert_eq!(req.header("host"), Some(up.addr().to_string().as_str()));
}

// Rule: underscored look-alikes of the gateway's own fields are not forwarded; other underscored fields are.
#[test]
fn underscored_gateway_fields_are_dropped() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "GET /api/items/1 HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nContent_Length: 50\r\nX_Custom: kept\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = up.only_request();
    assert_eq!(
        (
            seen.has_header("x_forwarded_for"),
            seen.has_header("content_length"),
            seen.header("x_custom")
        ),
        (false, false, Some("kept"))
    );
}
