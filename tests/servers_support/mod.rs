//! Back-end servers for the several-servers tests: small HTTP/1.1 servers on
//! loopback that answer with their own name, count what they serve, and can
//! be switched to 5xx or resets, killed (port closed, connections cut) and
//! started again on the same port; a config for a route over a list of them;
//! and a load of keep-alive GETs from several client threads.

#![allow(dead_code)]

use crate::common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// What a [`Server`] answers: 0 for 200 with its name, a status, or
/// [`RESET`] to close each connection on its first request unanswered.
pub const RESET: u16 = 1;

/// One back-end server.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    answer: Arc<AtomicU16>,
    pub hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Server {
    /// Starts a server named `name` on a free loopback port.
    pub fn start(name: &str) -> Server {
        Server::start_on(name, "127.0.0.1:0".parse().unwrap())
    }

    /// Starts a server on `addr` (a port a killed server left).
    pub fn start_on(name: &str, addr: SocketAddr) -> Server {
        let listener = TcpListener::bind(addr).expect("bind server");
        let addr = listener.local_addr().unwrap();
        let server = Server {
            name: name.to_string(),
            addr,
            answer: Arc::new(AtomicU16::new(0)),
            hits: Arc::new(AtomicUsize::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            conns: Arc::default(),
        };
        let (answer, hits, stop, conns) = (
            server.answer.clone(),
            server.hits.clone(),
            server.stop.clone(),
            server.conns.clone(),
        );
        let name = name.to_string();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(copy) = stream.try_clone() {
                    conns.lock().unwrap().push(copy);
                }
                let (answer, hits, name) = (answer.clone(), hits.clone(), name.clone());
                thread::spawn(move || serve(stream, &name, &answer, &hits));
            }
        });
        server
    }

    /// Requests answered so far (any status).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Answers `status` from now on (0: 200 with the name; [`RESET`]).
    pub fn answer(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }

    /// Closes the port and cuts every connection.
    pub fn kill(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        for conn in self.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn serve(mut stream: TcpStream, name: &str, answer: &AtomicU16, hits: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let body_len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + body_len {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + 4 + body_len);
        let status = answer.load(Ordering::SeqCst);
        if status == RESET {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        hits.fetch_add(1, Ordering::SeqCst);
        let status = if status == 0 { 200 } else { status };
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nX-Server: {name}\r\n\r\n{name}",
            name.len()
        );
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// A gateway config with route `/api/x` over `servers` (address, weight),
/// `extra` added to the back-end table (`, balance = "least_request"`).
pub fn config(servers: &[(SocketAddr, u32)], extra: &str) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|(addr, weight)| format!("{{ url = \"http://{addr}/x\", weight = {weight} }}"))
        .collect();
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
backend = {{ type = "http", servers = [{}], connect_timeout = 2, read_timeout = 10{extra} }}
"#,
        list.join(", ")
    )
}

/// Writes `text` over the gateway's config (by rename, as editors do) and
/// waits until `/config` shows the next generation.
pub fn reload(gw: &Gateway, text: &str) {
    let generation = || -> u64 {
        let report: serde_json::Value =
            serde_json::from_str(&get(gw.admin_addr(), "/config").text()).unwrap();
        report["generation"].as_u64().unwrap()
    };
    let before = generation();
    let path = gw.config_path();
    let tmp = path.with_extension("toml.new");
    // The admin address the gateway started with stays (changing it needs a restart).
    let current = std::fs::read_to_string(path).unwrap();
    let admin = current
        .lines()
        .find(|l| l.trim_start().starts_with("admin"))
        .unwrap_or_default();
    std::fs::write(&tmp, format!("{admin}\n{text}")).unwrap();
    std::fs::rename(&tmp, path).unwrap();
    assert!(
        eventually_within(Duration::from_secs(10), || generation() > before),
        "no reload; log:\n{}",
        gw.log_text()
    );
}

/// Statuses and `X-Server` names of `per_thread` keep-alive GETs of `path`
/// (with `header` lines) from each of `threads` clients.
pub fn load(
    addr: SocketAddr,
    path: &str,
    header: &str,
    threads: usize,
    per_thread: usize,
) -> Vec<(u16, String)> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let request = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n{header}\r\n");
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let mut out = Vec::new();
                for _ in 0..per_thread {
                    let response = match client.try_send(&request) {
                        Ok(()) => client.try_read_response(false).ok(),
                        Err(_) => None,
                    };
                    let response = response.unwrap_or_else(|| {
                        client = Client::connect(addr);
                        client.roundtrip(&request)
                    });
                    let server = response.header("x-server").unwrap_or("").to_string();
                    out.push((response.status, server));
                    if response.header_has_token("connection", "close") {
                        client = Client::connect(addr);
                    }
                }
                out
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

/// How many of `results` came from server `name`.
pub fn served_by(results: &[(u16, String)], name: &str) -> usize {
    results.iter().filter(|(_, s)| s == name).count()
}

/// Whether `e` means the peer is gone.
pub fn gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
    )
}
