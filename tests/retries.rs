//! Retries on another server: a server killed during a load of GETs costs no
//! client request and is ejected, then taken back once it answers again; a
//! retried status goes to another server for idempotent requests only (or
//! with an `Idempotency-Key` where allowed); with every server failing, the
//! retry budget keeps the failures answered, not multiplied.

mod common;
#[path = "servers_support/mod.rs"]
mod servers_support;

use common::*;
use servers_support::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

// Rule: killing one of three servers during a load of GETs fails no client request; the
// server is ejected, and after it starts again on its port it gets requests again.
#[test]
fn killed_server_costs_no_request_and_comes_back() {
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list: Vec<_> = servers.iter().map(|s| (s.addr, 1)).collect();
    let extra = ", outlier = { consecutive_failures = 2, base_ejection = 0.2, max_ejection = 0.5 }, retry = { attempts = 3 }";
    let gw = Gateway::start_with_args(&config(&list, extra), &["--workers", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let addr = gw.addr();
    let loaders: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut results = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    results.extend(load(addr, "/api/x", "", 1, 20));
                }
                results
            })
        })
        .collect();
    let c_addr = servers[2].addr;
    assert!(eventually(|| servers[2].hits() > 20));
    servers[2].kill();
    gw.wait_log_line("ejection", |l| {
        l.contains("server ejected") && l.contains(&c_addr.to_string())
    });
    let back = Server::start_on("c", c_addr);
    assert!(eventually(|| back.hits() > 20), "{}", gw.log_text());
    stop.store(true, Ordering::SeqCst);
    let results: Vec<_> = loaders
        .into_iter()
        .flat_map(|l| l.join().unwrap())
        .collect();
    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed: {failed:?}",
        failed.len(),
        results.len()
    );
    assert!(gw.log_text().contains("server returned"));
    assert!(gw.metric("portcullis_server_retries_total") > 0.0);
}

// Rule: a 503 from one server is retried on another for GET; a POST gets the 503 unless it
// carries an `Idempotency-Key` and the back end allows that.
#[test]
fn retried_status_goes_elsewhere_for_idempotent_requests() {
    let (a, b) = (Server::start("a"), Server::start("b"));
    a.answer(503);
    let extra = ", outlier = { consecutive_failures = 1000 }, retry = { idempotency_key = true }";
    let gw = Gateway::start(&config(&[(a.addr, 1), (b.addr, 1)], extra));
    let gets = load(gw.addr(), "/api/x", "", 1, 10);
    assert!(gets.iter().all(|(s, n)| *s == 200 && n == "b"), "{gets:?}");
    assert!(a.hits() > 0);
    let post = |key: &str| {
        let mut c = Client::connect(gw.addr());
        (0..4)
            .map(|_| {
                c.roundtrip(format!(
                    "POST /api/x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n{key}\r\n"
                ))
                .status
            })
            .collect::<Vec<_>>()
    };
    assert!(post("").contains(&503));
    assert!(post("Idempotency-Key: k1\r\n").iter().all(|s| *s == 200));
}

// Rule: with every server answering 503, each request is answered 503 and the servers see
// at most the requests plus the budget's 20% (and its saved tokens), never attempts × requests.
#[test]
fn exhausted_budget_answers_failures_without_multiplying_them() {
    let (a, b) = (Server::start("a"), Server::start("b"));
    a.answer(503);
    b.answer(503);
    let extra = ", outlier = { consecutive_failures = 100000 }, retry = { attempts = 2, budget_percent = 20 }";
    let gw = Gateway::start(&config(&[(a.addr, 1), (b.addr, 1)], extra));
    let results = load(gw.addr(), "/api/x", "", 2, 150);
    assert!(results.iter().all(|(s, _)| *s == 503));
    let sent = a.hits() + b.hits();
    assert!(
        (300..=300 + 60 + 10).contains(&sent),
        "{sent} tries for 300 requests"
    );
    assert!(
        metric_sum(
            &gw.metrics(),
            "portcullis_server_retry_budget_exhausted_total"
        ) > 0.0
    );
}
