//! The harness's counts agree with what the server saw, and its JSON parses.

mod common;

use common::{harness_json, Behaviour, TestServer};
use std::sync::atomic::Ordering;

fn failing_server() -> TestServer {
    TestServer::start(Behaviour {
        fail_every: 7,
        stall_at: None,
        stall: Default::default(),
    })
}

// With --requests N the harness sends exactly N requests, and its answers by
// status match the server's own count.
#[test]
fn request_and_status_counts_match_the_server() {
    let server = failing_server();
    let result = harness_json(&[
        &server.url("/count"),
        "--requests",
        "1234",
        "--connections",
        "8",
        "--duration",
        "60s",
    ]);
    let statuses: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(result["statuses"].clone()).expect("statuses");
    assert_eq!(
        (
            result["answers"].as_u64(),
            result["errors_total"].as_u64(),
            server.seen.requests.load(Ordering::SeqCst),
            statuses
        ),
        (Some(1234), Some(0), 1234, server.statuses())
    );
}

// Without keep-alive, every request comes on its own connection.
#[test]
fn no_keepalive_opens_a_connection_per_request() {
    let server = failing_server();
    // --requests ends the run; the long --duration only keeps a slow machine from
    // cutting it short.
    let result = harness_json(&[
        &server.url("/churn"),
        "--requests",
        "150",
        "--connections",
        "3",
        "--no-keepalive",
        "--duration",
        "60s",
    ]);
    assert_eq!(
        (
            result["answers"].as_u64(),
            server.seen.connections.load(Ordering::SeqCst)
        ),
        (Some(150), 150)
    );
}

// An open-loop run at a fixed rate sends what was scheduled, and the JSON
// result carries the fields the reports are built from.
//
// What is scheduled does not depend on the machine: 200/s over 1 s on 4
// connections is 50 requests 20 ms apart on each, and a request due while its
// connection is busy is sent late rather than dropped, so all 200 are answered
// however slow the run.
#[test]
fn open_loop_json_result_is_complete() {
    let server = failing_server();
    let result = harness_json(&[
        &server.url("/rate"),
        "--rate",
        "200",
        "--connections",
        "4",
        "--duration",
        "1s",
        "--method",
        "POST",
        "--header",
        "X-Client-Token: abc",
        "--body",
        "{}",
    ]);
    let answers = result["answers"].as_u64().unwrap_or(0);
    let curve = result["percentiles"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        result["mode"] == "open"
            && answers == 200
            && answers == server.seen.requests.load(Ordering::SeqCst)
            && curve > 10
            && result["per_second"].is_array(),
        "unexpected result: {result}"
    );
}
