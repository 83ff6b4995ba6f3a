//! Request size limits (head, target, header count, body) and client timeouts (head, body,
//! keep-alive idle): the exact status for each, the connection closed where the request
//! cannot be finished, and nothing over a limit forwarded to the upstream.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// `max_body_bytes = 1000`; other limits at their defaults.
const SMALL_BODY: &str = "[limits]\nmax_body_bytes = 1000\n";

/// Short client timeouts for the timeout tests.
const SHORT_TIMEOUTS: &str = "[timeouts]\nhead = 1\nbody = 1\nkeep_alive = 2\n";

/// How early a timeout of [`SHORT_TIMEOUTS`] may fire, measured from before the client
/// connects: the gateway's deadlines count in coarse 100 ms ticks of a clock read at the
/// last tick, so one can run out up to a tick or two before its nominal time. Wide
/// enough that only a timeout that does not wait at all fails the lower bounds below.
const TIMER_SLACK: Duration = Duration::from_millis(500);

// Rule: a head larger than 8 KiB (one 9 KiB header) is answered 431, the connection closed, nothing forwarded.
#[test]
fn head_over_8k_is_431() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let big = "a".repeat(9 * 1024);
    expect_reject_and_close(
        gw.addr(),
        format!("GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\nX-Big: {big}\r\n\r\n"),
        431,
    );
    up.assert_received_nothing(gw);
}

// Rule: a head of about 7 KiB is under the 8 KiB limit and is served.
#[test]
fn head_under_8k_is_served() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let big = "a".repeat(7 * 1024);
    let r = request(
        gw.addr(),
        format!("GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\nX-Big: {big}\r\n\r\n"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        up.only_request().header("x-big").map(str::len),
        Some(7 * 1024)
    );
}

// Rule: a request target longer than 4096 bytes is answered 414 and nothing is forwarded.
#[test]
fn target_over_4096_bytes_is_414() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let target = format!("/api/items/1?q={}", "a".repeat(5000));
    let r = request(
        gw.addr(),
        format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n\r\n"),
    );
    assert_eq!(r.status, 414);
    up.assert_received_nothing(gw);
}

// Rule: a request target of exactly 4096 bytes is served.
#[test]
fn target_of_exactly_4096_bytes_is_served() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let prefix = "/api/items/1?q=";
    let target = format!("{prefix}{}", "a".repeat(4096 - prefix.len()));
    assert_eq!(target.len(), 4096);
    let r = request(
        gw.addr(),
        format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n\r\n"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        up.only_request().target,
        format!("/v1/items/1?q={}", "a".repeat(4096 - prefix.len()))
    );
}

// Rule: a Content-Length over `max_body_bytes` is answered 413 at once (without the body) and nothing is forwarded.
#[test]
fn content_length_over_max_body_is_413() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SMALL_BODY);
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1001\r\n\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 413);
    drop(c);
    up.assert_received_nothing(gw);
}

// Rule: a Content-Length body of exactly `max_body_bytes` is forwarded intact.
#[test]
fn content_length_at_max_body_is_forwarded() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SMALL_BODY);
    let data = pattern(1000);
    let mut c = gw.connect();
    c.send(cat(&[
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1000\r\n\r\n",
        &data,
    ]));
    assert_eq!(c.read_response().status, 200);
    assert!(up.only_request().body == data);
}

// Rule: a chunked body that grows over `max_body_bytes` is answered 413, the connection closed, and no complete request reaches the upstream.
#[test]
fn chunked_body_over_max_body_is_413_and_closed() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SMALL_BODY);
    let data = pattern(1200);
    let raw = cat(&[
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunked(&data, 400),
    ]);
    expect_reject_and_close(gw.addr(), raw, 413);
    up.settle(gw);
    assert!(
        up.requests().is_empty(),
        "upstream must not get a complete request: {:?}",
        up.requests()
    );
}

// Rule: a chunked body of exactly `max_body_bytes` is forwarded intact.
#[test]
fn chunked_body_at_max_body_is_forwarded() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SMALL_BODY);
    let data = pattern(1000);
    let raw = cat(&[
        b"POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n",
        &chunked(&data, 300),
    ]);
    assert_eq!(request(gw.addr(), raw).status, 200);
    assert!(up.only_request().body == data);
}

// Rule: more than 100 header fields are answered 431 and nothing is forwarded.
#[test]
fn more_than_100_headers_is_431() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let headers: String = (0..100).map(|i| format!("X-H{i}: v\r\n")).collect();
    // Host + 100 others = 101 fields.
    expect_reject_and_close(
        gw.addr(),
        format!("GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\n{headers}\r\n"),
        431,
    );
    up.assert_received_nothing(gw);
}

// Rule: exactly 100 header fields are served.
#[test]
fn exactly_100_headers_are_served() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, "");
    let headers: String = (0..99).map(|i| format!("X-H{i}: v\r\n")).collect();
    // Host + 99 others = 100 fields.
    let r = request(
        gw.addr(),
        format!("GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\n{headers}\r\n"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(up.only_request().header("x-h98"), Some("v"));
}

// Rule: a client that sends part of a head and stops gets 408 after the 1 s head timeout, then the connection closes.
#[test]
fn partial_head_gets_408_then_close() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SHORT_TIMEOUTS);
    let start = Instant::now();
    let mut c = gw.connect();
    c.send("GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\n");
    let r = c.read_response();
    assert_eq!(r.status, 408);
    // A lower bound only: however slow the machine, the timeout cannot run out before
    // the connection existed.
    assert!(
        start.elapsed() >= Duration::from_secs(1) - TIMER_SLACK,
        "408 came before the head timeout: {:?}",
        start.elapsed()
    );
    c.assert_closed();
    drop(c);
    up.assert_received_nothing(gw);
}

// Rule: a client trickling its head one byte every 300 ms is cut off with 408 (the head timeout counts from the first byte, not per read).
#[test]
fn trickling_head_is_cut_off_with_408() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SHORT_TIMEOUTS);
    let mut c = gw.connect();
    let head = format!(
        "GET /api/items/1 HTTP/1.1\r\nHost: gw.test\r\nX-Slow: {}\r\n\r\n",
        "a".repeat(40)
    );
    // The pace of the trickle (one byte every 300 ms, the whole head taking some 30 s)
    // is what is tested; no step waits for the gateway. A timeout counted per read would
    // never cut this client off, so being cut off before the head is complete is the
    // proof, whatever the machine's speed.
    let mut sent = 0;
    let mut cut = false;
    for b in head.bytes() {
        if c.try_send([b]).is_err() {
            cut = true;
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(300));
        if c.has_pending_input() {
            cut = true;
            break;
        }
    }
    assert!(
        cut,
        "a client trickling its head was not cut off: all {} bytes were taken",
        head.len()
    );
    assert!(sent < head.len(), "cut off only after the whole head");
    let r = c.read_response();
    assert_eq!(r.status, 408);
    c.assert_closed();
    drop(c);
    up.assert_received_nothing(gw);
}

// Rule: an idle keep-alive connection is closed after `keep_alive` (2 s), not by the 1 s head timeout.
#[test]
fn idle_keep_alive_connection_is_closed_after_keep_alive() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SHORT_TIMEOUTS);
    let mut c = gw.connect();
    // Measured from before the request: the idle time cannot start earlier, however
    // slow the machine. The 1 s head timeout would close it well before 2 s − slack.
    let idle_since = Instant::now();
    assert_eq!(c.roundtrip(get_req("/api/hello")).status, 200);
    c.assert_closed();
    let idle = idle_since.elapsed();
    assert!(
        idle >= Duration::from_secs(2) - TIMER_SLACK,
        "idle connection closed after only {idle:?}"
    );
}

// Rule: a keep-alive connection that goes on sending requests within `keep_alive` stays open.
#[test]
fn keep_alive_connection_in_use_stays_open() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SHORT_TIMEOUTS);
    let mut c = gw.connect();
    for _ in 0..4 {
        assert_eq!(c.roundtrip(get_req("/api/hello")).status, 200);
        std::thread::sleep(Duration::from_millis(700));
    }
    assert_eq!(c.roundtrip(get_req("/api/hello")).status, 200);
}

// Rule: a connection that never sends a byte is closed (with nothing, or a 408) within a few seconds.
#[test]
fn silent_connection_is_closed() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SHORT_TIMEOUTS);
    let mut c = gw.connect();
    let rest = c.read_to_end_or_closed();
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1.1 408 "),
        "unexpected bytes on a silent connection: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

// Rule: a client that stops in the middle of its body gets 408 after the 1 s body timeout, the connection closes, and no complete request reaches the upstream.
#[test]
fn stalled_body_gets_408_then_close() {
    let up = RecordingUpstream::ok();
    let gw = start_standard(&up, SHORT_TIMEOUTS);
    let mut c = gw.connect();
    c.send("POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\n\r\nabc");
    let r = c.read_response();
    assert_eq!(r.status, 408);
    c.assert_closed();
    drop(c);
    up.settle(gw);
    assert!(
        up.requests().is_empty(),
        "upstream must not get a complete request: {:?}",
        up.requests()
    );
}
