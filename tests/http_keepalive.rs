//! Client-side connection handling: keep-alive, pipelining, HTTP/1.0, `Connection: close`,
//! absolute-form targets, `Expect: 100-continue`, and request bodies (Content-Length,
//! chunked, large streamed bodies) reaching the upstream intact.

mod common;

use common::*;

// Rule: one connection carries several requests in turn, each answered in full.
#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    for i in 1..=3 {
        let r = c.roundtrip(get_req(&format!("/api/items/{i}")));
        assert_eq!((r.status, r.text()), (200, format!("/v1/items/{i}")));
    }
    let r = c.roundtrip(get_req("/api/hello"));
    assert_eq!((r.status, r.text()), (200, "hi\n".to_string()));
    assert_eq!(up.requests().len(), 3);
}

// Rule: three requests in one write get three responses, in request order.
#[test]
fn pipelined_requests_are_answered_in_order() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(format!(
        "{}{}{}",
        get_req("/api/items/1"),
        get_req("/api/hello"),
        get_req("/api/items/3")
    ));
    let bodies: Vec<(u16, String)> = (0..3)
        .map(|_| c.read_response())
        .map(|r| (r.status, r.text()))
        .collect();
    assert_eq!(
        bodies,
        vec![
            (200, "/v1/items/1".to_string()),
            (200, "hi\n".to_string()),
            (200, "/v1/items/3".to_string())
        ]
    );
}

// Rule: pipelined proxied requests reach the upstream in order and each once.
#[test]
fn pipelined_requests_reach_upstream_in_order() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(format!(
        "{}{}{}",
        get_req("/api/items/1"),
        get_req("/api/items/2"),
        get_req("/api/items/3")
    ));
    for i in 1..=3 {
        assert_eq!(c.read_response().text(), format!("/v1/items/{i}"));
    }
    let targets: Vec<String> = up.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/v1/items/1", "/v1/items/2", "/v1/items/3"]);
}

// Rule: an HTTP/1.0 request without keep-alive gets its response and then the connection closes.
#[test]
fn http10_without_keep_alive_gets_response_then_close() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("GET /api/hello HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, "hi\n".to_string()));
    c.assert_closed();
}

// Rule: HTTP/1.0 with `Connection: keep-alive` gets `Connection: keep-alive` back and the connection stays open.
#[test]
fn http10_with_keep_alive_stays_open() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip("GET /api/hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(
        r.header_has_token("connection", "keep-alive"),
        "response headers: {:?}",
        r.headers
    );
    let r2 = c.roundtrip("GET /api/hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!((r2.status, r2.text()), (200, "hi\n".to_string()));
}

// Rule: HTTP/1.0 keep-alive also works for proxied responses.
#[test]
fn http10_keep_alive_works_through_proxy() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip("GET /api/items/5 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!((r.status, r.text()), (200, "/v1/items/5".to_string()));
    assert!(
        r.header_has_token("connection", "keep-alive"),
        "response headers: {:?}",
        r.headers
    );
    let r2 = c.roundtrip("GET /api/items/6 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!((r2.status, r2.text()), (200, "/v1/items/6".to_string()));
}

// Rule: `Connection: close` from an HTTP/1.1 client gets `Connection: close` back and the gateway closes.
#[test]
fn connection_close_from_http11_client_closes_after_response() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip("GET /api/hello HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200);
    assert!(
        r.header_has_token("connection", "close"),
        "response headers: {:?}",
        r.headers
    );
    c.assert_closed();
}

// Rule: `Connection: close` on a proxied request closes the client connection after the response.
#[test]
fn connection_close_on_proxied_request_closes_after_response() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip("GET /api/items/9 HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
    assert_eq!((r.status, r.text()), (200, "/v1/items/9".to_string()));
    assert!(
        r.header_has_token("connection", "close"),
        "response headers: {:?}",
        r.headers
    );
    c.assert_closed();
}

// Rule: an absolute-form target is routed by its path.
#[test]
fn absolute_form_target_routes_by_path() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "GET http://example.test/api/hello HTTP/1.1\r\nHost: example.test\r\n\r\n",
    );
    assert_eq!((r.status, r.text()), (200, "hi\n".to_string()));
}

// Rule: an absolute-form target is forwarded upstream in origin form with its query.
#[test]
fn absolute_form_target_is_forwarded_in_origin_form() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "GET http://example.test/api/items/7?x=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        up.only_request().request_line,
        "GET /v1/items/7?x=1 HTTP/1.1"
    );
}

// Rule: `Expect: 100-continue` is answered by the gateway with exactly `HTTP/1.1 100 Continue`, then the body is read and forwarded.
#[test]
fn expect_100_continue_is_answered_then_body_forwarded() {
    let up = RecordingUpstream::start(|r| Reply::ok(r.body.clone()));
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.read_response();
    assert_eq!(interim.raw_head, b"HTTP/1.1 100 Continue\r\n\r\n".to_vec());
    c.send("hello");
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, "hello".to_string()));
}

// Rule: the upstream does not receive the `Expect` header, but does receive the body and its Content-Length.
#[test]
fn expect_header_is_not_forwarded() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.read_response().status, 100);
    c.send("hello");
    assert_eq!(c.read_response().status, 200);
    let req = up.only_request();
    assert_eq!(
        req.header("expect"),
        None,
        "upstream headers: {:?}",
        req.headers
    );
    assert_eq!(
        (req.header_all("content-length"), req.body.as_slice()),
        (vec!["5"], &b"hello"[..])
    );
}

// Rule: with `Expect: 100-continue` on a path that 404s, no 100 is sent: the first response is the 404.
#[test]
fn expect_100_continue_not_sent_when_route_404s() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/nope HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 404);
    drop(c);
    up.assert_received_nothing(gw);
}

// Rule: a Content-Length body reaches the upstream intact with the same Content-Length.
#[test]
fn content_length_body_reaches_upstream_intact() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 11\r\n\r\nhello world",
    );
    assert_eq!(r.status, 200);
    let req = up.only_request();
    assert_eq!(req.header_all("content-length"), vec!["11"]);
    assert_eq!(req.header("transfer-encoding"), None);
    assert!(!req.chunked, "must not be re-framed as chunked");
    assert_eq!(req.body, b"hello world");
}

// Rule: a chunked request body reaches the upstream chunked, with the same data and no Content-Length.
#[test]
fn chunked_body_reaches_upstream_rechunked() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let req = up.only_request();
    assert!(req.chunked, "upstream headers: {:?}", req.headers);
    let te: Vec<String> = req
        .header_all("transfer-encoding")
        .iter()
        .map(|v| v.to_ascii_lowercase())
        .collect();
    assert_eq!(te, ["chunked"], "exactly one `Transfer-Encoding: chunked`");
    assert_eq!(req.header("content-length"), None);
    assert_eq!(req.body, b"hello world");
}

// Rule: chunk extensions and trailers are consumed, and the next request on the connection is parsed correctly.
#[test]
fn chunk_extensions_and_trailers_are_consumed() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_eq!(c.read_response().status, 200);
    let r = c.roundtrip(get_req("/api/hello"));
    assert_eq!((r.status, r.text()), (200, "hi\n".to_string()));
    assert_eq!(up.only_request().body, b"hello");
}

// Rule: a 1 MiB Content-Length body sent in several writes streams through intact.
#[test]
fn large_content_length_body_streams_intact() {
    let up = RecordingUpstream::start(|r| Reply::ok(r.body.len().to_string()));
    let gw = start_standard(&up, "");
    let data = pattern(1 << 20);
    let mut c = gw.connect();
    c.send(format!(
        "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: {}\r\n\r\n",
        data.len()
    ));
    for piece in data.chunks(64 * 1024) {
        c.send(piece);
    }
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, (1 << 20).to_string()));
    assert!(
        up.only_request().body == data,
        "upstream body differs from the 1 MiB sent"
    );
}

// Rule: a 1 MiB chunked body sent in several writes streams through intact.
#[test]
fn large_chunked_body_streams_intact() {
    let up = RecordingUpstream::start(|r| Reply::ok(r.body.len().to_string()));
    let gw = start_standard(&up, "");
    let data = pattern(1 << 20);
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n");
    for piece in chunked(&data, 10_000).chunks(50_000) {
        c.send(piece);
    }
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, (1 << 20).to_string()));
    let req = up.only_request();
    assert!(req.chunked);
    assert!(
        req.body == data,
        "upstream body differs from the 1 MiB sent"
    );
}

// Rule: after a request with a body, the next request on the same connection is served (body fully consumed).
#[test]
fn body_is_fully_consumed_before_next_request() {
    let up = RecordingUpstream::start(|r| Reply::ok(r.body.clone()));
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nabcPOST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nxyz");
    assert_eq!(c.read_response().text(), "abc");
    assert_eq!(c.read_response().text(), "xyz");
    assert_eq!(up.requests().len(), 2);
}
