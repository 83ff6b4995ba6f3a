//! An open-loop run counts the time requests spent queued behind a stalled
//! server; a closed-loop run over the same stall hides most of it.
//!
//! The server holds every answer from the arrival of its 400th request until
//! [`STALL`] later, never less (it sleeps until then). The assertions relate
//! what the harness reports to that stall and to what the server counted, not
//! to how fast the machine is: a slower machine only adds latency.

mod common;

use common::{harness_json, Behaviour, TestServer};
use std::sync::atomic::Ordering;
use std::time::Duration;

const STALL: Duration = Duration::from_millis(300);

fn stalling_server() -> TestServer {
    TestServer::start(Behaviour {
        fail_every: 0,
        stall_at: Some(400),
        stall: STALL,
    })
}

fn latency_ms(result: &serde_json::Value, which: &str) -> f64 {
    result["latency_ms"][which].as_f64().expect(which)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// Open loop at rate R: every request scheduled in the last `S - x` of the stall (S
// long) is answered after the stall ends, so its latency, counted from its scheduled
// time, is at least x. That is R·(S - x) requests; for the p99 to be at least x they
// must be 1% of the answers: x = S - (answers/100 + 1)/R, minus one request for the
// phase of the schedule. With 2,000 answers at 1,000/s: p99 ≥ S - 22 ms.
#[test]
fn open_loop_p99_includes_the_stall() {
    let server = stalling_server();
    let rate = 1000.0;
    let result = harness_json(&[
        &server.url("/"),
        "--rate",
        "1000",
        "--connections",
        "10",
        "--duration",
        "2s",
    ]);
    let answers = result["answers"].as_u64().expect("answers") as f64;
    let floor = ms(STALL) - (answers / 100.0 + 2.0) / rate * 1000.0;
    let p99 = latency_ms(&result, "p99");
    eprintln!("open loop: p99 {p99} ms, floor {floor:.1} ms, {answers} answers");
    assert!(
        server.seen.held.load(Ordering::SeqCst) > 0 && p99 >= floor,
        "open-loop p99 {p99} ms should include the {STALL:?} stall (at least {floor:.1} ms over {answers} answers)"
    );
}

// Closed loop: a connection sends nothing while its request is held, so the stall
// holds at most one request per connection (the server counts them), and it shows
// in the maximum (an answer held S is at least S late) but not in the p99 of 2,000
// answers: 4 held answers are 0.2% of them.
#[test]
fn closed_loop_hides_the_stall() {
    let server = stalling_server();
    let connections = 4;
    let result = harness_json(&[
        &server.url("/"),
        "--connections",
        &connections.to_string(),
        "--requests",
        "2000",
        "--duration",
        "60s",
    ]);
    let held = server.seen.held.load(Ordering::SeqCst);
    let (max, p99) = (latency_ms(&result, "max"), latency_ms(&result, "p99"));
    eprintln!("closed loop: {held} held, max {max} ms, p99 {p99} ms");
    assert!(
        result["answers"].as_u64() == Some(2000)
            && (1..=connections).contains(&held)
            && max >= ms(STALL)
            && p99 < ms(STALL),
        "closed loop: {held} requests held by the stall, max {max} ms (stall seen), p99 {p99} ms (stall hidden)"
    );
}
