//! Zero-downtime takeover: 20 successive `run --takeover` under constant keep-alive and
//! new-connection load refuse no connection, reset none and fail no request.
//!
//! What "zero failed requests" means here:
//! - every connect succeeds (no ECONNREFUSED): the listening sockets never close;
//! - no connection is reset (no ECONNRESET, on write or read) and no response is cut
//!   short: a request that got its first response byte gets all of it, and a 200;
//! - a request sent on a **fresh** connection is always answered;
//! - a request sent on a **reused keep-alive** connection that the server closed cleanly
//!   (FIN, no response byte) is retried once on a fresh connection, as HTTP clients do
//!   for idempotent requests (RFC 9110 §9.2.2). Such retries are counted apart and
//!   allowed; the gateway answers `Connection: close` to requests it reads while
//!   draining, so they only happen when a request crosses the close on the wire.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Successive takeovers.
const TAKEOVERS: usize = 20;
/// Client threads reusing one keep-alive connection.
const KEEP_ALIVE_CLIENTS: usize = 2;
/// Client threads opening a new connection per request.
const NEW_CONNECTION_CLIENTS: usize = 2;

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[timeouts]
drain = 5

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/v"
methods = ["GET"]
backend = {{ type = "stock", status = 200, body = "v" }}

[[deployments.routes]]
path = "/up"
methods = ["GET"]
backend = {{ type = "http", url = "http://{upstream}/up", connect_timeout = 5, read_timeout = 5, send_timeout = 5 }}
"#
    )
}

/// Everything the clients saw.
#[derive(Default)]
struct Tally {
    served: AtomicUsize,
    retried: AtomicUsize,
    refused: AtomicUsize,
    reset: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }
}

/// How one exchange ended.
enum Exchange {
    /// A complete 200 response; true when the server said `Connection: close`.
    Ok { close: bool },
    /// The server closed cleanly before sending any response byte.
    ClosedBeforeResponse,
    /// Anything else: a failure, with what happened.
    Failed { reset: bool, what: String },
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

/// Sends `request` on `stream` and reads one response (Content-Length framed).
fn exchange(stream: &mut TcpStream, request: &[u8]) -> Exchange {
    if let Err(e) = stream.write_all(request) {
        return if e.kind() == ErrorKind::BrokenPipe {
            Exchange::ClosedBeforeResponse
        } else {
            Exchange::Failed {
                reset: is_reset(&e),
                what: format!("write: {e}"),
            }
        };
    }
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + length {
                if !head.starts_with("http/1.1 200") {
                    return Exchange::Failed {
                        reset: false,
                        what: format!("status line {:?}", head.lines().next()),
                    };
                }
                return Exchange::Ok {
                    close: head.contains("connection: close"),
                };
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Exchange::ClosedBeforeResponse,
            Ok(0) => {
                return Exchange::Failed {
                    reset: false,
                    what: format!("closed mid-response after {} bytes", buf.len()),
                }
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Exchange::Failed {
                    reset: is_reset(&e),
                    what: format!("read after {} bytes: {e}", buf.len()),
                }
            }
        }
    }
}

fn connect(addr: SocketAddr, tally: &Tally) -> Option<TcpStream> {
    match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
        Ok(stream) => {
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
            stream.set_nodelay(true).unwrap();
            Some(stream)
        }
        Err(e) => {
            if e.kind() == ErrorKind::ConnectionRefused {
                tally.refused.fetch_add(1, Ordering::SeqCst);
            }
            tally.fail(format!("connect: {e}"));
            None
        }
    }
}

fn record_failure(tally: &Tally, reset: bool, what: String) {
    if reset {
        tally.reset.fetch_add(1, Ordering::SeqCst);
    }
    tally.fail(what);
}

/// One keep-alive connection, reused until the server says `Connection: close`.
fn keep_alive_client(id: usize, addr: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let mut stream: Option<TcpStream> = None;
    let mut reused = false;
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let path = if n.is_multiple_of(2) {
            "/api/v"
        } else {
            "/api/up"
        };
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n\r\n");
        n += 1;
        if stream.is_none() {
            stream = connect(addr, tally);
            reused = false;
            if stream.is_none() {
                return;
            }
        }
        let Some(s) = stream.as_mut() else { return };
        match exchange(s, request.as_bytes()) {
            Exchange::Ok { close } => {
                tally.served.fetch_add(1, Ordering::SeqCst);
                if close {
                    stream = None;
                } else {
                    reused = true;
                }
            }
            Exchange::ClosedBeforeResponse if reused => {
                // Allowed once: retry the idempotent request on a fresh connection.
                tally.retried.fetch_add(1, Ordering::SeqCst);
                let Some(mut fresh) = connect(addr, tally) else {
                    return;
                };
                match exchange(&mut fresh, request.as_bytes()) {
                    Exchange::Ok { close } => {
                        tally.served.fetch_add(1, Ordering::SeqCst);
                        reused = !close;
                        stream = (!close).then_some(fresh);
                    }
                    Exchange::ClosedBeforeResponse => {
                        tally.fail(format!(
                            "keep-alive client {id}: retry on a fresh connection closed unanswered"
                        ));
                        return;
                    }
                    Exchange::Failed { reset, what } => {
                        record_failure(
                            tally,
                            reset,
                            format!("keep-alive client {id} (retry): {what}"),
                        );
                        return;
                    }
                }
            }
            Exchange::ClosedBeforeResponse => {
                tally.fail(format!(
                    "keep-alive client {id}: fresh connection closed unanswered"
                ));
                return;
            }
            Exchange::Failed { reset, what } => {
                record_failure(tally, reset, format!("keep-alive client {id}: {what}"));
                return;
            }
        }
    }
}

/// A new connection per request (`Connection: close`).
fn new_connection_client(id: usize, addr: SocketAddr, stop: &AtomicBool, tally: &Tally) {
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let path = if n.is_multiple_of(2) {
            "/api/up"
        } else {
            "/api/v"
        };
        n += 1;
        let request = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
        let Some(mut stream) = connect(addr, tally) else {
            return;
        };
        match exchange(&mut stream, request.as_bytes()) {
            Exchange::Ok { .. } => {
                tally.served.fetch_add(1, Ordering::SeqCst);
            }
            Exchange::ClosedBeforeResponse => {
                tally.fail(format!("new-connection client {id}: closed unanswered"));
                return;
            }
            Exchange::Failed { reset, what } => {
                record_failure(tally, reset, format!("new-connection client {id}: {what}"));
                return;
            }
        }
    }
}

fn start(config: &str, control: &Path, takeover: bool) -> Gateway {
    let control = control.to_str().unwrap();
    let mut args = vec!["--control-socket", control, "--workers", "2", "--no-watch"];
    if takeover {
        args.push("--takeover");
    }
    let gateway = Gateway::start_with_args(config, &args);
    // `listening` comes before the workers serve; the control socket after.
    assert!(
        eventually(|| gateway.log_text().contains("control socket ready")),
        "the gateway did not open its control socket:\n{}",
        gateway.log_text()
    );
    gateway
}

// Rule: 20 successive takeovers under keep-alive and new-connection load refuse no
// connection, reset none, and fail no request (clean keep-alive closes are retried).
#[test]
fn twenty_takeovers_under_load_lose_nothing() {
    let upstream = RecordingUpstream::ok();
    let config = config(upstream.addr());
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let mut current = start(&config, &control, false);
    let addr = current.addr();
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut clients = Vec::new();
    for id in 0..KEEP_ALIVE_CLIENTS {
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.push(thread::spawn(move || {
            keep_alive_client(id, addr, &stop, &tally)
        }));
    }
    for id in 0..NEW_CONNECTION_CLIENTS {
        let (stop, tally) = (stop.clone(), tally.clone());
        clients.push(thread::spawn(move || {
            new_connection_client(id, addr, &stop, &tally)
        }));
    }
    // The load is on before the first takeover.
    assert!(
        eventually(|| tally.served.load(Ordering::SeqCst) > 20),
        "no requests served before the first takeover"
    );

    let mut pids = vec![current.pid()];
    for round in 1..=TAKEOVERS {
        if !tally.failures.lock().unwrap().is_empty() {
            break;
        }
        let before = tally.served.load(Ordering::SeqCst);
        let next = start(&config, &control, true);
        assert_eq!(
            next.addr(),
            addr,
            "takeover {round}: the successor listens elsewhere"
        );
        let status = current
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("takeover {round}: the old process still runs after 10 s"));
        assert_eq!(
            status.code(),
            Some(0),
            "takeover {round}: old process exit status"
        );
        // The log reader may still be catching up with the exited process.
        assert!(
            eventually(|| current.log_text().contains("handed over: drained")),
            "takeover {round}: the old process did not report its drain:\n{}",
            current.log_text()
        );
        pids.push(next.pid());
        current = next;
        // Let some load land on the new process before the next takeover.
        assert!(
            eventually(|| tally.served.load(Ordering::SeqCst) > before + 20),
            "takeover {round}: no requests served afterwards"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("client thread panicked");
    }

    let failures = tally.failures.lock().unwrap().clone();
    let served = tally.served.load(Ordering::SeqCst);
    let retried = tally.retried.load(Ordering::SeqCst);
    let refused = tally.refused.load(Ordering::SeqCst);
    let reset = tally.reset.load(Ordering::SeqCst);
    eprintln!(
        "{} takeovers in {:?}: {served} requests served, {retried} keep-alive retries, {refused} refused, {reset} reset",
        pids.len() - 1,
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "failed requests:\n{}",
        failures.join("\n")
    );
    assert_eq!((refused, reset), (0, 0), "refused and reset connections");
    assert_eq!(pids.len(), TAKEOVERS + 1, "takeovers done");
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(
        pids.len(),
        TAKEOVERS + 1,
        "every takeover started a new process"
    );
    assert!(
        eventually(|| current.log_text().contains("takeover complete")),
        "the last successor did not hear the end of the drain:\n{}",
        current.log_text()
    );
}

// Rule: SIGUSR2 starts the same binary with --takeover; it takes over (the old process
// drains and exits 0) and serves on the same address.
#[test]
fn sigusr2_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let mut old = start(
        "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = { type = \"stock\", status = 200 }\n",
        &control,
        false,
    );
    let addr = old.addr();
    let status = std::process::Command::new("kill")
        .args(["-USR2", &old.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = old
        .wait_exit(Duration::from_secs(10))
        .expect("the old process still runs 10 s after SIGUSR2");
    assert_eq!(exit.code(), Some(0));
    // The successor writes to the same stderr; its pid is in the old process's log.
    let log = old.log_text();
    let successor: u32 = log
        .lines()
        .find(|l| l.contains("upgrade: started a successor"))
        .and_then(|l| l.split("successor_pid=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no successor pid in the log:\n{log}"));
    let served = get(addr, "/hello").status;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &successor.to_string()])
        .status();
    let gone = eventually(|| {
        !Path::new(&format!("/proc/{successor}")).exists()
            || std::fs::read_to_string(format!("/proc/{successor}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert_eq!(served, 200, "the successor does not serve:\n{log}");
    assert!(gone, "the successor {successor} did not exit on SIGTERM");
}

// Rule: a fixed admin address is handed over too (the successor could not bind it while
// the old process holds it), and the successor answers on it.
#[test]
fn takeover_keeps_a_fixed_admin_address() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let admin = SocketAddr::from(([127, 0, 0, 1], unused_port()));
    let config = format!(
        "admin = \"{admin}\"\n[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n"
    );
    let mut old = start(&config, &control, false);
    assert_eq!(get(admin, "/healthz").status, 200);
    let new = start(&config, &control, true);
    let status = old
        .wait_exit(Duration::from_secs(10))
        .expect("old still running");
    assert_eq!(status.code(), Some(0));
    assert_eq!(new.admin_addr(), admin);
    assert_eq!(get(admin, "/healthz").status, 200);
    assert_eq!(get(admin, "/readyz").status, 200);
}

// Rule: a takeover may change the listeners: kept ones are inherited (same address), new
// ones are bound.
#[test]
fn takeover_adds_a_listener() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let route = "[[deployments]]\nname = \"api\"\nlistener = \"public\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = { type = \"stock\", status = 200 }\n";
    let public = "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n";
    let extra = "[[listeners]]\nname = \"extra\"\naddress = \"127.0.0.1:0\"\n";
    let mut old = start(&format!("{public}{route}"), &control, false);
    let new = start(&format!("{public}{extra}{route}"), &control, true);
    assert_eq!(
        new.listener("public"),
        old.addr(),
        "public was not inherited"
    );
    assert_ne!(new.listener("extra"), old.addr());
    let status = old
        .wait_exit(Duration::from_secs(10))
        .expect("old still running");
    assert_eq!(status.code(), Some(0));
    assert_eq!(get(new.listener("public"), "/hello").status, 200);
}

// Rule: a successor that fails to start (here: its new listener's port is taken) leaves the
// old process serving, and a later takeover still works.
#[test]
fn failed_successor_leaves_the_old_process_serving() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let route = "[[deployments]]\nname = \"api\"\nlistener = \"public\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = { type = \"stock\", status = 200 }\n";
    let public = "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n";
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let blocked = format!(
        "[[listeners]]\nname = \"extra\"\naddress = \"{}\"\n",
        taken.local_addr().unwrap()
    );
    let mut old = start(&format!("{public}{route}"), &control, false);
    let addr = old.addr();
    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["run", "--workers", "2", "--takeover", "--control-socket"])
        .arg(&control)
        .arg("--config")
        .arg({
            let path = dir.path().join("blocked.toml");
            std::fs::write(&path, format!("admin = \"\"\n{public}{blocked}{route}")).unwrap();
            path
        })
        .output()
        .unwrap();
    assert_ne!(failed.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("already in use"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    // The old process's own account of the attempt: it goes on serving (it would have
    // started its drain instead, had it handed over).
    old.wait_log_line("a failed takeover", |l| {
        l.contains("takeover failed; still serving")
    });
    assert_eq!(
        get(addr, "/hello").status,
        200,
        "the old process stopped serving"
    );
    assert!(
        old.wait_exit(Duration::ZERO).is_none(),
        "the old process exited"
    );
    let new = start(&format!("{public}{route}"), &control, true);
    let status = old
        .wait_exit(Duration::from_secs(10))
        .expect("old still running");
    assert_eq!(status.code(), Some(0));
    assert_eq!(get(new.addr(), "/hello").status, 200);
}

// Rule: quota counts carry across takeovers exactly: after five takeovers under
// load, the last process's count equals the requests that got a 200.
#[test]
fn quota_counts_survive_takeovers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let config = format!(
        r#"
state_dir = "{}"

[timeouts]
drain = 5

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
usage_plans = {{ token_locations = ["header:X-Client-Token"] }}

[[deployments.routes]]
path = "/v"
backend = {{ type = "stock", status = 200, body = "v" }}

[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "api"
deployments = ["api"]
quota = {{ limit = 1000000, period = "month" }}

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{{ name = "c", token = "takeover-token-0123456789" }}]
"#,
        dir.path().join("state").display()
    );
    let mut current = start(&config, &control, false);
    let addr = current.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok) = (stop.clone(), ok.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut stream) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let request = b"GET /v HTTP/1.1\r\nHost: gw\r\nX-Client-Token: takeover-token-0123456789\r\nConnection: close\r\n\r\n";
                    if stream.write_all(request).is_err() {
                        continue;
                    }
                    let mut response = Vec::new();
                    let _ = stream.read_to_end(&mut response);
                    if response.starts_with(b"HTTP/1.1 200") {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for round in 1..=5 {
        let before = ok.load(Ordering::SeqCst);
        assert!(eventually(|| ok.load(Ordering::SeqCst) > before + 20));
        let next = start(&config, &control, true);
        assert!(
            current.wait_exit(Duration::from_secs(10)).is_some(),
            "takeover {round}: the old process still runs"
        );
        current = next;
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    assert!(
        eventually(|| current.log_text().contains("takeover complete")),
        "{}",
        current.log_text()
    );
    let served = ok.load(Ordering::SeqCst) as u64;
    let used = || {
        let text = get(current.admin_addr(), "/usage").text();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["subscribers"][0]["entitlements"][0]["quota"]["used"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(used(), served, "quota count after 5 takeovers");
}
