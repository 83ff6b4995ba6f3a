//! Back ends over several servers: weighted round robin shares requests by
//! weight, least-request avoids a busy server, consistent hashing keeps a
//! key on one server and moves only the removed server's keys, and a config
//! naming both `url` and `servers` is refused.

mod common;
#[path = "servers_support/mod.rs"]
mod servers_support;

use common::*;
use servers_support::*;
use std::collections::HashMap;

/// Asserts that `count` of `total` is within 5% (of the total) of `share`.
fn within_five_percent(count: usize, total: usize, share: f64, what: &str) {
    let got = count as f64 / total as f64;
    assert!(
        (got - share).abs() <= 0.05,
        "{what}: {got:.3} of requests, expected {share:.3}"
    );
}

// Rule: under steady load, two servers weighted 1 and 3 get 1/4 and 3/4 of the requests.
#[test]
fn two_servers_share_by_weight() {
    let (a, b) = (Server::start("a"), Server::start("b"));
    let gw = Gateway::start_with_args(
        &config(&[(a.addr, 1), (b.addr, 3)], ""),
        &["--workers", "2"],
    );
    let results = load(gw.addr(), "/api/x", "", 4, 100);
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    within_five_percent(served_by(&results, "a"), results.len(), 0.25, "a");
    within_five_percent(served_by(&results, "b"), results.len(), 0.75, "b");
}

// Rule: under steady load, three equal servers each get a third of the requests.
#[test]
fn three_servers_share_equally() {
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list: Vec<_> = servers.iter().map(|s| (s.addr, 1)).collect();
    let gw = Gateway::start_with_args(&config(&list, ""), &["--workers", "2"]);
    let results = load(gw.addr(), "/api/x", "", 3, 100);
    for server in &servers {
        within_five_percent(
            served_by(&results, &server.name),
            results.len(),
            1.0 / 3.0,
            &server.name,
        );
    }
}

// Rule: least_request sends nothing to a server that holds a request while another is idle.
#[test]
fn least_request_avoids_the_busy_server() {
    let gate = Gate::new();
    let gated = gate.clone();
    let slow = RecordingUpstream::start(move |_| Reply::wait_for(&gated).then_ok("slow"));
    let fast = Server::start("fast");
    let gw = Gateway::start(&config(
        &[(slow.addr(), 1), (fast.addr, 1)],
        ", balance = \"least_request\"",
    ));
    // Requests on their own connections until one is held by the slow server.
    let mut held = Vec::new();
    while slow.requests().is_empty() {
        let mut c = Client::connect(gw.addr());
        c.send(get_req("/api/x"));
        held.push(c);
        assert!(eventually(
            || !slow.requests().is_empty() || fast.hits() >= held.len()
        ));
        assert!(held.len() < 10, "the slow server never got a request");
    }
    let results = load(gw.addr(), "/api/x", "", 1, 20);
    assert_eq!(served_by(&results, "fast"), 20, "{results:?}");
    gate.open();
}

/// Which server answered each key (`X-User: k`), asserting one server per key.
fn owners(gw: &Gateway, keys: usize) -> HashMap<usize, String> {
    let mut owner = HashMap::new();
    let mut c = Client::connect(gw.addr());
    for round in 0..2 {
        for key in 0..keys {
            let r = c.roundtrip(format!(
                "GET /api/x HTTP/1.1\r\nHost: gw.test\r\nX-User: user-{key}\r\n\r\n"
            ));
            let server = r.header("x-server").unwrap().to_string();
            if round == 0 {
                owner.insert(key, server);
            } else {
                assert_eq!(owner[&key], server, "key {key} moved without a change");
            }
        }
    }
    owner
}

// Rule: consistent hashing on a header keeps each key on one server; removing one of
// three servers moves only the keys it held (about a third), the others stay.
#[test]
fn consistent_hashing_moves_only_the_removed_servers_keys() {
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list: Vec<_> = servers.iter().map(|s| (s.addr, 1)).collect();
    let extra = ", balance = \"consistent_hash\", hash_key = \"header:X-User\"";
    let gw = Gateway::start_with_args(&config(&list, extra), &["--workers", "2"]);
    let before = owners(&gw, 300);
    for server in &servers {
        let held = before.values().filter(|s| **s == server.name).count();
        assert!(
            (50..=150).contains(&held),
            "{} holds {held} of 300 keys",
            server.name
        );
    }
    reload(&gw, &config(&list[..2], extra));
    let after = owners(&gw, 300);
    let moved = (0..300).filter(|k| before[k] != after[k]).count();
    let held_by_c = before.values().filter(|s| *s == "c").count();
    assert_eq!(moved, held_by_c, "only c's keys move");
    assert!(after.values().all(|s| s != "c"));
}

// Rule: a back end naming both `url` and `servers` is refused with the key named.
#[test]
fn url_and_servers_together_are_refused() {
    let text = config(
        &[("127.0.0.1:9".parse().unwrap(), 1)],
        ", url = \"http://127.0.0.1:9/x\"",
    );
    let (ok, output) = check_config(&text);
    assert!(!ok && output.contains("servers"), "{output}");
}

// Rule: a server named by host name with `resolve_interval` is resolved again on that
// interval (off the request path, counted in the metrics) and keeps answering.
#[test]
fn host_names_are_resolved_again_on_their_interval() {
    let a = Server::start("a");
    let text = config(&[(a.addr, 1)], ", resolve_interval = 0.05").replace(
        &format!("http://{}/x", a.addr),
        &format!("http://localhost:{}/x", a.addr.port()),
    );
    let gw = Gateway::start(&text);
    assert_eq!(get(gw.addr(), "/api/x").status, 200);
    gw.wait_metric("portcullis_server_resolutions_total", 3.0);
    let results = load(gw.addr(), "/api/x", "", 2, 10);
    assert!(
        results.iter().all(|(s, n)| *s == 200 && n == "a"),
        "{results:?}"
    );
}
