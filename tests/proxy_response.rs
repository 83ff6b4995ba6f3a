//! Relaying the upstream's response: Content-Length, chunked and close-delimited bodies
//! framed correctly for 1.1 and 1.0 clients, bodiless responses (HEAD, 204, 304), interim
//! 1xx responses, hop-by-hop response headers, and malformed or truncated upstream
//! responses turned into 502 or a closed connection, never a wrong complete response.

mod common;

use common::*;
use std::time::Duration;

/// An upstream whose reply is chosen by the request target (`/anything/NAME` for a client
/// request to `/api/any/NAME`); `script(name)` gives the reply for NAME.
fn upstream(script: fn(&str) -> Reply) -> RecordingUpstream {
    RecordingUpstream::start(move |r| {
        let name = r
            .target
            .strip_prefix("/anything/")
            .unwrap_or(&r.target)
            .to_string();
        script(&name)
    })
}

fn replies(name: &str) -> Reply {
    match name {
        "cl" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-Up: 1\r\n\r\nhello world"),
        "created" => Reply::raw("HTTP/1.1 201 Created\r\nContent-Length: 2\r\nLocation: /v1/x/1\r\n\r\nok"),
        "chunked" => Reply::raw(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n",
        ),
        "close-delimited" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
            .then_sleep(Duration::from_millis(100))
            .then_raw(" of the line")
            .then_close(),
        "head" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n"),
        "204" => Reply::raw("HTTP/1.1 204 No Content\r\nX-Up: 1\r\n\r\n"),
        "304" => Reply::raw("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n"),
        "103" => Reply::raw("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            .then_sleep(Duration::from_millis(100))
            .then_raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"),
        "102" => Reply::raw("HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"),
        "100" => Reply::raw("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"),
        "bad-status" => Reply::raw("HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok").then_close(),
        "two-cl" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!").then_close(),
        "cl-te" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .then_close(),
        "truncated" => Reply::raw(format!("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "x".repeat(10)))
            .then_sleep(Duration::from_millis(300))
            .then_close(),
        "upstream-close" => Reply::raw("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye").then_close(),
        "hop" => Reply::raw(
            "HTTP/1.1 200 OK\r\nConnection: X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\nX-Public: yes\r\nContent-Length: 2\r\n\r\nok",
        ),
        "many-chunks" => Reply::raw(many_chunks_response()),
        _ => Reply::ok(name),
    }
}

/// A chunked response of 2,000 small chunks (more than the gateway's output
/// buffer holds at once), sent in one write on a connection kept open.
fn many_chunks_response() -> String {
    let mut raw = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    for i in 0..2000 {
        let data = format!("chunk-{i:04}-abcdefghijklmnopqrstuvwxyz|");
        raw.push_str(&format!("{:x}\r\n{data}\r\n", data.len()));
    }
    raw.push_str("0\r\n\r\n");
    raw
}

// Rule: a chunked response already fully buffered is relayed completely without waiting for more upstream bytes.
#[test]
fn buffered_chunked_response_larger_than_output_is_complete() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip(get_req("/api/any/many-chunks"));
    let expected: String = (0..2000)
        .map(|i| format!("chunk-{i:04}-abcdefghijklmnopqrstuvwxyz|"))
        .collect();
    assert_eq!((r.status, r.text()), (200, expected));
}

// Rule: a Content-Length response is relayed with its status, headers, Content-Length and body.
#[test]
fn content_length_response_is_relayed() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/any/cl");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-up"), Some("1"));
    assert_eq!(r.header("content-length"), Some("11"));
    assert_eq!(r.body, b"hello world");
}

// Rule: the upstream's status code and end-to-end headers are relayed unchanged.
#[test]
fn upstream_status_is_relayed() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/any/created");
    assert_eq!(
        (r.status, r.header("location"), r.text()),
        (201, Some("/v1/x/1"), "ok".to_string())
    );
}

// Rule: a chunked response is relayed chunked to an HTTP/1.1 client with the same data.
#[test]
fn chunked_response_is_relayed_chunked_to_http11() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip(get_req("/api/any/chunked"));
    assert_eq!(r.status, 200);
    assert!(r.chunked, "headers: {:?}", r.headers);
    assert_eq!(r.text(), "hello world");
    assert_eq!(c.roundtrip(get_req("/api/hello")).text(), "hi\n");
}

// Rule: a chunked response goes to an HTTP/1.0 client as a plain body, then the connection closes.
#[test]
fn chunked_response_is_unchunked_for_http10() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("GET /api/any/chunked HTTP/1.0\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("transfer-encoding"),
        None,
        "no Transfer-Encoding to a 1.0 client; headers: {:?}",
        r.headers
    );
    assert_eq!(r.text(), "hello world");
    c.assert_closed();
}

// Rule: a close-delimited upstream response is re-framed as chunked for a 1.1 client, whose connection stays usable.
#[test]
fn close_delimited_response_is_rechunked_and_connection_kept() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip(get_req("/api/any/close-delimited"));
    assert_eq!(r.status, 200);
    assert!(
        r.chunked,
        "expected chunked re-framing; headers: {:?}",
        r.headers
    );
    assert_eq!(r.text(), "until the end of the line");
    let r2 = c.roundtrip(get_req("/api/any/again"));
    assert_eq!((r2.status, r2.text()), (200, "again".to_string()));
}

// Rule: the response to HEAD carries no body even though the upstream declares a Content-Length; the connection stays usable.
#[test]
fn head_response_has_no_body() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("HEAD /api/any/head HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(up.only_request().method, "HEAD");
    let r2 = c.roundtrip(get_req("/api/any/next"));
    assert_eq!((r2.status, r2.text()), (200, "next".to_string()));
}

// Rule: a 204 response carries no body; the connection stays usable.
#[test]
fn no_content_response_has_no_body() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip(get_req("/api/any/204"));
    assert_eq!((r.status, r.header("x-up")), (204, Some("1")));
    let r2 = c.roundtrip(get_req("/api/any/next"));
    assert_eq!((r2.status, r2.text()), (200, "next".to_string()));
}

// Rule: a 304 response carries no body even with a Content-Length; the connection stays usable.
#[test]
fn not_modified_response_has_no_body() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip(get_req("/api/any/304"));
    assert_eq!((r.status, r.header("etag")), (304, Some("\"v1\"")));
    let r2 = c.roundtrip(get_req("/api/any/next"));
    assert_eq!((r2.status, r2.text()), (200, "next".to_string()));
}

/// Asserts that `GET /api/any/{name}` ends in a final 200 with body `final` and that the
/// connection is usable afterwards.
fn assert_interim_then_final(name: &str) {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(get_req(&format!("/api/any/{name}")));
    let r = c.read_final_response();
    assert_eq!((r.status, r.text()), (200, "final".to_string()));
    let r2 = c.roundtrip(get_req("/api/any/next"));
    assert_eq!((r2.status, r2.text()), (200, "next".to_string()));
}

// Rule: a 103 Early Hints before the final 200 is not taken for the final response.
#[test]
fn interim_103_is_not_the_final_response() {
    assert_interim_then_final("103");
}

// Rule: a 102 Processing before the final 200 is not taken for the final response.
#[test]
fn interim_102_is_not_the_final_response() {
    assert_interim_then_final("102");
}

// Rule: an unsolicited 100 Continue from the upstream is not taken for the final response.
#[test]
fn interim_100_is_not_the_final_response() {
    assert_interim_then_final("100");
}

// Rule: an upstream status line with a non-numeric code is answered 502.
#[test]
fn invalid_upstream_status_line_is_502() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/any/bad-status").status, 502);
}

// Rule: an upstream response with conflicting Content-Length headers is answered 502.
#[test]
fn conflicting_upstream_content_length_is_502() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/any/two-cl").status, 502);
}

// Rule: an upstream response with both Content-Length and Transfer-Encoding is answered 502.
#[test]
fn upstream_content_length_with_transfer_encoding_is_502() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/any/cl-te").status, 502);
}

// Rule: when the upstream closes mid-body, the client never sees a complete response: its connection closes before all 100 declared bytes arrive.
#[test]
fn truncated_upstream_body_is_not_completed() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(get_req("/api/any/truncated"));
    let raw = c.read_to_end_or_closed();
    let head_end = find(&raw, b"\r\n\r\n").map(|p| p + 4);
    let text = String::from_utf8_lossy(&raw).to_string();
    if text.starts_with("HTTP/1.1 502 ") {
        return; // Nothing had been relayed yet: a 502 is a truthful answer.
    }
    assert!(
        text.starts_with("HTTP/1.1 200 "),
        "unexpected answer: {text:?}"
    );
    let head_end = head_end.expect("complete response head");
    let body = &raw[head_end..];
    let head = &text[..head_end];
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        assert!(
            find(body, b"\r\n0\r\n\r\n").is_none() && !body.starts_with(b"0\r\n"),
            "chunked body was terminated: {text:?}"
        );
    } else {
        assert!(
            body.len() < 100,
            "client received a complete body of {} bytes: {text:?}",
            body.len()
        );
    }
}

// Rule: an upstream `Connection: close` is hop-by-hop: the client connection stays open and the next request uses a new upstream connection.
#[test]
fn upstream_connection_close_does_not_close_client() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let r = c.roundtrip(get_req("/api/any/upstream-close"));
    assert_eq!((r.status, r.text()), (200, "bye".to_string()));
    assert!(
        !r.header_has_token("connection", "close"),
        "headers: {:?}",
        r.headers
    );
    let r2 = c.roundtrip(get_req("/api/any/next"));
    assert_eq!((r2.status, r2.text()), (200, "next".to_string()));
    assert_eq!(up.connection_count(), 2);
}

// Rule: hop-by-hop response headers (Keep-Alive and those named in Connection) do not reach the client.
#[test]
fn hop_by_hop_response_headers_are_dropped() {
    let up = upstream(replies);
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/any/hop");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-public"), Some("yes"));
    assert_eq!(r.header("x-internal"), None, "headers: {:?}", r.headers);
    assert_eq!(r.header("keep-alive"), None, "headers: {:?}", r.headers);
}

// Rule: a back end that sends a body after a HEAD answer never feeds those bytes to the next client.
#[test]
fn stray_bytes_after_head_answer_do_not_reach_next_client() {
    let answered = Gate::new();
    let up = {
        let answered = answered.clone();
        RecordingUpstream::start(move |r| match r.target.as_str() {
            "/anything/headbody" => Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n")
                .then_wait_for(&answered)
                .then_raw("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"),
            _ => replies(r.target.strip_prefix("/anything/").unwrap_or(&r.target)),
        })
    };
    let gw = start_standard(&up, "");
    let mut a = gw.connect();
    a.send("HEAD /api/any/headbody HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    assert_eq!(a.read_head_response().status, 200);
    // The stray body comes once the gateway is done with the HEAD answer (it counts
    // the answer after it has pooled or closed the connection).
    gw.wait_metric("portcullis_responses_total", 1.0);
    answered.open();
    up.wait_replies_done(0, 1);
    let r = get(gw.addr(), "/api/any/victim");
    assert_eq!((r.status, r.text()), (200, "victim".to_string()));
}
