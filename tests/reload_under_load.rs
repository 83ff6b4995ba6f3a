//! Hot reload under load: 100 config rewrites never fail a request on live keep-alive traffic.
//!
//! Writes come in bursts (shorter gaps than the gateway's 150 ms debounce, so most are
//! folded into a later reload); after every fifth write the test waits for that write
//! to land (a rejected reload counted, or the new version served) and for the clients
//! to see it, instead of pausing for a fixed time and hoping it landed.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Client threads, each with its own keep-alive connection.
const CLIENTS: usize = 3;

/// Config rewrites, every tenth one broken.
const WRITES: usize = 100;

/// Gap between writes inside a burst: shorter than the 150 ms debounce, so most writes
/// are folded into a later reload.
const BURST_GAP: Duration = Duration::from_millis(35);

/// What the clients have seen so far, live.
#[derive(Default)]
struct Seen {
    a: AtomicUsize,
    b: AtomicUsize,
}

impl Seen {
    fn of(&self, version: char) -> &AtomicUsize {
        if version == 'A' {
            &self.a
        } else {
            &self.b
        }
    }
}

/// Polls `done` every 10 ms until it holds (true), or until `stop` is set by a failed
/// client (false, so the failure gets reported); panics after [`EVENT_TIMEOUT`].
fn wait_unless_stopped(stop: &AtomicBool, what: &str, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        if done() {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "waited {EVENT_TIMEOUT:?} for {what}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Version A or B of the config: `/api/v` answers the version's name, `/api/up` is
/// proxied to `upstream`; B also has `/api/extra`.
fn config(version: char, upstream: SocketAddr) -> String {
    let mut text = format!(
        r#"
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
backend = {{ type = "stock", status = 200, body = "{version}" }}

[[deployments.routes]]
path = "/up"
methods = ["GET"]
backend = {{ type = "http", url = "http://{upstream}/up", connect_timeout = 5, read_timeout = 5, send_timeout = 5 }}
"#
    );
    if version == 'B' {
        text.push_str(
            r#"
[[deployments.routes]]
path = "/extra"
backend = { type = "stock", status = 200, body = "extra" }
"#,
        );
    }
    text
}

/// A config the gateway must reject: alternately an unknown key and a TOML syntax error.
fn broken(n: usize, upstream: SocketAddr) -> String {
    if n.is_multiple_of(20) {
        format!(
            "{}\n[[deployments.routes]\npath = \"/x\"\n",
            config('B', upstream)
        )
    } else {
        format!("no_such_key = 1\n{}", config('B', upstream))
    }
}

/// Replaces the file the way editors save: write a temp file in the same dir, rename it over.
fn write_then_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).expect("write temp config");
    std::fs::rename(&tmp, path).expect("rename config");
}

/// What one client thread saw.
#[derive(Default)]
struct Tally {
    served: usize,
    a: usize,
    b: usize,
    proxied: usize,
}

/// Sends alternating `/api/v` and `/api/up` on one keep-alive connection until `stop`;
/// returns the tally, or a description of the first failed request.
fn client_loop(
    id: usize,
    addr: SocketAddr,
    stop: &AtomicBool,
    seen: &Seen,
) -> Result<Tally, String> {
    let started = Instant::now();
    let mut client = Client::connect(addr);
    let mut tally = Tally::default();
    let mut n = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let path = if n.is_multiple_of(2) {
            "/api/v"
        } else {
            "/api/up"
        };
        let fail = |what: String| {
            format!(
                "client {id}, request #{n} ({path}) at {:?}: {what}",
                started.elapsed()
            )
        };
        client
            .try_send(get_req(path))
            .map_err(|e| fail(format!("write failed: {e}")))?;
        let resp = client
            .try_read_response(false)
            .map_err(|e| fail(format!("no response: {e:?}")))?;
        if resp.status != 200 {
            return Err(fail(format!("status {}: {:?}", resp.status, resp.text())));
        }
        match (path, resp.text().as_str()) {
            ("/api/v", "A") => {
                tally.a += 1;
                seen.a.fetch_add(1, Ordering::SeqCst);
            }
            ("/api/v", "B") => {
                tally.b += 1;
                seen.b.fetch_add(1, Ordering::SeqCst);
            }
            ("/api/up", "ok") => tally.proxied += 1,
            (_, body) => return Err(fail(format!("unexpected body {body:?}"))),
        }
        tally.served += 1;
        n += 1;
    }
    Ok(tally)
}

// Rule: 100 rewrites (A/B, every 10th broken) under load fail no request; answers match A or B.
#[test]
fn reloads_under_keepalive_load_lose_no_request() {
    let upstream = RecordingUpstream::ok();
    let up = upstream.addr();
    let gw = Gateway::start(&config('A', up));
    let addr = gw.addr();
    // Keep whatever the harness put before our text (e.g. its admin address), so that
    // every rewrite differs from A or B only where we mean it to.
    let written = std::fs::read_to_string(gw.config_path()).expect("read config");
    let prelude = written
        .strip_suffix(&config('A', up))
        .unwrap_or_default()
        .to_string();
    let rewrite = |text: String| write_then_rename(gw.config_path(), &format!("{prelude}{text}"));
    let started = Instant::now();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (stop, seen) = (stop.clone(), seen.clone());
            thread::spawn(move || {
                let result = client_loop(id, addr, &stop, &seen);
                // Any failure stops the other clients and the writer early.
                if result.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                result
            })
        })
        .collect();

    let rejected_reloads = || gw.metric("portcullis_config_reloads_total{result=\"rejected\"");
    // The clients are under way before the first write.
    wait_unless_stopped(&stop, "the clients to see version A", || {
        seen.a.load(Ordering::SeqCst) >= CLIENTS
    });
    let mut valid = 0usize;
    let mut landed = 0usize;
    for i in 1..=WRITES {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let landing = i.is_multiple_of(5);
        if i.is_multiple_of(10) {
            // Every tenth write is broken, and lands: the reload is rejected.
            let before = rejected_reloads();
            rewrite(broken(i, up));
            wait_unless_stopped(&stop, &format!("write {i} to be rejected"), || {
                rejected_reloads() > before
            });
        } else {
            // Valid writes alternate B, A, B, ...; the ones that land (every fifth
            // write) alternate too, and the last to land is B, so the final A is a change.
            let version = if valid.is_multiple_of(2) { 'B' } else { 'A' };
            rewrite(config(version, up));
            valid += 1;
            if landing {
                // The write is applied once a new request gets its version; then the
                // clients, on their long-lived connections, must see it too.
                let applied =
                    wait_unless_stopped(&stop, &format!("write {i} ({version}) to apply"), || {
                        get(addr, "/api/v").text() == version.to_string()
                    });
                let before = seen.of(version).load(Ordering::SeqCst);
                if applied
                    && wait_unless_stopped(&stop, &format!("the clients to see {version}"), || {
                        seen.of(version).load(Ordering::SeqCst) > before
                    })
                {
                    landed += 1;
                }
            }
        }
        if !landing {
            thread::sleep(BURST_GAP);
        }
    }
    rewrite(config('A', up));
    stop.store(true, Ordering::SeqCst);

    let mut failures = Vec::new();
    let mut total = Tally::default();
    for (id, handle) in clients.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(t)) => {
                total.served += t.served;
                total.a += t.a;
                total.b += t.b;
                total.proxied += t.proxied;
            }
            Ok(Err(e)) => failures.push(e),
            Err(panic) => failures.push(format!(
                "client {id} panicked: {:?}",
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "failed requests:\n{}",
        failures.join("\n")
    );

    assert!(
        eventually(|| get(addr, "/api/v").text() == "A"),
        "the final write (A) was not applied within 5 s"
    );
    assert_eq!(get(addr, "/api/extra").status, 404, "B's route outlived A");

    let log = gw.log_text();
    let applied = log.matches("result=\"applied\"").count();
    let rejected = log.matches("result=\"rejected\"").count();
    eprintln!(
        "served {} requests ({} A, {} B, {} proxied); reloads: {applied} applied, {rejected} rejected; {:?}",
        total.served,
        total.a,
        total.b,
        total.proxied,
        started.elapsed()
    );
    assert!(applied >= 1, "no reload was applied");
    assert!(rejected >= 1, "no broken write was rejected");
    assert!(
        landed == WRITES / 10,
        "only {landed} valid writes were applied and seen by the clients"
    );
    assert!(
        total.a > 0 && total.b > 0,
        "clients never saw both versions: {} A, {} B",
        total.a,
        total.b
    );
}
