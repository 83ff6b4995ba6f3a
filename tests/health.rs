//! Passive health of a back end's servers: a server answering 5xx is ejected
//! (audit line, metrics, `/config`) and gets no more requests; with every
//! server down the answer is 503 with `Retry-After`; a server stalled with
//! SIGSTOP stops getting requests once detected.

mod common;
#[path = "servers_support/mod.rs"]
mod servers_support;

use common::*;
use servers_support::*;

// Rule: a server answering 500 in a row is ejected: audit line, `/config` and metrics say
// so, and the next requests all go to the others.
#[test]
fn server_answering_5xx_is_ejected() {
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    servers[2].answer(500);
    let list: Vec<_> = servers.iter().map(|s| (s.addr, 1)).collect();
    let extra = ", outlier = { consecutive_failures = 3, base_ejection = 30 }";
    let gw = Gateway::start(&config(&list, extra));
    let c = servers[2].addr.to_string();
    let first = load(gw.addr(), "/api/x", "", 1, 12);
    assert!(first.iter().any(|(s, _)| *s == 500));
    let line = gw.wait_log_line("ejection", |l| {
        l.contains("server ejected") && l.contains(&c)
    });
    assert!(line.contains("portcullis::audit"), "{line}");
    let then = load(gw.addr(), "/api/x", "", 2, 20);
    assert!(then.iter().all(|(s, _)| *s == 200), "{then:?}");
    assert_eq!(served_by(&then, "c"), 0);
    let metrics = gw.metrics();
    assert!(
        metrics.contains(&format!(
            "portcullis_server_ejected{{server=\"http://{c}\"}} 1"
        )),
        "{metrics}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&get(gw.admin_addr(), "/config").text()).unwrap();
    let shown = report["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["server"] == format!("http://{c}"))
        .cloned()
        .unwrap();
    assert_eq!(
        (shown["up"].clone(), shown["ejected"].clone()),
        (false.into(), true.into())
    );
}

// Rule: with every server down, requests get 503 with `Retry-After` (not a connect error).
#[test]
fn all_servers_down_is_503_with_retry_after() {
    let list = [
        (format!("127.0.0.1:{}", unused_port()).parse().unwrap(), 1),
        (format!("127.0.0.1:{}", unused_port()).parse().unwrap(), 1),
    ];
    let extra =
        ", outlier = { consecutive_failures = 1, max_ejected_percent = 100, base_ejection = 30 }";
    let gw = Gateway::start(&config(&list, extra));
    for _ in 0..3 {
        let r = get(gw.addr(), "/api/x");
        assert_eq!(r.status, 503, "{r:?}");
        let after: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=30).contains(&after), "{after}");
    }
    assert!(gw.log_text().contains("server ejected"));
}

// Rule: a server that returns after its ejection gets requests again, and the audit log says so.
#[test]
fn ejected_server_returns_when_it_answers() {
    let (a, b) = (Server::start("a"), Server::start("b"));
    b.answer(503);
    let extra =
        ", outlier = { consecutive_failures = 2, base_ejection = 0.2 }, retry = { attempts = 1 }";
    let gw = Gateway::start(&config(&[(a.addr, 1), (b.addr, 1)], extra));
    let b_addr = b.addr.to_string();
    load(gw.addr(), "/api/x", "", 1, 8);
    gw.wait_log_line("ejection", |l| {
        l.contains("server ejected") && l.contains(&b_addr)
    });
    b.answer(0);
    assert!(
        eventually(|| {
            load(gw.addr(), "/api/x", "", 1, 4);
            gw.log_text().contains("server returned")
        }),
        "{}",
        gw.log_text()
    );
    let results = load(gw.addr(), "/api/x", "", 1, 20);
    assert!(served_by(&results, "b") >= 5, "{results:?}");
}
