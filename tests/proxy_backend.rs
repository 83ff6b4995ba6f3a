//! Back-end failures (refused connection, no answer within `read_timeout`, garbage, a close
//! without an answer) turned into 502/504, and upstream connection pooling: reuse of an
//! idle keep-alive connection, `idle_timeout`, and a transparent retry of an idempotent
//! request when a pooled connection turns out to be closed.

mod common;

use common::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

// Rule: a back end that refuses the connection is answered 502.
#[test]
fn connection_refused_is_502() {
    let dead: SocketAddr = format!("127.0.0.1:{}", unused_port()).parse().unwrap();
    let gw = Gateway::start(&standard_config(dead, ""));
    assert_eq!(get(gw.addr(), "/api/items/1").status, 502);
}

// Rule: after a 502 for a refused connection, the client connection and the gateway keep working.
#[test]
fn gateway_keeps_serving_after_502() {
    let dead: SocketAddr = format!("127.0.0.1:{}", unused_port()).parse().unwrap();
    let gw = Gateway::start(&standard_config(dead, ""));
    let mut c = gw.connect();
    assert_eq!(c.roundtrip(get_req("/api/items/1")).status, 502);
    // The connection may be kept or closed after a 502; a new one must work either way.
    let r = get(gw.addr(), "/api/hello");
    assert_eq!((r.status, r.text()), (200, "hi\n".to_string()));
}

// Rule: a back end that accepts but never answers is answered 504 after its 1 s `read_timeout`.
#[test]
fn no_answer_within_read_timeout_is_504() {
    let up = RecordingUpstream::start(|_| Reply::hang());
    let gw = start_standard(&up, "");
    let r = get(gw.addr(), "/api/slow");
    assert_eq!(r.status, 504);
    assert_eq!(up.only_request().target, "/slow");
    assert_eq!(get(gw.addr(), "/api/hello").status, 200);
}

// Rule: a back end that sends garbage instead of a status line is answered 502.
#[test]
fn garbage_from_backend_is_502() {
    let up = RecordingUpstream::start(|_| Reply::raw("NOT HTTP AT ALL\r\n\r\n").then_hang());
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/items/1").status, 502);
}

// Rule: a back end that closes the connection without answering is answered 502.
#[test]
fn close_without_answer_is_502() {
    let up = RecordingUpstream::start(|_| Reply::close_now());
    let gw = start_standard(&up, "");
    assert_eq!(
        request(
            gw.addr(),
            "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2\r\n\r\nhi"
        )
        .status,
        502
    );
}

// Rule: a POST that fails on a fresh connection is not retried (the upstream sees it once).
#[test]
fn failed_post_is_not_retried() {
    let up = RecordingUpstream::start(|_| Reply::close_now());
    let gw = start_standard(&up, "");
    assert_eq!(
        request(
            gw.addr(),
            "POST /api/echo HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2\r\n\r\nhi"
        )
        .status,
        502
    );
    // Complete once the gateway has exited: a retry, however late, would be in it.
    up.settle(gw);
    assert_eq!(up.requests().len(), 1);
}

// Rule: sequential requests from separate client connections reuse one pooled upstream connection.
#[test]
fn upstream_connection_is_reused() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/items/1").text(), "/v1/items/1");
    // The client may have the answer before the gateway has put the upstream connection
    // back in its pool; it counts the answer in /metrics only after that.
    gw.wait_metric("portcullis_responses_total", 1.0);
    assert_eq!(get(gw.addr(), "/api/items/2").text(), "/v1/items/2");
    let conns = up.connections();
    assert_eq!(conns.len(), 1, "upstream connections: {conns:#?}");
    assert_eq!(conns[0].requests.len(), 2);
}

// Rule: requests on one keep-alive client connection reuse one upstream connection.
#[test]
fn upstream_connection_is_reused_within_client_connection() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    for i in 1..=3 {
        assert_eq!(c.roundtrip(get_req(&format!("/api/items/{i}"))).status, 200);
    }
    assert_eq!(up.connection_count(), 1);
}

// Rule: a pooled connection idle longer than `[upstream] idle_timeout` is not reused.
#[test]
fn connection_idle_past_idle_timeout_is_not_reused() {
    let up = RecordingUpstream::echo_target();
    let gw = start_standard(
        &up,
        "[upstream]\nidle_timeout = 1\n[timeouts]\nkeep_alive = 1\n",
    );
    // The idle time is the gateway's to measure, so the test reads it off the gateway's
    // own clock instead of sleeping: the client connection's keep-alive wait (1 s, the
    // same as idle_timeout) starts after the upstream connection went back to the pool,
    // so once the gateway closes the idle client, the pooled connection is past its
    // idle_timeout too.
    let mut c = gw.connect();
    assert_eq!(c.roundtrip(get_req("/api/items/1")).status, 200);
    c.assert_closed();
    assert_eq!(get(gw.addr(), "/api/items/2").status, 200);
    assert_eq!(up.connection_count(), 2);
    assert_eq!(up.requests().len(), 2);
}

// Rule: when the upstream has closed an idle pooled connection, the next idempotent GET is retried on a fresh connection transparently.
#[test]
fn get_on_closed_pooled_connection_is_retried() {
    let served = AtomicUsize::new(0);
    let pooled = Gate::new();
    let up = {
        let pooled = pooled.clone();
        RecordingUpstream::start(move |r| {
            if served.fetch_add(1, Ordering::SeqCst) == 0 {
                // Answer as a keep-alive connection, then close it while it sits idle in the pool.
                Reply::ok(r.target.clone())
                    .then_wait_for(&pooled)
                    .then_close()
            } else {
                Reply::ok(r.target.clone())
            }
        })
    };
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/items/1").text(), "/v1/items/1");
    // The gateway counts the answer only once the connection is back in its pool; then
    // the upstream closes its end of it.
    gw.wait_metric("portcullis_responses_total", 1.0);
    pooled.open();
    up.wait_closed(0);
    let r = get(gw.addr(), "/api/items/2");
    assert_eq!((r.status, r.text()), (200, "/v1/items/2".to_string()));
    assert_eq!(up.connection_count(), 2);
    let targets: Vec<String> = up.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/v1/items/1", "/v1/items/2"]);
}

// Rule: bytes a back end sends on an idle pooled connection (a second answer nobody asked
// for) never reach a client: the connection is closed instead of reused, and the next
// request gets its own answer on a fresh connection (nginx and Envoy do the same).
#[test]
fn stray_bytes_on_an_idle_pooled_connection_are_not_relayed() {
    let served = AtomicUsize::new(0);
    let pooled = Gate::new();
    let up = {
        let pooled = pooled.clone();
        RecordingUpstream::start(move |r| {
            if served.fetch_add(1, Ordering::SeqCst) == 0 {
                Reply::raw("HTTP/1.1 204 No Content\r\n\r\n")
                    .then_wait_for(&pooled)
                    .then_raw("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL")
            } else {
                Reply::ok(r.target.clone())
            }
        })
    };
    let gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/items/1").status, 204);
    // The gateway counts the answer only once the connection is back in its pool; then
    // the upstream sends its stray answer on the idle connection.
    gw.wait_metric("portcullis_responses_total", 1.0);
    pooled.open();
    up.wait_replies_done(0, 1);
    for n in 2..5 {
        let r = get(gw.addr(), &format!("/api/items/{n}"));
        assert_eq!((r.status, r.text()), (200, format!("/v1/items/{n}")));
    }
    assert_eq!(up.connection_count(), 2);
    assert!(eventually(|| gw
        .log_text()
        .contains("sent bytes on an idle keep-alive connection")));
}

// Rule: a request whose body was never read (back end unreachable) gets 502 and the connection closes, so the body is never read as a request.
#[test]
fn unread_body_after_connect_failure_closes_connection() {
    let live = RecordingUpstream::ok();
    let dead: SocketAddr = format!("127.0.0.1:{}", unused_port()).parse().unwrap();
    let config = format!(
        "{}\n[[deployments.routes]]\npath = \"/live\"\nbackend = {{ type = \"http\", url = \"http://{}/live\" }}\n",
        standard_config(dead, ""),
        live.addr()
    );
    let gw = Gateway::start(&config);
    let inner = "GET /api/live HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut c = gw.connect();
    c.send(format!(
        "POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{inner}",
        inner.len()
    ));
    let r = c.read_response();
    assert_eq!(r.status, 502);
    assert!(
        r.header_has_token("connection", "close"),
        "headers: {:?}",
        r.headers
    );
    c.assert_closed();
    drop(c);
    live.assert_received_nothing(gw);
}
