//! Routing: 404 for unknown paths, 405 with `Allow` for a known path with the wrong method,
//! path parameters and prefix remainders carried into the back-end URL, the client's query
//! string passed through, and stock back ends answering exactly what the config says.

mod common;

use common::*;
use std::collections::BTreeSet;

// Rule: a path no route matches is answered 404 and nothing is forwarded.
#[test]
fn unknown_path_is_404() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/nope").status, 404);
    up.assert_received_nothing(gw);
}

// Rule: a path outside every deployment's prefix is answered 404.
#[test]
fn path_outside_deployment_prefix_is_404() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/other/hello").status, 404);
    assert_eq!(get(gw.addr(), "/hello").status, 404);
    up.assert_received_nothing(gw);
}

// Rule: an exact route does not match a longer path, and a `{param}` matches exactly one segment.
#[test]
fn exact_and_param_routes_do_not_match_longer_paths() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/hello/extra").status, 404);
    assert_eq!(get(gw.addr(), "/api/items/1/2").status, 404);
    up.assert_received_nothing(gw);
}

// Rule: the 404 answer leaves a keep-alive connection usable.
#[test]
fn not_found_keeps_connection_usable() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    assert_eq!(c.roundtrip(get_req("/api/nope")).status, 404);
    assert_eq!(c.roundtrip(get_req("/api/hello")).status, 200);
}

/// The set of methods in a response's `Allow` header.
fn allow_set(r: &Response) -> BTreeSet<String> {
    r.header_all("allow")
        .iter()
        .flat_map(|v| v.split(','))
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

// Rule: a known path with a method the route does not allow is answered 405 with `Allow` listing exactly the route's methods.
#[test]
fn wrong_method_is_405_with_allow() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "DELETE /api/items/1 HTTP/1.1\r\nHost: gw.test\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(
        allow_set(&r),
        BTreeSet::from(["GET".to_string(), "POST".to_string()]),
        "headers: {:?}",
        r.headers
    );
    up.assert_received_nothing(gw);
}

// Rule: a stock route limited to GET answers POST with 405 and `Allow: GET`.
#[test]
fn wrong_method_on_stock_route_is_405() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "POST /api/teapot HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(
        allow_set(&r),
        BTreeSet::from(["GET".to_string()]),
        "headers: {:?}",
        r.headers
    );
}

// Rule: a `{param}` value is substituted into the back-end URL.
#[test]
fn path_param_is_substituted_into_backend_url() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/items/42").status, 200);
    assert_eq!(up.only_request().target, "/v1/items/42");
}

// Rule: for a `{rest*}` prefix route whose URL does not use the param, the remainder is appended to the URL path.
#[test]
fn catch_all_remainder_is_appended() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/files/a/b").status, 200);
    assert_eq!(up.only_request().target, "/store/a/b");
}

// Rule: for a `*` prefix route, the remainder is appended to the URL path.
#[test]
fn star_remainder_is_appended() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/any/x/y/z").status, 200);
    assert_eq!(up.only_request().target, "/anything/x/y/z");
}

// Rule: the client's query string is passed through to the back end.
#[test]
fn query_string_is_passed_through() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/items/42?x=1&y=two").status, 200);
    assert_eq!(up.only_request().target, "/v1/items/42?x=1&y=two");
}

// Rule: the client's query string is passed through on a prefix route too.
#[test]
fn query_string_is_passed_through_on_prefix_route() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/files/a/b?v=3").status, 200);
    assert_eq!(up.only_request().target, "/store/a/b?v=3");
}

// Rule: when the back-end URL has a query, the client's query is appended with `&`.
#[test]
fn query_string_is_appended_to_backend_query() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/q?x=2").status, 200);
    assert_eq!(up.only_request().target, "/v1/q?fixed=1&x=2");
}

// Rule: without a client query, the back-end URL's own query is sent unchanged.
#[test]
fn backend_query_is_kept_without_client_query() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/q").status, 200);
    assert_eq!(up.only_request().target, "/v1/q?fixed=1");
}

// Rule: a stock route answers exactly its status, headers and body, with Content-Length set.
#[test]
fn stock_route_answers_exactly() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/hello");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("content-length"), Some("3"));
    assert_eq!(r.body, b"hi\n");
    up.assert_received_nothing(gw);
}

// Rule: a stock route with a non-200 status and custom headers answers them exactly.
#[test]
fn stock_route_with_custom_status_and_headers() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/teapot");
    assert_eq!(r.status, 418);
    assert_eq!(r.header("x-stock"), Some("yes"));
    assert_eq!(r.header("content-length"), Some("15"));
    assert_eq!(r.body, b"short and stout");
}

// Rule: HEAD on a stock route returns its headers and no body; the connection stays usable.
#[test]
fn head_on_stock_route_has_no_body() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("HEAD /api/hello HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // If any body bytes had been sent, they would corrupt the next response.
    let r2 = c.roundtrip(get_req("/api/teapot"));
    assert_eq!(
        (r2.status, r2.body.as_slice()),
        (418, &b"short and stout"[..])
    );
}

// Rule: a 404 for a request whose body has not fully arrived says `Connection: close` and closes.
#[test]
fn answer_with_unread_body_says_close() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send("POST /api/nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial");
    let r = c.read_response();
    assert_eq!(r.status, 404);
    assert!(
        r.header_has_token("connection", "close"),
        "headers: {:?}",
        r.headers
    );
    c.assert_closed();
}

// Rule: percent-encoded unreserved characters route like their plain form (`/api/%68ello` is `/api/hello`).
#[test]
fn encoded_unreserved_characters_route_like_plain() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/%68ello");
    assert_eq!((r.status, r.text()), (200, "hi\n".to_string()));
}
