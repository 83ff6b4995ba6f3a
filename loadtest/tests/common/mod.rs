//! A test server for the harness's own tests: real sockets on 127.0.0.1, one
//! thread per connection, keep-alive. It counts every request and every
//! status it sends, answers 503 to every `fail_every`-th request (200 to the
//! rest), and can stall every answer for a while once the `stall_at`-th
//! request has arrived: what a paused back end looks like to a client. It
//! counts the requests the stall held, so tests can relate what the harness
//! measured to what the server did.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the test server saw.
#[derive(Default)]
pub struct Seen {
    pub requests: AtomicU64,
    pub connections: AtomicU64,
    pub statuses: Mutex<BTreeMap<u16, u64>>,
    /// Requests whose answer waited for the stall to end.
    pub held: AtomicU64,
    stall_until: Mutex<Option<Instant>>,
}

/// How the test server behaves.
#[derive(Clone, Copy)]
pub struct Behaviour {
    /// Every n-th request gets 503 (0: never).
    pub fail_every: u64,
    /// When this request (1-based) arrives, stall every answer for `stall`.
    pub stall_at: Option<u64>,
    pub stall: Duration,
}

pub struct TestServer {
    pub port: u16,
    pub seen: Arc<Seen>,
}

impl TestServer {
    pub fn start(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let port = listener.local_addr().expect("local addr").port();
        let seen = Arc::new(Seen::default());
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                shared.connections.fetch_add(1, Ordering::Relaxed);
                let seen = shared.clone();
                std::thread::spawn(move || serve(stream, &seen, behaviour));
            }
        });
        TestServer { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn statuses(&self) -> BTreeMap<String, u64> {
        let statuses = self.seen.statuses.lock().expect("statuses");
        statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }
}

fn serve(mut stream: TcpStream, seen: &Seen, behaviour: Behaviour) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        buf.drain(..end + 4);
        let close = head.contains("connection: close");
        let n = seen.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if behaviour.stall_at == Some(n) {
            *seen.stall_until.lock().expect("stall") = Some(Instant::now() + behaviour.stall);
        }
        let until = *seen.stall_until.lock().expect("stall");
        if let Some(until) = until {
            let now = Instant::now();
            if now < until {
                seen.held.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(until - now);
            }
        }
        let status = if behaviour.fail_every > 0 && n.is_multiple_of(behaviour.fail_every) {
            503
        } else {
            200
        };
        *seen
            .statuses
            .lock()
            .expect("statuses")
            .entry(status)
            .or_default() += 1;
        let answer = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: 3\r\n{}\r\nok\n",
            if close { "Connection: close\r\n" } else { "" }
        );
        if stream.write_all(answer.as_bytes()).is_err() || close {
            return;
        }
    }
}

/// Runs the harness binary with `args`; panics with its output if it fails.
pub fn harness(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_portcullis-load"))
        .args(args)
        .output()
        .expect("run portcullis-load");
    assert!(
        output.status.success(),
        "portcullis-load {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the harness with `--json` into a temporary file and returns the parsed result.
pub fn harness_json(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("result.json");
    let mut all: Vec<&str> = args.to_vec();
    let path_text = path.to_str().expect("utf-8 path").to_string();
    all.extend(["--json", &path_text, "--quiet"]);
    harness(&all);
    let text = std::fs::read_to_string(&path).expect("read JSON result");
    serde_json::from_str(&text).expect("the JSON result parses")
}
