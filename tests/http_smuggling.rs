//! Strict request framing and head syntax (RFC 9112): every ambiguous or malformed request
//! is rejected with the right status, the connection is closed, nothing more is read from
//! it, and not one byte of the rejected request (nor any smuggled request inside it)
//! reaches the upstream.

mod common;

use common::*;

/// A valid request sent first in the "after a valid request" variants.
const VALID: &str = "GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\n\r\n";

/// Sends `bad` on a fresh connection; asserts a status in `allowed`, then close, and that
/// the upstream received nothing.
fn assert_rejected(bad: &[u8], allowed: &[u16]) {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let _ = c.try_send(bad);
    let r = c.read_response();
    assert!(
        allowed.contains(&r.status),
        "status {} not in {allowed:?}; response {r:?}",
        r.status
    );
    c.assert_closed();
    drop(c);
    up.assert_received_nothing(gw);
}

/// Sends a valid request, reads its 200, then sends `bad` on the same connection; asserts
/// a status in `allowed`, then close, and that the upstream received only the valid request.
fn assert_rejected_after_valid(bad: &[u8], allowed: &[u16]) {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    let ok = c.roundtrip(VALID);
    assert_eq!((ok.status, ok.text()), (200, "/v1/items/1".to_string()));
    let _ = c.try_send(bad);
    let r = c.read_response();
    assert!(
        allowed.contains(&r.status),
        "status {} not in {allowed:?}; response {r:?}",
        r.status
    );
    c.assert_closed();
    drop(c);
    up.assert_received_only(gw, &["/v1/items/1"]);
}

// Rule: Content-Length together with Transfer-Encoding is rejected with 400.
#[test]
fn content_length_with_transfer_encoding_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        &[400],
    );
}

// Rule: CL with TE is rejected even after a valid request on the same connection, which alone reaches the upstream.
#[test]
fn content_length_with_transfer_encoding_after_valid_request_is_400() {
    assert_rejected_after_valid(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        &[400],
    );
}

// Rule: two differing Content-Length headers are rejected with 400.
#[test]
fn differing_content_lengths_are_400() {
    assert_rejected(b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", &[400]);
}

// Rule: differing Content-Lengths after a valid request: 400, only the valid request forwarded.
#[test]
fn differing_content_lengths_after_valid_request_are_400() {
    assert_rejected_after_valid(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 6\r\nContent-Length: 5\r\n\r\nhello!",
        &[400],
    );
}

// Rule: a Content-Length list with differing values (`1,2`) is rejected with 400.
#[test]
fn content_length_list_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1,2\r\n\r\nab",
        &[400],
    );
}

// Rule: a signed Content-Length (`+5`) is rejected with 400.
#[test]
fn content_length_with_plus_sign_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: +5\r\n\r\nhello",
        &[400],
    );
}

// Rule: a negative Content-Length (`-1`) is rejected with 400.
#[test]
fn negative_content_length_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: -1\r\n\r\nhello",
        &[400],
    );
}

// Rule: a Content-Length with trailing garbage (`5x`) is rejected with 400.
#[test]
fn content_length_with_trailing_garbage_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5x\r\n\r\nhello",
        &[400],
    );
}

// Rule: an empty Content-Length is rejected with 400.
#[test]
fn empty_content_length_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: \r\n\r\nhello",
        &[400],
    );
}

// Rule: an unknown transfer coding before chunked (`gzip, chunked`) is answered 501.
#[test]
fn transfer_encoding_gzip_chunked_is_501() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        &[501],
    );
}

// Rule: chunked that is not the final coding (`chunked, gzip`) is rejected (400 or 501).
#[test]
fn transfer_encoding_chunked_not_final_is_rejected() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        &[400, 501],
    );
}

// Rule: `Transfer-Encoding: identity` is answered 501.
#[test]
fn transfer_encoding_identity_is_501() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: identity\r\n\r\nhello",
        &[501],
    );
}

// Rule: Transfer-Encoding in an HTTP/1.0 request is rejected with 400.
#[test]
fn transfer_encoding_in_http10_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.0\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        &[400],
    );
}

// Rule: a chunk size that is not hex (`zz`) is rejected with 400 and nothing is forwarded.
#[test]
fn malformed_chunk_size_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        &[400],
    );
}

// Rule: a malformed chunk size after a valid request: 400, only the valid request forwarded.
#[test]
fn malformed_chunk_size_after_valid_request_is_400() {
    assert_rejected_after_valid(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        &[400],
    );
}

// Rule: a chunk size that overflows 64 bits is rejected with 400 and nothing is forwarded.
#[test]
fn overflowing_chunk_size_is_400() {
    assert_rejected(
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n",
        &[400],
    );
}

// Rule: a bare CR inside a header value is rejected with 400.
#[test]
fn bare_cr_in_header_value_is_400() {
    assert_rejected(
        b"GET /api/items/2 HTTP/1.1\r\nHost: gw.test\r\nX-A: a\rb\r\n\r\n",
        &[400],
    );
}

// Rule: a NUL inside a header value is rejected with 400.
#[test]
fn nul_in_header_value_is_400() {
    assert_rejected(
        b"GET /api/items/2 HTTP/1.1\r\nHost: gw.test\r\nX-A: a\0b\r\n\r\n",
        &[400],
    );
}

// Rule: whitespace between a header name and the colon (`Foo : bar`) is rejected with 400.
#[test]
fn space_before_colon_is_400() {
    assert_rejected(
        b"GET /api/items/2 HTTP/1.1\r\nHost: gw.test\r\nFoo : bar\r\n\r\n",
        &[400],
    );
}

// Rule: an obs-fold continuation line (starting with a space) is rejected with 400.
#[test]
fn obs_fold_is_400() {
    assert_rejected(
        b"GET /api/items/2 HTTP/1.1\r\nHost: gw.test\r\nX-A: a\r\n b\r\n\r\n",
        &[400],
    );
}

// Rule: an HTTP/1.1 request without Host is rejected with 400.
#[test]
fn missing_host_in_http11_is_400() {
    assert_rejected(b"GET /api/items/2 HTTP/1.1\r\nAccept: */*\r\n\r\n", &[400]);
}

// Rule: a request with two Host headers is rejected with 400.
#[test]
fn two_host_headers_are_400() {
    assert_rejected(
        b"GET /api/items/2 HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\n\r\n",
        &[400],
    );
}

// Rule: a method that is not a token (`G(T`) is rejected with 400.
#[test]
fn invalid_method_is_400() {
    assert_rejected(
        b"G(T /api/items/2 HTTP/1.1\r\nHost: gw.test\r\n\r\n",
        &[400],
    );
}

// Rule: `HTTP/1.2` is rejected (400 or 505).
#[test]
fn http12_version_is_rejected() {
    assert_rejected(
        b"GET /api/items/2 HTTP/1.2\r\nHost: gw.test\r\n\r\n",
        &[400, 505],
    );
}

// Rule: `HTTP/2.0` in an HTTP/1 request line is answered 505.
#[test]
fn http20_version_is_505() {
    assert_rejected(
        b"GET /api/items/2 HTTP/2.0\r\nHost: gw.test\r\n\r\n",
        &[505],
    );
}

// Rule: an HTTP/0.9-style request line without version is rejected (400 or 505).
#[test]
fn http09_request_is_rejected() {
    assert_rejected(b"GET /api/items/2\r\n", &[400, 505]);
}

// Rule: the classic CL.TE payload is rejected and the smuggled request never reaches the upstream.
#[test]
fn cl_te_smuggling_is_rejected() {
    let smuggled = "GET /api/items/666 HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    let body = format!("0\r\n\r\n{smuggled}");
    let bad = format!(
        "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        body.len()
    );
    assert_rejected_after_valid(bad.as_bytes(), &[400]);
}

// Rule: the classic TE.CL payload is rejected and the smuggled request never reaches the upstream.
#[test]
fn te_cl_smuggling_is_rejected() {
    let smuggled = "GET /api/items/666 HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    let bad = format!(
        "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{smuggled}\r\n0\r\n\r\n",
        smuggled.len()
    );
    assert_rejected_after_valid(bad.as_bytes(), &[400]);
}

// Rule: an obfuscated TE (`Transfer-Encoding : chunked`) with CL is rejected and nothing is forwarded.
#[test]
fn obfuscated_transfer_encoding_smuggling_is_rejected() {
    let bad = "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 4\r\nTransfer-Encoding : chunked\r\n\r\n5c\r\nGPOST /api/items/666 HTTP/1.1\r\n\r\n0\r\n\r\n";
    assert_rejected(bad.as_bytes(), &[400]);
}

// Rule: a TE.TE payload (second Transfer-Encoding line with an unknown coding) is rejected.
#[test]
fn te_te_smuggling_is_rejected() {
    let smuggled = "GET /api/items/666 HTTP/1.1\r\nHost: gw.test\r\n\r\n";
    let bad = format!(
        "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n0\r\n\r\n{smuggled}"
    );
    assert_rejected_after_valid(bad.as_bytes(), &[400, 501]);
}

// Rule: after a rejection nothing more is read: a request appended after the bad one gets no response and is not forwarded.
#[test]
fn request_after_rejected_one_is_ignored() {
    let bad = "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(format!("{bad}{VALID}"));
    let r = c.read_response();
    assert_eq!(r.status, 400);
    c.assert_closed();
    drop(c);
    up.assert_received_nothing(gw);
}

// Rule: after a header-syntax rejection, a pipelined valid request is neither answered nor forwarded.
#[test]
fn request_after_header_syntax_rejection_is_ignored() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(format!(
        "GET /api/items/2 HTTP/1.1\r\nHost: gw.test\r\nFoo : bar\r\n\r\n{VALID}"
    ));
    assert_eq!(c.read_response().status, 400);
    c.assert_closed();
    drop(c);
    up.assert_received_nothing(gw);
}

// Rule: a fragment in the request target is refused and nothing is forwarded.
#[test]
fn fragment_in_target_is_400() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    expect_reject_and_close(
        gw.addr(),
        "GET /api/any/admin# HTTP/1.1\r\nHost: x\r\n\r\n",
        400,
    );
    up.assert_received_nothing(gw);
}
