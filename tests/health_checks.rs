//! Active health checks run side by side: a server that stalls every check
//! until its timeout delays no other server's ejection or return; and checks
//! of https servers are real: a TLS handshake with the back end's own trust,
//! then the GET, so a failing check path or a certificate the back end would
//! refuse takes the server out of service.

mod common;
#[path = "servers_support/mod.rs"]
mod servers_support;
#[path = "support/tls.rs"]
mod support;

use common::*;
use servers_support::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{toml_path, Pki, TlsUpstream};

/// A server that accepts connections and never answers (they stay open
/// until the test ends); counts them.
struct Silent {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let (count, keep) = (accepted.clone(), held.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                keep.lock().unwrap().push(stream);
                count.fetch_add(1, Ordering::SeqCst);
            }
        });
        Silent {
            addr,
            accepted,
            _held: held,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Whether the log has a line with both `what` and `server`.
fn logged(gw: &Gateway, what: &str, server: SocketAddr) -> bool {
    let server = server.to_string();
    gw.log_text()
        .lines()
        .any(|l| l.contains(what) && l.contains(&server))
}

/// Waits (bounded) for a log line with `what` and `server`.
fn wait_logged(gw: &Gateway, what: &str, server: SocketAddr) {
    assert!(
        eventually_within(Duration::from_secs(20), || logged(gw, what, server)),
        "no `{what}` for {server}:\n{}",
        gw.log_text()
    );
}

// Rule: while one server holds each check for its whole 3 s timeout, another
// server's three failing checks take it out, and three passing ones bring it
// back, each before the stalled server's next check starts (checked one
// after another, each would wait for a stalled check first).
#[test]
fn a_stalled_server_delays_no_other_servers_checks() {
    let silent = Silent::start();
    let c = Server::start("c");
    let extra = ", outlier = { consecutive_failures = 100000 }, retry = { attempts = 1 }, health_check = { path = \"/healthz\", interval = 0.05, timeout = 3, healthy = 3, unhealthy = 3 }";
    let gw = Gateway::start(&config(&[(silent.addr, 1), (c.addr, 1)], extra));
    assert!(eventually(|| silent.accepted() >= 1 && c.hits() >= 1));
    let stalled = silent.accepted();
    c.answer(503);
    wait_logged(&gw, "failed its health checks", c.addr);
    assert!(
        silent.accepted() <= stalled + 1,
        "{} stalled checks began while c failed three",
        silent.accepted() - stalled
    );
    let stalled = silent.accepted();
    c.answer(0);
    wait_logged(&gw, "passed its health checks", c.addr);
    assert!(
        silent.accepted() <= stalled + 1,
        "{} stalled checks began while c passed three",
        silent.accepted() - stalled
    );
}

/// A route `/api/x` to the https server `upstream`, trusting `pki`'s CA,
/// with a health check of `/healthz` every 50 ms.
fn https_config(upstream: SocketAddr, pki: &Pki) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/x"
backend = {{ type = "http", url = "https://{upstream}/x", ca = "{}", outlier = {{ consecutive_failures = 100000 }}, retry = {{ attempts = 1 }}, health_check = {{ path = "/healthz", interval = 0.05, timeout = 1 }} }}
"#,
        toml_path(&pki.ca_path)
    )
}

// Rule: an https server whose check path answers 500 goes out of service
// (requests get 503), and comes back once it answers 200; the checks are
// GETs inside TLS sessions.
#[test]
fn https_check_path_failing_takes_the_server_out_and_back() {
    let pki = Pki::new("health-https");
    let cert = pki.issue("up", "upstream", &["127.0.0.1"]);
    let upstream = TlsUpstream::start(&cert, None);
    let gw = Gateway::start(&https_config(upstream.addr, &pki));
    assert!(eventually(|| upstream
        .heads()
        .iter()
        .any(|h| h.starts_with("GET /healthz HTTP/1.1"))));
    assert_eq!(get(gw.addr(), "/api/x").status, 200);
    upstream.answer(500);
    wait_logged(&gw, "failed its health checks", upstream.addr);
    assert_eq!(get(gw.addr(), "/api/x").status, 503);
    upstream.answer(200);
    wait_logged(&gw, "passed its health checks", upstream.addr);
    assert_eq!(get(gw.addr(), "/api/x").status, 200);
}

// Rule: an https server whose certificate the back end does not trust fails
// its checks (the handshake fails; no request reaches it) and is out of
// service.
#[test]
fn https_server_with_an_untrusted_certificate_fails_its_checks() {
    let trusted = Pki::new("health-trusted");
    let other = Pki::new("health-other");
    let cert = other.issue("up", "upstream", &["127.0.0.1"]);
    let upstream = TlsUpstream::start(&cert, None);
    let gw = Gateway::start(&https_config(upstream.addr, &trusted));
    wait_logged(&gw, "failed its health checks", upstream.addr);
    assert!(upstream.connections.load(Ordering::SeqCst) >= 2);
    assert_eq!(upstream.heads(), Vec::<String>::new());
    assert_eq!(get(gw.addr(), "/api/x").status, 503);
}
