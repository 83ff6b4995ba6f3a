//! An open-loop run counts the time requests spent queued behind a stalled
//! server; a closed-loop run over the same stall hides most of it.

mod common;

use common::{harness_json, Behaviour, TestServer};
use std::time::Duration;

const STALL: Duration = Duration::from_millis(300);

fn stalling_server() -> TestServer {
    TestServer::start(Behaviour {
        fail_every: 0,
        stall_at: Some(400),
        stall: STALL,
    })
}

fn p99_ms(result: &serde_json::Value) -> f64 {
    result["latency_ms"]["p99"].as_f64().expect("p99")
}

// Open loop: ~15% of the requests were due during the 300 ms stall, so the p99
// (measured from each request's scheduled time) includes most of the stall.
#[test]
fn open_loop_p99_includes_the_stall() {
    let server = stalling_server();
    let result = harness_json(&[
        &server.url("/"),
        "--rate",
        "1000",
        "--connections",
        "10",
        "--duration",
        "2s",
    ]);
    assert!(
        p99_ms(&result) >= 200.0,
        "open-loop p99 {} ms should include the 300 ms stall",
        p99_ms(&result)
    );
}

// Closed loop: each of the 4 connections waits through the stall once, so the
// stall shows in the maximum but not in the p99: the omission open loop corrects.
#[test]
fn closed_loop_hides_the_stall() {
    let server = stalling_server();
    let result = harness_json(&[&server.url("/"), "--connections", "4", "--duration", "2s"]);
    let max = result["latency_ms"]["max"].as_f64().expect("max");
    assert!(
        max >= 250.0 && p99_ms(&result) < 100.0,
        "closed loop: max {max} ms (stall seen), p99 {} ms (stall hidden)",
        p99_ms(&result)
    );
}
