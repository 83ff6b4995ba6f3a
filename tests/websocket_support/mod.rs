//! The Python side of tests/websocket.rs (`ws.py`, on the `websockets`
//! library): the echo server, clients run to their end, and one WebSocket
//! held open and driven line by line. Every wait is bounded.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::Gateway;
use crate::support::{toml_path, Issued};

/// How long one client run may take (1 MiB frames through a debug build on
/// a loaded machine included).
const CLIENT_LIMIT: Duration = Duration::from_secs(120);

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/websocket_support/ws.py");

/// A Python with `websockets`: the test venv, else the system's; `None`
/// (the test skips) unless under `CI=true`.
pub fn python() -> Option<String> {
    let home = std::env::var("HOME").unwrap_or_default();
    let venv = format!("{home}/.cache/portcullis-test-venv/bin/python");
    for candidate in [venv.as_str(), "python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import websockets.asyncio.client"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(candidate.to_string());
        }
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "Python websockets missing: run scripts/install-test-deps.sh"
    );
    eprintln!("skipped: Python websockets missing (scripts/install-test-deps.sh)");
    None
}

/// A child process's stdout, line by line, readable with a limit.
struct Lines(Receiver<String>);

impl Lines {
    fn of(child: &mut Child) -> Lines {
        let out = child.stdout.take().unwrap();
        let (tx, rx) = channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    fn next(&self, limit: Duration) -> Option<String> {
        self.0.recv_timeout(limit).ok()
    }
}

/// The echo server, stopped when dropped (its stdin closes; killed by pid
/// if it lingers).
pub struct EchoServer {
    child: Child,
    _stdin: ChildStdin,
    /// Read all along, so that the server never blocks on its stdout.
    lines: Lines,
    pub port: u16,
}

impl EchoServer {
    pub fn start(python: &str, tls: Option<&Issued>) -> EchoServer {
        let mut cmd = Command::new(python);
        cmd.arg(SCRIPT).arg("serve");
        if let Some(cert) = tls {
            cmd.arg(&cert.cert).arg(&cert.key);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the echo server");
        let stdin = child.stdin.take().unwrap();
        let lines = Lines::of(&mut child);
        let port = lines
            .next(Duration::from_secs(20))
            .and_then(|l| l.trim().parse().ok())
            .expect("echo server port");
        EchoServer {
            child,
            _stdin: stdin,
            lines,
            port,
        }
    }

    /// The Close status the server received on the next WebSocket to end
    /// ("1006": none), waiting up to `limit`.
    pub fn next_close(&self, limit: Duration) -> Option<String> {
        let line = self.lines.next(limit)?;
        line.strip_prefix("closed ").map(str::to_string)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client mode to its end (bounded); returns its exit code and stdout.
pub fn run_client(python: &str, args: &[&str]) -> (i32, String) {
    let mut child = Command::new(python)
        .arg(SCRIPT)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the client");
    let lines = Lines::of(&mut child);
    let deadline = Instant::now() + CLIENT_LIMIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut out = String::new();
            while let Some(line) = lines.next(Duration::from_secs(1)) {
                out.push_str(&line);
                out.push('\n');
            }
            return (status.code().unwrap_or(-1), out);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("client {args:?} still running after {CLIENT_LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// One WebSocket held open and driven line by line.
pub struct Held {
    child: Child,
    stdin: ChildStdin,
    lines: Lines,
}

impl Held {
    pub fn open(python: &str, url: &str) -> Held {
        Held::open_with(python, url, &[])
    }

    /// Like [`Held::open`], with client options (`--ca FILE`, ...).
    pub fn open_with(python: &str, url: &str, options: &[&str]) -> Held {
        let mut child = Command::new(python)
            .arg(SCRIPT)
            .args(["hold", url])
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client");
        let stdin = child.stdin.take().unwrap();
        let lines = Lines::of(&mut child);
        let held = Held {
            child,
            stdin,
            lines,
        };
        held.expect("open", Duration::from_secs(30));
        held
    }

    pub fn say(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    pub fn expect(&self, want: &str, limit: Duration) {
        let got = self.lines.next(limit);
        assert_eq!(got.as_deref(), Some(want), "WebSocket client said");
    }

    /// Waits (up to `limit`) for the WebSocket to be closed; returns the
    /// Close status the client received ("1006": none).
    pub fn wait_close(&mut self, limit: Duration) -> String {
        self.say("wait-close");
        let got = self.lines.next(limit);
        let code = got.as_deref().and_then(|l| l.strip_prefix("closed "));
        code.unwrap_or_else(|| panic!("WebSocket client said {got:?}, not closed"))
            .to_string()
    }

    pub fn ping(&mut self) {
        self.say("ping");
        self.expect("echoed", Duration::from_secs(20));
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A deployment `api` at `/api` on listener `public` (TLS with `tls`), route
/// `/ws` to `backend_url`, with `deployment_extra` in the deployment and
/// `prelude` on top.
pub fn config(
    backend: &str,
    tls: Option<&Issued>,
    deployment_extra: &str,
    prelude: &str,
) -> String {
    let tls = tls.map_or(String::new(), |c| {
        format!(
            "tls = {{ certificates = [{{ cert = \"{}\", key = \"{}\" }}] }}",
            toml_path(&c.cert),
            toml_path(&c.key)
        )
    });
    format!(
        r#"{prelude}
[[listeners]]
name = "public"
address = "127.0.0.1:0"
{tls}

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
{deployment_extra}

[[deployments.routes]]
path = "/ws"
backend = {backend}
"#
    )
}

pub fn plain_backend(echo: &EchoServer) -> String {
    format!(
        "{{ type = \"http\", url = \"http://127.0.0.1:{}/\" }}",
        echo.port
    )
}

pub fn ws_url(gw: &Gateway) -> String {
    format!("ws://{}/api/ws", gw.addr())
}
