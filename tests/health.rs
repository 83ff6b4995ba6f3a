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

// Rule: beyond `max_requests` in flight, a request gets 503 with `Retry-After` at once.
#[test]
fn requests_beyond_the_cap_get_503_at_once() {
    let gate = Gate::new();
    let gated = gate.clone();
    let held = RecordingUpstream::start(move |_| Reply::wait_for(&gated).then_ok("late"));
    let other = Server::start("b");
    let gw = Gateway::start(&config(
        &[(held.addr(), 1), (other.addr, 1)],
        ", max_requests = 1, balance = \"least_request\"",
    ));
    let mut first = Client::connect(gw.addr());
    first.send(get_req("/api/x"));
    // The first request is in flight (at the held server, or answered by the other).
    while held.requests().is_empty() {
        assert_eq!(first.read_response().status, 200);
        first.send(get_req("/api/x"));
        assert!(eventually(
            || !held.requests().is_empty() || first.has_pending_input()
        ));
    }
    let r = get(gw.addr(), "/api/x");
    assert_eq!(
        (r.status, r.header("retry-after")),
        (503, Some("1")),
        "{r:?}"
    );
    gate.open();
    assert_eq!(first.read_response().status, 200);
    assert_eq!(get(gw.addr(), "/api/x").status, 200);
}

/// A Python HTTP server in its own process (so that it can be stopped with
/// SIGSTOP), answering 200 with `name`; ends with the test.
struct Process {
    child: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Process {
    fn start(name: &str) -> Process {
        let port = unused_port();
        let script = format!(
            r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "{len}")
        self.send_header("X-Server", "{name}")
        self.end_headers()
        self.wfile.write(b"{name}")
    def log_message(self, *a): pass
class S(http.server.ThreadingHTTPServer):
    def handle_error(self, *a): pass
S(("127.0.0.1", {port}), H).serve_forever()
"#,
            len = name.len()
        );
        let child = std::process::Command::new("python3")
            .args(["-c", &script])
            .spawn()
            .expect("python3");
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(eventually(|| std::net::TcpStream::connect(addr).is_ok()));
        Process { child, addr }
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Rule: a server stalled with SIGSTOP stops getting requests once outlier detection sees
// its timeouts; the others answer every request from then on.
#[test]
fn stalled_server_stops_getting_requests() {
    let (a, b) = (Server::start("a"), Process::start("stalled"));
    let extra = ", read_timeout = 0.3, outlier = { consecutive_failures = 2, base_ejection = 30 }";
    let text = config(&[(a.addr, 1), (b.addr, 1)], "")
        .replace(", read_timeout = 10 }", &format!("{extra} }}"));
    let gw = Gateway::start(&text);
    assert!(served_by(&load(gw.addr(), "/api/x", "", 1, 10), "stalled") > 0);
    b.signal("-STOP");
    let b_addr = b.addr.to_string();
    let ejected = || {
        gw.log_text()
            .lines()
            .any(|l| l.contains("server ejected") && l.contains(&b_addr))
    };
    assert!(
        eventually_within(std::time::Duration::from_secs(20), || {
            load(gw.addr(), "/api/x", "", 2, 2);
            ejected()
        }),
        "{}",
        gw.log_text()
    );
    let after = load(gw.addr(), "/api/x", "", 2, 20);
    assert!(
        after.iter().all(|(s, n)| *s == 200 && n == "a"),
        "{after:?}"
    );
}

/// Whether the log has a line with both `what` and `server`.
fn logged(gw: &Gateway, what: &str, server: std::net::SocketAddr) -> bool {
    let server = server.to_string();
    gw.log_text()
        .lines()
        .any(|l| l.contains(what) && l.contains(&server))
}

// Rule: a server failing its active health checks stops getting requests, and gets them
// again once its checks pass; both are audit lines.
#[test]
fn failing_health_checks_take_a_server_out_and_back() {
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n)).collect();
    let list: Vec<_> = servers.iter().map(|s| (s.addr, 1)).collect();
    let extra = ", outlier = { consecutive_failures = 100000 }, retry = { attempts = 1 }, health_check = { path = \"/healthz\", interval = 0.05, timeout = 1 }";
    let gw = Gateway::start(&config(&list, extra));
    let c = &servers[2];
    c.answer(503);
    assert!(eventually(|| logged(
        &gw,
        "failed its health checks",
        c.addr
    )));
    let out = load(gw.addr(), "/api/x", "", 2, 20);
    assert!(out.iter().all(|(s, _)| *s == 200), "{out:?}");
    c.answer(0);
    assert!(eventually(|| logged(
        &gw,
        "passed its health checks",
        c.addr
    )));
    let back = load(gw.addr(), "/api/x", "", 1, 30);
    assert_eq!(served_by(&back, "c"), 10, "{back:?}");
}

// Rule: a server removed by a reload gets no more health checks (at most one that was
// under way), while the servers kept go on being checked.
#[test]
fn removed_server_is_no_longer_checked() {
    let (a, b) = (Server::start("a"), Server::start("b"));
    let extra = ", health_check = { interval = 0.05 }";
    let gw = Gateway::start(&config(&[(a.addr, 1), (b.addr, 1)], extra));
    assert!(eventually(|| b.hits() >= 2));
    reload(&gw, &config(&[(a.addr, 1)], extra));
    let (a_then, b_then) = (a.hits(), b.hits());
    assert!(eventually(|| a.hits() >= a_then + 5));
    assert!(
        b.hits() <= b_then + 1,
        "{} checks after removal",
        b.hits() - b_then
    );
}

// Rule: reloads adding and removing servers during a load of GETs fail no request, even
// when a removed server is stopped right after its reload.
#[test]
fn reloads_changing_servers_under_load_fail_no_request() {
    let servers: Vec<Server> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| Server::start(n))
        .collect();
    let set = |names: &[usize]| -> Vec<_> { names.iter().map(|&i| (servers[i].addr, 1)).collect() };
    let extra = ", retry = { attempts = 3 }";
    let gw = Gateway::start_with_args(&config(&set(&[0, 1]), extra), &["--workers", "2"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = gw.addr();
    let loaders: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    results.extend(load(addr, "/api/x", "", 1, 10));
                }
                results
            })
        })
        .collect();
    for (next, removed) in [
        (vec![0, 1, 2], None),
        (vec![1, 2], Some(0)),
        (vec![2, 3], Some(1)),
    ] {
        let before = servers[next[0]].hits();
        reload(&gw, &config(&set(&next), extra));
        if let Some(removed) = removed {
            servers[removed].kill();
        }
        assert!(eventually(|| servers[next[0]].hits() > before + 20));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let results: Vec<_> = loaders
        .into_iter()
        .flat_map(|l| l.join().unwrap())
        .collect();
    let failed: Vec<_> = results.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} failed",
        failed.len(),
        results.len()
    );
    assert!(served_by(&results, "d") > 0);
}
