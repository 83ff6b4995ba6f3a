//! Test harness shared by every integration test: starts a real `portcullis` process on a
//! loopback port, real recording upstream servers, and a raw-bytes HTTP/1.1 client.
//!
//! Everything is bounded: process start waits at most 10 s, every socket read at most 5 s,
//! so a hung gateway fails a test instead of hanging CI. Nothing here knows the gateway's
//! internals; it only speaks bytes on 127.0.0.1.
//!
//! No test waits a fixed time and then assumes something did (or did not) happen: it waits
//! for an event it can observe. "The upstream received nothing (more)" is proven after the
//! gateway has exited ([`RecordingUpstream::settle`]): from then on it can send nothing, and
//! the upstream reads every connection it ever made to the end.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Longest wait for any single socket read or write in the tests.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait for the gateway to log its `listening` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the gateway to exit after SIGTERM in [`Gateway::stop`] (its drain
/// closes idle connections at once; requests in flight get this long to finish).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for an event that must happen (a log line, a counter, a record).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Names the driver every gateway of a test run uses (`epoll`, `io-uring`;
/// unset: the gateway's own choice).
pub const DRIVER_ENV: &str = "PORTCULLIS_TEST_DRIVER";

/// Environment for [`Gateway::start_with_env`] that adds the connection loop's debug
/// lines (why a TLS handshake failed, ...) to the usual info log.
pub const CONN_DEBUG_LOG: (&str, &str) = ("PORTCULLIS_LOG", "info,portcullis::runtime::conn=debug");

// ---------------------------------------------------------------------------------------
// Gateway process
// ---------------------------------------------------------------------------------------

/// A running `portcullis run --config FILE --workers 1` process, stopped on drop
/// (SIGTERM, then SIGKILL after a grace period). Its stderr is collected and printed when
/// the test panics.
pub struct Gateway {
    child: Option<Child>,
    listeners: HashMap<String, SocketAddr>,
    first: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    config_path: PathBuf,
    _dir: tempfile::TempDir,
}

/// Removes ANSI escape sequences (colours) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Value of a `key=value` field in a log line (quotes trimmed), if present.
fn log_field(line: &str, key: &str) -> Option<String> {
    let pat = format!("{key}=");
    let mut search = 0;
    while let Some(pos) = line[search..].find(&pat) {
        let at = search + pos;
        let boundary_ok =
            at == 0 || !line[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if boundary_ok {
            let rest = &line[at + pat.len()..];
            let value: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',' && *c != '}')
                .collect();
            return Some(value.trim_matches('"').to_string());
        }
        search = at + pat.len();
    }
    None
}

impl Gateway {
    /// Writes `config_toml` to a fresh temporary directory, starts the gateway with one
    /// worker and waits (10 s at most) until it logs a `listening ... address=...` line.
    /// Panics with the collected stderr if it exits or stays silent.
    pub fn start(config_toml: &str) -> Gateway {
        Gateway::start_with_args(config_toml, &[])
    }

    /// Like [`Gateway::start`], with extra `run` arguments (`--workers N` replaces the default 1).
    pub fn start_with_args(config_toml: &str, extra_args: &[&str]) -> Gateway {
        Gateway::start_with_env(config_toml, extra_args, &[])
    }

    /// Like [`Gateway::start_with_args`], with extra environment variables
    /// (`--workers` in `extra_args` replaces the default of one worker).
    pub fn start_with_env(
        config_toml: &str,
        extra_args: &[&str],
        envs: &[(&str, &str)],
    ) -> Gateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("gateway.toml");
        // Parallel tests must not share the default admin port.
        let has_admin = config_toml
            .lines()
            .any(|l| l.trim_start().starts_with("admin"));
        let config_toml = if has_admin {
            config_toml.to_string()
        } else {
            format!("admin = \"127.0.0.1:0\"\n{config_toml}")
        };
        std::fs::write(&config_path, &config_toml).expect("write config");

        let workers: &[&str] = if extra_args.contains(&"--workers") {
            &[]
        } else {
            &["--workers", "1"]
        };
        // `PORTCULLIS_TEST_DRIVER=epoll` runs a test binary's gateways on
        // the epoll driver (its own I/O paths, io/socket_handle.rs); .ci/run
        // does so for the HTTP suites.
        let driver = std::env::var(DRIVER_ENV)
            .ok()
            .filter(|_| !extra_args.contains(&"--driver"));
        let driver_args: Vec<&str> = match &driver {
            Some(driver) => vec!["--driver", driver],
            None => Vec::new(),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            .args(workers)
            .args(&driver_args)
            .args(extra_args)
            .envs(envs.iter().copied())
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn portcullis");

        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<(String, SocketAddr)>();

        let stderr = child.stderr.take().expect("stderr");
        let log2 = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let clean = strip_ansi(&line);
                if clean.contains("listening") {
                    if let Some(addr) = log_field(&clean, "address").and_then(|a| a.parse().ok()) {
                        let name = log_field(&clean, "listener").unwrap_or_default();
                        let _ = tx.send((name, addr));
                    }
                }
                log2.lock().unwrap().push(clean);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let log3 = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                log3.lock()
                    .unwrap()
                    .push(format!("[stdout] {}", strip_ansi(&line)));
            }
        });

        let mut gw = Gateway {
            child: Some(child),
            listeners: HashMap::new(),
            first: "0.0.0.0:0".parse().unwrap(),
            log,
            config_path,
            _dir: dir,
        };
        match rx.recv_timeout(START_TIMEOUT) {
            Ok((name, addr)) => {
                gw.first = addr;
                gw.listeners.insert(name, addr);
                // Collect any other listeners that come up right after the first one.
                while let Ok((name, addr)) = rx.recv_timeout(Duration::from_millis(50)) {
                    gw.listeners.insert(name, addr);
                }
            }
            Err(_) => {
                // Let the log reader catch up so the message shows the cause.
                thread::sleep(Duration::from_millis(200));
                let status = gw.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "gateway did not log a `listening ... address=` line within {:?} (exit: {:?})\n--- gateway log ---\n{}",
                    START_TIMEOUT,
                    status,
                    gw.log_text()
                );
            }
        }
        gw
    }

    /// Address of the first listener that came up (the only one in most tests).
    pub fn addr(&self) -> SocketAddr {
        self.first
    }

    /// Address of the listener named `name`.
    pub fn listener(&self, name: &str) -> SocketAddr {
        *self
            .listeners
            .get(name)
            .unwrap_or_else(|| panic!("no listener {name:?}: {:?}", self.listeners))
    }

    /// Address of the admin endpoint, from its log line (waits up to 5 s for it).
    pub fn admin_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find_map(|l| log_field(l, "admin_address").and_then(|a| a.parse().ok()));
            if let Some(addr) = found {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "no admin_address in log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Path of the config file the gateway was started with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Everything the gateway has written to stderr (and stdout, prefixed) so far.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Process id of the gateway.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("gateway already reaped").id()
    }

    /// Sends SIGTERM to the gateway (graceful drain and exit).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the gateway to exit; returns its status, or None if it is
    /// still running.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Opens a raw client connection to the first listener.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Stops the gateway (SIGTERM) and waits for it to exit; panics with its log if it
    /// is still running after [`STOP_TIMEOUT`]. Once it has exited it can send nothing
    /// more to anyone, and every byte it sent is in its peers' hands.
    pub fn stop(mut self) -> ExitStatus {
        if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
            return status;
        }
        self.sigterm();
        match self.wait_exit(STOP_TIMEOUT) {
            Some(status) => status,
            None => panic!(
                "gateway still running {STOP_TIMEOUT:?} after SIGTERM\n--- gateway log ---\n{}",
                self.log_text()
            ),
        }
    }

    /// The admin endpoint's `/metrics` text.
    pub fn metrics(&self) -> String {
        get(self.admin_addr(), "/metrics").text()
    }

    /// Sum of the samples of `/metrics` whose series starts with `series` (a family name,
    /// or a name with the start of its labels, e.g. `portcullis_decisions_total{decision="x"`).
    pub fn metric(&self, series: &str) -> f64 {
        metric_sum(&self.metrics(), series)
    }

    /// Polls `/metrics` every 10 ms until the sum of `series` reaches `at_least`;
    /// panics after [`EVENT_TIMEOUT`] with the last value and the log.
    pub fn wait_metric(&self, series: &str, at_least: f64) {
        self.wait_metric_until(series, &format!("at least {at_least}"), |v| v >= at_least);
    }

    /// Polls `/metrics` every 10 ms until the sum of `series` satisfies `check`
    /// (described by `what`); panics after [`EVENT_TIMEOUT`] with the last value and the log.
    pub fn wait_metric_until(&self, series: &str, what: &str, check: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let value = self.metric(series);
            if check(value) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} stayed at {value}, expected {what}\n--- gateway log ---\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Why the TLS handshake of the client connection from `peer` failed, from the
    /// gateway's debug line about it (waits for it; the gateway must have been started
    /// with [`CONN_DEBUG_LOG`]).
    pub fn handshake_failure(&self, peer: SocketAddr) -> String {
        let peer_field = format!("peer={peer} ");
        let line = self.wait_log_line(&format!("failed handshake from {peer}"), |l| {
            l.contains("TLS handshake failed") && l.contains(&peer_field)
        });
        line.split_once("reason=")
            .map(|(_, reason)| reason.trim().to_string())
            .unwrap_or(line)
    }

    /// Polls the gateway's log every 10 ms until a line satisfies `check`, and returns
    /// it; panics with the log after [`EVENT_TIMEOUT`].
    pub fn wait_log_line(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            let found = self.log.lock().unwrap().iter().find(|l| check(l)).cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} in the log within {EVENT_TIMEOUT:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Sum of the samples in Prometheus text `metrics` whose series starts with `series`.
pub fn metric_sum(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(series)
                .is_some_and(|rest| series.ends_with('"') || rest.starts_with([' ', '{', ',']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let deadline = Instant::now() + Duration::from_secs(3);
                loop {
                    match child.try_wait() {
                        Ok(Some(_)) => break,
                        _ if Instant::now() >= deadline => {
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        _ => thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
        }
        if thread::panicking() {
            thread::sleep(Duration::from_millis(50));
            eprintln!(
                "--- gateway log ---\n{}\n--- end of gateway log ---",
                self.log_text()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configuration helpers
// ---------------------------------------------------------------------------------------

/// The standard test configuration: one listener `public` on port 0, one deployment `api`
/// under `/api`, with these routes (`UP` = the upstream's address):
///
/// | route | methods | back end |
/// |---|---|---|
/// | `/hello` | all | stock 200, `Content-Type: text/plain`, body `hi\n` |
/// | `/teapot` | GET | stock 418, `X-Stock: yes`, body `short and stout` |
/// | `/items/{id}` | GET, POST | `http://UP/v1/items/{id}` |
/// | `/echo` | all | `http://UP/echo` |
/// | `/files/{rest*}` | all | `http://UP/store` (remainder appended) |
/// | `/any/*` | all | `http://UP/anything` (remainder appended) |
/// | `/q` | all | `http://UP/v1/q?fixed=1` |
/// | `/slow` | all | `http://UP/slow`, `read_timeout = 1` |
///
/// `prelude` is inserted at the top (e.g. `[limits]` or `[timeouts]` tables).
pub fn standard_config(upstream: SocketAddr, prelude: &str) -> String {
    let body = r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/hello"
backend = { type = "stock", status = 200, headers = { "Content-Type" = "text/plain" }, body = "hi\n" }

[[deployments.routes]]
path = "/teapot"
methods = ["GET"]
backend = { type = "stock", status = 418, headers = { "X-Stock" = "yes" }, body = "short and stout" }

[[deployments.routes]]
path = "/items/{id}"
methods = ["GET", "POST"]
backend = { type = "http", url = "http://UPSTREAM_ADDR/v1/items/{id}", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }

[[deployments.routes]]
path = "/echo"
backend = { type = "http", url = "http://UPSTREAM_ADDR/echo", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }

[[deployments.routes]]
path = "/files/{rest*}"
backend = { type = "http", url = "http://UPSTREAM_ADDR/store", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }

[[deployments.routes]]
path = "/any/*"
backend = { type = "http", url = "http://UPSTREAM_ADDR/anything", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }

[[deployments.routes]]
path = "/q"
backend = { type = "http", url = "http://UPSTREAM_ADDR/v1/q?fixed=1", connect_timeout = 5, read_timeout = 10, send_timeout = 10 }

[[deployments.routes]]
path = "/slow"
backend = { type = "http", url = "http://UPSTREAM_ADDR/slow", connect_timeout = 5, read_timeout = 1, send_timeout = 10 }
"#;
    format!(
        "{prelude}\n{}",
        body.replace("UPSTREAM_ADDR", &upstream.to_string())
    )
}

/// Starts a gateway with [`standard_config`] in front of `upstream`.
pub fn start_standard(upstream: &RecordingUpstream, prelude: &str) -> Gateway {
    Gateway::start(&standard_config(upstream.addr(), prelude))
}

/// Runs `portcullis check` on `text`, written as `gateway.toml` in `dir`
/// (beside any files the config names); returns (success, stdout + stderr).
pub fn check_config_in(dir: &Path, text: &str) -> (bool, String) {
    let path = dir.join("gateway.toml");
    std::fs::write(&path, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .expect("run portcullis check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`check_config_in`] in a directory of its own.
pub fn check_config(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    check_config_in(dir.path(), text)
}

/// A loopback port that nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------
// Recording upstream
// ---------------------------------------------------------------------------------------

/// One request as received by a [`RecordingUpstream`]: head fields as sent on the wire
/// and the body with its framing decoded.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// Index of the upstream connection it arrived on (0 = first accepted).
    pub conn: usize,
    pub method: String,
    pub target: String,
    pub version: String,
    /// The request line exactly as received (without CRLF).
    pub request_line: String,
    /// Header fields in order, names as received.
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunked framing removed).
    pub body: Vec<u8>,
    /// Whether the body arrived with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// Trailer fields after a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// All values of header `name` (case-insensitive), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether header `name` is present at all.
    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }
}

/// One step of an upstream's scripted reply.
#[derive(Clone, Debug)]
enum Step {
    Send(Vec<u8>),
    Sleep(Duration),
    Wait(Gate),
    Close,
    Hang,
}

/// A latch the test opens. An upstream reply that waits on it ([`Reply::wait_for`])
/// keeps its request in flight for exactly as long as the test needs, however slow the
/// machine, instead of for a fixed time.
#[derive(Clone, Debug, Default)]
pub struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    pub fn new() -> Gate {
        Gate::default()
    }

    /// Lets every reply waiting on this gate go on (now and later).
    pub fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }

    /// Waits until the gate is open; gives up after a minute (a test that failed before
    /// opening it must not leave the upstream's thread behind for ever).
    fn wait(&self) {
        let (open, opened) = &*self.0;
        let guard = open.lock().unwrap();
        let _unused = opened
            .wait_timeout_while(guard, Duration::from_secs(60), |open| !*open)
            .unwrap();
    }
}

/// What a [`RecordingUpstream`] does after receiving a request: a script of raw writes,
/// pauses, and finally keep the connection (default), close it, or hang without answering.
#[derive(Clone, Debug)]
pub struct Reply {
    steps: Vec<Step>,
}

impl Reply {
    /// Sends `bytes` verbatim.
    pub fn raw(bytes: impl AsRef<[u8]>) -> Reply {
        Reply {
            steps: vec![Step::Send(bytes.as_ref().to_vec())],
        }
    }

    /// `HTTP/1.1 200 OK` with `Content-Length` and `body`.
    pub fn ok(body: impl AsRef<[u8]>) -> Reply {
        Reply::status(200, body)
    }

    /// `HTTP/1.1 {code} X` with `Content-Length` and `body`.
    pub fn status(code: u16, body: impl AsRef<[u8]>) -> Reply {
        let body = body.as_ref();
        let mut bytes = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        Reply::raw(bytes)
    }

    /// Waits `d`, then runs the rest of the script.
    pub fn after(d: Duration) -> Reply {
        Reply {
            steps: vec![Step::Sleep(d)],
        }
    }

    /// Waits until `gate` is open, then runs the rest of the script.
    pub fn wait_for(gate: &Gate) -> Reply {
        Reply {
            steps: vec![Step::Wait(gate.clone())],
        }
    }

    /// Never answers; the connection stays open until the gateway closes it.
    pub fn hang() -> Reply {
        Reply {
            steps: vec![Step::Hang],
        }
    }

    /// Closes the connection without answering.
    pub fn close_now() -> Reply {
        Reply {
            steps: vec![Step::Close],
        }
    }

    /// Appends a raw write.
    pub fn then_raw(mut self, bytes: impl AsRef<[u8]>) -> Reply {
        self.steps.push(Step::Send(bytes.as_ref().to_vec()));
        self
    }

    /// Appends a 200 response with `body`.
    pub fn then_ok(self, body: impl AsRef<[u8]>) -> Reply {
        let r = Reply::ok(body);
        let mut s = self;
        s.steps.extend(r.steps);
        s
    }

    /// Appends a wait until `gate` is open.
    pub fn then_wait_for(mut self, gate: &Gate) -> Reply {
        self.steps.push(Step::Wait(gate.clone()));
        self
    }

    /// Appends a pause.
    pub fn then_sleep(mut self, d: Duration) -> Reply {
        self.steps.push(Step::Sleep(d));
        self
    }

    /// Closes the connection after the script so far.
    pub fn then_close(mut self) -> Reply {
        self.steps.push(Step::Close);
        self
    }

    /// Stops answering after the script so far, keeping the connection open.
    pub fn then_hang(mut self) -> Reply {
        self.steps.push(Step::Hang);
        self
    }
}

/// What one accepted upstream connection received.
#[derive(Clone, Debug, Default)]
pub struct ConnRecord {
    /// Every byte received, in order.
    pub raw: Vec<u8>,
    /// Complete requests parsed from `raw`.
    pub requests: Vec<RecordedRequest>,
    /// Set when bytes arrived that could not be parsed as a request.
    pub parse_error: Option<String>,
    /// Replies whose whole script (every write and pause) has run.
    pub replies_done: usize,
    /// The upstream is done with the connection: it read to the end (the gateway closed
    /// it or reset it), or its script closed it. Nothing more is recorded on it.
    pub closed: bool,
}

type Responder = dyn Fn(&RecordedRequest) -> Reply + Send + Sync + 'static;

/// A real HTTP/1.1 server on 127.0.0.1:0 that records every accepted connection, every
/// byte and every complete request, and answers each request with `responder(&request)`.
/// Requests are recorded before the responder runs, so once a client has the gateway's
/// answer, the upstream's record of the request is complete.
pub struct RecordingUpstream {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<ConnRecord>>>,
    all: Arc<Mutex<Vec<RecordedRequest>>>,
    stop: Arc<AtomicBool>,
    /// Local addresses of the test's own marker connections (see [`Self::sync_accepts`]):
    /// the accept loop takes them out of this set instead of recording them.
    markers: Arc<Mutex<HashSet<SocketAddr>>>,
}

impl RecordingUpstream {
    /// Starts an upstream answering each request with `responder(&request)`.
    pub fn start(
        responder: impl Fn(&RecordedRequest) -> Reply + Send + Sync + 'static,
    ) -> RecordingUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<ConnRecord>>> = Arc::new(Mutex::new(Vec::new()));
        let all = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let markers: Arc<Mutex<HashSet<SocketAddr>>> = Arc::default();
        let responder: Arc<Responder> = Arc::new(responder);
        {
            let conns = conns.clone();
            let all = all.clone();
            let stop = stop.clone();
            let markers = markers.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Ok(peer) = stream.peer_addr() {
                        if markers.lock().unwrap().remove(&peer) {
                            continue;
                        }
                    }
                    let index = {
                        let mut c = conns.lock().unwrap();
                        c.push(ConnRecord::default());
                        c.len() - 1
                    };
                    let conns = conns.clone();
                    let all = all.clone();
                    let responder = responder.clone();
                    thread::spawn(move || {
                        serve_upstream_conn(stream, index, conns, all, responder)
                    });
                }
            });
        }
        RecordingUpstream {
            addr,
            conns,
            all,
            stop,
            markers,
        }
    }

    /// An upstream that answers every request with `200` and body `ok`.
    pub fn ok() -> RecordingUpstream {
        RecordingUpstream::start(|_| Reply::ok("ok"))
    }

    /// An upstream that answers every request with `200` and the request target as body.
    pub fn echo_target() -> RecordingUpstream {
        RecordingUpstream::start(|r| Reply::ok(r.target.clone()))
    }

    /// The upstream's address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Number of connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Snapshot of every connection's record.
    pub fn connections(&self) -> Vec<ConnRecord> {
        self.conns.lock().unwrap().clone()
    }

    /// All complete requests received, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.all.lock().unwrap().clone()
    }

    /// The only request received; panics if there were none or several.
    pub fn only_request(&self) -> RecordedRequest {
        let reqs = self.requests();
        assert_eq!(
            reqs.len(),
            1,
            "expected exactly one upstream request, got {}: {:#?}",
            reqs.len(),
            reqs
        );
        reqs.into_iter().next().unwrap()
    }

    /// Every byte received on every connection, concatenated.
    pub fn raw_received(&self) -> Vec<u8> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .flat_map(|c| c.raw.clone())
            .collect()
    }

    /// Waits (at most 5 s) until `n` complete requests were received; returns them.
    pub fn wait_for_requests(&self, n: usize) -> Vec<RecordedRequest> {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let reqs = self.requests();
            if reqs.len() >= n {
                return reqs;
            }
            assert!(
                Instant::now() < deadline,
                "upstream got {} requests, expected {n} within 5 s",
                reqs.len()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most [`EVENT_TIMEOUT`]) until connection `index` has been accepted and
    /// has run `n` replies to their end (every scripted write and pause done).
    pub fn wait_replies_done(&self, index: usize, n: usize) {
        self.wait_conns(&format!("connection {index} to finish {n} replies"), |c| {
            c.get(index).is_some_and(|c| c.replies_done >= n)
        });
    }

    /// Waits (at most [`EVENT_TIMEOUT`]) until connection `index` has been accepted and
    /// the upstream is done with it (see [`ConnRecord::closed`]).
    pub fn wait_closed(&self, index: usize) {
        self.wait_conns(&format!("connection {index} to close"), |c| {
            c.get(index).is_some_and(|c| c.closed)
        });
    }

    fn wait_conns(&self, what: &str, mut done: impl FnMut(&[ConnRecord]) -> bool) {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while !done(&self.conns.lock().unwrap()) {
            assert!(
                Instant::now() < deadline,
                "waited {EVENT_TIMEOUT:?} for {what}: {:#?}",
                self.connections()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Returns once every connection made to this upstream before the call has been
    /// accepted (and so is in [`Self::connections`]): a marker connection made now is
    /// queued behind them, and the accept loop takes connections in order.
    pub fn sync_accepts(&self) {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("marker socket");
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind marker");
        let local = socket
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .expect("marker address");
        self.markers.lock().unwrap().insert(local);
        socket
            .connect_timeout(&self.addr.into(), IO_TIMEOUT)
            .expect("connect marker");
        let deadline = Instant::now() + EVENT_TIMEOUT;
        while self.markers.lock().unwrap().contains(&local) {
            assert!(
                Instant::now() < deadline,
                "the upstream did not accept a marker connection within {EVENT_TIMEOUT:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops `gw` and waits until this upstream has read every connection the gateway
    /// ever made to it to the end: from then on the record is complete, so a test can
    /// assert that something was *not* forwarded without waiting a fixed time.
    ///
    /// Drop the test's client connections first: after an error answer the gateway
    /// lingers on a connection until its client closes it (up to 2 s), and its drain
    /// waits for that.
    pub fn settle(&self, gw: Gateway) {
        gw.stop();
        self.sync_accepts();
        self.wait_conns("every connection to be read to its end", |c| {
            c.iter().all(|c| c.closed)
        });
    }

    /// Stops `gw` ([`Self::settle`]), then asserts the upstream received no byte at all.
    pub fn assert_received_nothing(&self, gw: Gateway) {
        self.settle(gw);
        let raw = self.raw_received();
        assert!(
            raw.is_empty(),
            "upstream must receive nothing, got {} bytes: {:?}",
            raw.len(),
            String::from_utf8_lossy(&raw)
        );
    }

    /// Stops `gw` ([`Self::settle`]), then asserts the upstream received exactly the
    /// requests whose targets are `targets` (in order) and no other byte.
    pub fn assert_received_only(&self, gw: Gateway, targets: &[&str]) {
        self.settle(gw);
        let reqs = self.requests();
        let got: Vec<&str> = reqs.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(got, targets, "upstream requests");
        for c in self.connections() {
            assert!(
                c.parse_error.is_none(),
                "upstream got unparsable bytes: {:?}",
                c.parse_error
            );
            let leftover = leftover_after_requests(&c);
            assert!(
                leftover.is_empty(),
                "upstream got bytes beyond the expected requests: {:?}",
                String::from_utf8_lossy(&leftover)
            );
        }
    }
}

/// Bytes on a connection that are not part of a complete recorded request.
fn leftover_after_requests(c: &ConnRecord) -> Vec<u8> {
    // Re-parse the raw stream: whatever follows the last complete request is leftover.
    let mut buf = c.raw.clone();
    let mut reader = SliceReader { data: Vec::new() };
    loop {
        let before = buf.clone();
        match parse_request_from(&mut reader, &mut buf) {
            Ok(Some(_)) => continue,
            _ => return before,
        }
    }
}

/// A reader that never yields more data: lets the request parser work on a fixed buffer.
struct SliceReader {
    data: Vec<u8>,
}

impl Read for SliceReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.data.len().min(out.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data.drain(..n);
        Ok(n)
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A reader that appends every byte it reads to the connection's raw record.
struct RecordingReader {
    stream: TcpStream,
    index: usize,
    conns: Arc<Mutex<Vec<ConnRecord>>>,
}

impl Read for RecordingReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.stream.read(out)?;
        if n > 0 {
            self.conns.lock().unwrap()[self.index]
                .raw
                .extend_from_slice(&out[..n]);
        }
        Ok(n)
    }
}

fn serve_upstream_conn(
    stream: TcpStream,
    index: usize,
    conns: Arc<Mutex<Vec<ConnRecord>>>,
    all: Arc<Mutex<Vec<RecordedRequest>>>,
    responder: Arc<Responder>,
) {
    serve_upstream_requests(stream, index, &conns, all, responder);
    conns.lock().unwrap()[index].closed = true;
}

fn serve_upstream_requests(
    stream: TcpStream,
    index: usize,
    conns: &Arc<Mutex<Vec<ConnRecord>>>,
    all: Arc<Mutex<Vec<RecordedRequest>>>,
    responder: Arc<Responder>,
) {
    let mut writer = stream.try_clone().expect("clone upstream stream");
    let mut reader = RecordingReader {
        stream,
        index,
        conns: conns.clone(),
    };
    let mut buf = Vec::new();
    loop {
        match parse_request_from(&mut reader, &mut buf) {
            Ok(Some(mut req)) => {
                req.conn = index;
                conns.lock().unwrap()[index].requests.push(req.clone());
                all.lock().unwrap().push(req.clone());
                let reply = responder(&req);
                for step in reply.steps {
                    match step {
                        Step::Send(bytes) => {
                            if writer.write_all(&bytes).is_err() {
                                return;
                            }
                            let _ = writer.flush();
                        }
                        Step::Sleep(d) => thread::sleep(d),
                        Step::Wait(gate) => gate.wait(),
                        Step::Close => {
                            let _ = writer.shutdown(Shutdown::Both);
                            return;
                        }
                        Step::Hang => {
                            // Keep recording whatever arrives until the gateway hangs up.
                            let mut sink = [0u8; 4096];
                            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                            return;
                        }
                    }
                }
                conns.lock().unwrap()[index].replies_done += 1;
            }
            Ok(None) => return,
            Err(e) => {
                conns.lock().unwrap()[index].parse_error = Some(e);
                let mut sink = [0u8; 4096];
                while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        }
    }
}

/// Reads more bytes into `buf`; Ok(false) on EOF.
fn fill(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<bool, String> {
    let mut tmp = [0u8; 16384];
    match r.read(&mut tmp) {
        Ok(0) => Ok(false),
        Ok(n) => {
            buf.extend_from_slice(&tmp[..n]);
            Ok(true)
        }
        Err(e) => Err(format!("read error: {e}")),
    }
}

/// Takes one CRLF-terminated line from `buf`, reading more as needed.
fn take_line(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        if let Some(pos) = find(buf, b"\r\n") {
            let line = buf[..pos].to_vec();
            buf.drain(..pos + 2);
            return Ok(line);
        }
        if !fill(r, buf)? {
            return Err(format!(
                "EOF inside a line: {:?}",
                String::from_utf8_lossy(buf)
            ));
        }
    }
}

/// Takes exactly `n` bytes from `buf`, reading more as needed.
fn take_exact(r: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> Result<Vec<u8>, String> {
    while buf.len() < n {
        if !fill(r, buf)? {
            return Err(format!("EOF after {} of {n} body bytes", buf.len()));
        }
    }
    Ok(buf.drain(..n).collect())
}

/// Reads a head (up to CRLFCRLF) from `buf`/`r`. Ok(None) on clean EOF before any byte.
fn take_head(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, String> {
    loop {
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            let head = buf[..pos].to_vec();
            buf.drain(..pos + 4);
            return Ok(Some(head));
        }
        if !fill(r, buf)? {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(format!(
                "EOF inside a head: {:?}",
                String::from_utf8_lossy(buf)
            ));
        }
    }
}

/// Parses `Name: value` header lines; errors on a line without a colon.
fn parse_header_lines<'a>(
    lines: impl Iterator<Item = &'a str>,
) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((
            name.to_string(),
            value.trim_matches(|c| c == ' ' || c == '\t').to_string(),
        ));
    }
    Ok(headers)
}

/// Header or trailer fields as (name, value) pairs, in order.
type Fields = Vec<(String, String)>;

/// Decodes a chunked body (and its trailers) from `buf`/`r`.
fn take_chunked(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<(Vec<u8>, Fields), String> {
    let mut body = Vec::new();
    loop {
        let line = take_line(r, buf)?;
        let line = String::from_utf8_lossy(&line).to_string();
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16)
            .map_err(|_| format!("bad chunk size line {line:?}"))?;
        if size == 0 {
            let mut trailer_lines = Vec::new();
            loop {
                let t = take_line(r, buf)?;
                if t.is_empty() {
                    break;
                }
                trailer_lines.push(String::from_utf8_lossy(&t).to_string());
            }
            let trailers = parse_header_lines(trailer_lines.iter().map(|s| s.as_str()))?;
            return Ok((body, trailers));
        }
        body.extend(take_exact(r, buf, size)?);
        let crlf = take_exact(r, buf, 2)?;
        if crlf != b"\r\n" {
            return Err(format!(
                "chunk data not followed by CRLF: {:?}",
                String::from_utf8_lossy(&crlf)
            ));
        }
    }
}

/// Parses one request from `buf`/`r` (Content-Length or chunked body).
/// Ok(None) on clean EOF before the request began.
fn parse_request_from(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
) -> Result<Option<RecordedRequest>, String> {
    let Some(head) = take_head(r, buf)? else {
        return Ok(None);
    };
    let head = String::from_utf8(head).map_err(|e| format!("non-UTF-8 head: {e}"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("").to_string();
    let parts: Vec<&str> = request_line.split(' ').collect();
    if parts.len() != 3 || !parts[2].starts_with("HTTP/") {
        return Err(format!("bad request line {request_line:?}"));
    }
    let headers = parse_header_lines(lines)?;
    let te = find_header(&headers, "transfer-encoding").map(|v| v.to_ascii_lowercase());
    let chunked = te
        .as_deref()
        .map(|v| v.trim().ends_with("chunked"))
        .unwrap_or(false);
    let (body, trailers) = if chunked {
        take_chunked(r, buf)?
    } else if let Some(cl) = find_header(&headers, "content-length") {
        let n: usize = cl
            .trim()
            .parse()
            .map_err(|_| format!("bad Content-Length {cl:?}"))?;
        (take_exact(r, buf, n)?, Vec::new())
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Some(RecordedRequest {
        conn: 0,
        method: parts[0].to_string(),
        target: parts[1].to_string(),
        version: parts[2].to_string(),
        request_line,
        headers,
        body,
        chunked,
        trailers,
    }))
}

// ---------------------------------------------------------------------------------------
// Raw client
// ---------------------------------------------------------------------------------------

/// A parsed response as the client saw it.
#[derive(Clone, Debug)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    /// Decoded body (chunked framing removed).
    pub body: Vec<u8>,
    /// Whether the body was chunked.
    pub chunked: bool,
    /// Whether the body was delimited by the connection closing.
    pub close_delimited: bool,
    /// The head exactly as received, including the final CRLFCRLF.
    pub raw_head: Vec<u8>,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// All values of header `name` (case-insensitive).
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether header `name` has the comma-separated token `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.header_all(name)
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The body as UTF-8 (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// A raw TCP client with a 5 s timeout on every read and write; it keeps unread bytes
/// between responses so pipelined answers parse correctly.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// How a client read ended when it did not produce a response.
#[derive(Debug, PartialEq)]
pub enum ReadEnd {
    /// The peer closed (EOF or reset) after sending these bytes.
    Closed(Vec<u8>),
    /// Nothing (more) arrived within the timeout.
    TimedOut(Vec<u8>),
    /// Bytes arrived that do not form a valid response.
    Malformed(String),
}

/// A reader over the client's socket that classifies errors.
struct ClientReader<'a>(&'a mut TcpStream);

impl Read for ClientReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(out)
    }
}

impl Client {
    /// Connects to `addr` with 5 s read/write timeouts.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::from_stream(stream)
    }

    /// Connects to `addr` from the local address `from` (e.g. another
    /// 127.0.0.0/8 address, to test network rules on loopback).
    pub fn connect_from(addr: SocketAddr, from: std::net::IpAddr) -> Client {
        let domain = socket2::Domain::for_address(addr);
        let socket = socket2::Socket::new(domain, socket2::Type::STREAM, None).expect("socket");
        socket
            .bind(&SocketAddr::new(from, 0).into())
            .unwrap_or_else(|e| panic!("bind {from}: {e}"));
        socket
            .connect_timeout(&addr.into(), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr} from {from}: {e}"));
        Client::from_stream(socket.into())
    }

    fn from_stream(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes all of `bytes`; panics on error.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("client write");
        self.stream.flush().unwrap();
    }

    /// Writes all of `bytes`; returns the error instead of panicking (peer may have closed).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    /// Changes the read timeout (default 5 s).
    pub fn set_read_timeout(&mut self, d: Duration) {
        self.stream.set_read_timeout(Some(d)).unwrap();
    }

    /// Reads more bytes into the buffer: Ok(true) data, Ok(false) closed, Err(()) timeout.
    fn fill(&mut self) -> Result<bool, ()> {
        let mut tmp = [0u8; 65536];
        match self.stream.read(&mut tmp) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&tmp[..n]);
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                Err(())
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(_) => Ok(false), // reset / broken pipe: the peer is gone
        }
    }

    /// Reads the next response (any status, 1xx included); `head_request` says the request
    /// was HEAD, so the response has no body.
    pub fn try_read_response(&mut self, head_request: bool) -> Result<Response, ReadEnd> {
        let head_end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos + 4;
            }
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return Err(ReadEnd::Closed(std::mem::take(&mut self.buf))),
                // Keep the partial head buffered: a later read may complete it.
                Err(()) => return Err(ReadEnd::TimedOut(self.buf.clone())),
            }
        };
        let raw_head: Vec<u8> = self.buf.drain(..head_end).collect();
        let text = String::from_utf8_lossy(&raw_head[..head_end - 4]).to_string();
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ReadEnd::Malformed(format!("bad status line {status_line:?}")))?;
        let reason = parts.next().unwrap_or("").to_string();
        if !version.starts_with("HTTP/1.") {
            return Err(ReadEnd::Malformed(format!(
                "bad status line {status_line:?}"
            )));
        }
        let headers = parse_header_lines(lines).map_err(ReadEnd::Malformed)?;
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            chunked: false,
            close_delimited: false,
            raw_head,
        };
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(resp);
        }
        let te = resp
            .header("transfer-encoding")
            .map(|v| v.to_ascii_lowercase());
        if te
            .as_deref()
            .map(|v| v.contains("chunked"))
            .unwrap_or(false)
        {
            let mut reader = ClientReader(&mut self.stream);
            let (body, _trailers) =
                take_chunked(&mut reader, &mut self.buf).map_err(ReadEnd::Malformed)?;
            resp.body = body;
            resp.chunked = true;
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl
                .trim()
                .parse()
                .map_err(|_| ReadEnd::Malformed(format!("bad Content-Length {cl:?}")))?;
            while self.buf.len() < n {
                match self.fill() {
                    Ok(true) => {}
                    Ok(false) => return Err(ReadEnd::Closed(std::mem::take(&mut self.buf))),
                    Err(()) => return Err(ReadEnd::TimedOut(std::mem::take(&mut self.buf))),
                }
            }
            resp.body = self.buf.drain(..n).collect();
        } else {
            loop {
                match self.fill() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(()) => return Err(ReadEnd::TimedOut(std::mem::take(&mut self.buf))),
                }
            }
            resp.body = std::mem::take(&mut self.buf);
            resp.close_delimited = true;
        }
        Ok(resp)
    }

    /// Reads the next response (1xx included); panics if none arrives within 5 s.
    pub fn read_response(&mut self) -> Response {
        self.try_read_response(false)
            .unwrap_or_else(|e| panic!("expected a response, got {e:?}"))
    }

    /// Reads the response to a HEAD request (no body).
    pub fn read_head_response(&mut self) -> Response {
        self.try_read_response(true)
            .unwrap_or_else(|e| panic!("expected a response, got {e:?}"))
    }

    /// Reads responses until a non-1xx one and returns it.
    pub fn read_final_response(&mut self) -> Response {
        loop {
            let r = self.read_response();
            if r.status >= 200 {
                return r;
            }
        }
    }

    /// Reads until the gateway closes the connection (EOF or reset) and returns the bytes
    /// that arrived (including any unread buffered ones); panics if it stays open for 5 s.
    pub fn read_to_end_or_closed(&mut self) -> Vec<u8> {
        loop {
            match self.fill() {
                Ok(true) => {}
                Ok(false) => return std::mem::take(&mut self.buf),
                Err(()) => panic!(
                    "connection still open after {:?}; pending bytes: {:?}",
                    IO_TIMEOUT,
                    String::from_utf8_lossy(&self.buf)
                ),
            }
        }
    }

    /// Asserts the gateway closes the connection without sending another byte.
    pub fn assert_closed(&mut self) {
        let rest = self.read_to_end_or_closed();
        assert!(
            rest.is_empty(),
            "expected the connection to close with no more bytes, got {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// Whether the gateway has sent something or closed, without blocking: true if bytes
    /// are waiting or the connection is closed.
    pub fn has_pending_input(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).unwrap();
        let mut one = [0u8; 1];
        let pending = match self.stream.peek(&mut one) {
            Ok(_) => true, // data, or 0 = EOF
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(_) => true, // reset
        };
        self.stream.set_nonblocking(false).unwrap();
        pending
    }

    /// One request/response round trip on this connection.
    pub fn roundtrip(&mut self, request: impl AsRef<[u8]>) -> Response {
        self.send(request);
        self.read_response()
    }
}

/// Sends one raw request on a fresh connection and reads one response.
pub fn request(addr: SocketAddr, raw: impl AsRef<[u8]>) -> Response {
    let mut c = Client::connect(addr);
    c.send(raw);
    c.read_response()
}

/// `GET {path} HTTP/1.1` with `Host: gw.test` on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n\r\n"),
    )
}

/// Raw `GET` request bytes with `Host: gw.test`.
pub fn get_req(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n\r\n")
}

/// Sends `raw` on a fresh connection and asserts the gateway answers `status` and then
/// closes the connection without another response.
pub fn expect_reject_and_close(addr: SocketAddr, raw: impl AsRef<[u8]>, status: u16) -> Response {
    let mut c = Client::connect(addr);
    // The gateway may close before taking every byte; a failed write is fine here.
    let _ = c.try_send(raw);
    let r = c.read_response();
    assert_eq!(r.status, status, "status; response: {r:?}");
    c.assert_closed();
    r
}

/// Chunked encoding of `data` cut into pieces of `piece` bytes, with the final chunk.
pub fn chunked(data: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for part in data.chunks(piece.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// Deterministic test data of `len` bytes (not all the same byte).
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789"[(i * 7 + i / 36) % 36])
        .collect()
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// First value of header `name` in `headers` (case-insensitive).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Concatenation of byte slices.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Polls `check` every 50 ms for up to 5 s; true once it holds.
pub fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Polls `check` every 10 ms for up to `limit`; true once it holds.
pub fn eventually_within(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}
