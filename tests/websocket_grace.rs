//! The end of an open WebSocket's shutdown grace, over real sockets: after
//! SIGTERM (or a takeover) a WebSocket keeps working for
//! `timeouts.websocket_grace`, then the gateway closes it cleanly: Close
//! 1001 (Going Away) to the client and to the back end, both seen by
//! Python's `websockets` library (which refuses a masked frame from a server
//! and an unmasked one from a client), through plain and TLS listeners and
//! back ends. A frame in flight at that moment is finished before the Close
//! goes after it; one that never ends gets no Close behind it.
//!
//! Without the library the tests skip, except under `CI=true`, where they fail.

mod auth_support;
mod common;
#[path = "support/tls.rs"]
mod support;
mod websocket_support;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{toml_path, Pki};
use websocket_support::*;

/// Bounds for waits that only a broken gateway reaches.
const LIMIT: Duration = Duration::from_secs(30);

// After SIGTERM an open WebSocket keeps working for its grace; then the
// client and the echo back end each receive Close 1001, and the gateway
// exits long before its drain timeout.
#[test]
fn sigterm_ends_the_grace_with_close_1001_both_ways() {
    sigterm_ends_the_grace_on(&[]);
}

// The same on the epoll driver (where io_uring is unavailable).
#[test]
fn close_1001_on_the_epoll_driver() {
    sigterm_ends_the_grace_on(&["--driver", "epoll"]);
}

/// SIGTERM with a WebSocket open, on a gateway started with `args`.
fn sigterm_ends_the_grace_on(args: &[&str]) {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let prelude = "[timeouts]\nwebsocket_grace = 2\ndrain = 60";
    let config = config(&plain_backend(&echo), None, "", prelude);
    let mut gw = Gateway::start_with_args(&config, args);
    let mut held = Held::open(&python, &ws_url(&gw));
    held.ping();
    gw.sigterm();
    held.ping();
    assert_eq!(held.wait_close(LIMIT), "1001");
    assert_eq!(echo.next_close(LIMIT).as_deref(), Some("1001"));
    assert!(
        gw.wait_exit(LIMIT).is_some(),
        "gateway still running\n{}",
        gw.log_text()
    );
}

// The same through a TLS listener to an https back end: the Close frames go
// inside the TLS sessions.
#[test]
fn close_1001_over_tls_both_sides() {
    let Some(python) = python() else { return };
    let pki = Pki::new("ws-grace");
    let front = pki.issue("gw", "gateway", &["localhost", "127.0.0.1"]);
    let back = pki.issue("up", "upstream", &["localhost", "127.0.0.1"]);
    let echo = EchoServer::start(&python, Some(&back));
    let backend = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/\", ca = \"{}\" }}",
        echo.port,
        toml_path(&pki.ca_path)
    );
    let prelude = "[timeouts]\nwebsocket_grace = 1\ndrain = 60";
    let mut gw = Gateway::start(&config(&backend, Some(&front), "", prelude));
    let url = format!("wss://{}/api/ws", gw.addr());
    let ca = pki.ca_path.to_str().unwrap();
    let mut held = Held::open_with(&python, &url, &["--ca", ca]);
    held.ping();
    gw.sigterm();
    assert_eq!(held.wait_close(LIMIT), "1001");
    assert_eq!(echo.next_close(LIMIT).as_deref(), Some("1001"));
    assert!(gw.wait_exit(LIMIT).is_some(), "{}", gw.log_text());
}

// A takeover gives an open WebSocket its grace in the old process, which
// then closes it with Close 1001 and exits; the new process relays new
// WebSockets.
#[test]
fn takeover_gives_open_websockets_their_grace() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let prelude = "[timeouts]\nwebsocket_grace = 2\ndrain = 60";
    let config = config(&plain_backend(&echo), None, "", prelude);
    let args = ["--control-socket", control.to_str().unwrap(), "--no-watch"];
    let start = |args: &[&str]| {
        let gw = Gateway::start_with_args(&config, args);
        let ready = eventually(|| gw.log_text().contains("control socket ready"));
        assert!(ready, "no control socket:\n{}", gw.log_text());
        gw
    };
    let mut old = start(&args);
    let url = ws_url(&old);
    let mut held = Held::open(&python, &url);
    held.ping();
    let _new = start(&[&args[..], &["--takeover"]].concat());
    held.ping();
    assert_eq!(held.wait_close(LIMIT), "1001");
    assert_eq!(echo.next_close(LIMIT).as_deref(), Some("1001"));
    let exit = old.wait_exit(LIMIT);
    assert!(
        exit.is_some(),
        "old process still running:\n{}",
        old.log_text()
    );
    let (code, out) = run_client(&python, &["echo", &url]);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
}

/// Opens a WebSocket through the gateway by hand (raw bytes): returns the
/// socket after the `101` head.
fn raw_websocket(gw: &Gateway) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr()).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    s.write_all(b"GET /api/ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "head: {head:?}");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{head:?}");
    s
}

/// A masked text frame of 100 bytes of `a` (mask 1, 2, 3, 4).
fn text_frame_of_100() -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 100, 1, 2, 3, 4];
    frame.extend((0..100).map(|i| b'a' ^ mask[i % 4]));
    frame
}

/// Reads the next `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    s.read_exact(&mut out).unwrap();
    out
}

// A frame half sent when the grace ends is finished first: the client gets
// its Close 1001 at once, sends the rest of the frame and its own Close; the
// back end receives the whole frame, then its Close 1001.
#[test]
fn a_frame_in_flight_is_finished_before_the_close() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let prelude = "[timeouts]\nwebsocket_grace = 1\ndrain = 60";
    let mut gw = Gateway::start(&config(&plain_backend(&echo), None, "", prelude));
    let mut s = raw_websocket(&gw);
    let frame = text_frame_of_100();
    s.write_all(&frame[..30]).unwrap();
    gw.sigterm();
    assert_eq!(read_n(&mut s, 4), [0x88, 0x02, 0x03, 0xe9]);
    s.write_all(&frame[30..]).unwrap();
    // The client's own Close answer (1001, masked with 0s).
    s.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(rest, b"", "nothing after the Close");
    assert_eq!(echo.next_close(LIMIT).as_deref(), Some("1001"));
    assert!(gw.wait_exit(LIMIT).is_some(), "{}", gw.log_text());
}

// A frame that never ends gets no Close behind it (it would land inside the
// frame): the back end sees the connection end without a Close (1006),
// while the client, between frames, gets its Close 1001.
#[test]
fn a_frame_that_never_ends_gets_no_close() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let prelude = "[timeouts]\nwebsocket_grace = 1\ndrain = 60";
    let mut gw = Gateway::start(&config(&plain_backend(&echo), None, "", prelude));
    let mut s = raw_websocket(&gw);
    s.write_all(&text_frame_of_100()[..30]).unwrap();
    gw.sigterm();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert_eq!(all, [0x88, 0x02, 0x03, 0xe9]);
    assert_eq!(echo.next_close(LIMIT).as_deref(), Some("1006"));
    assert!(gw.wait_exit(LIMIT).is_some(), "{}", gw.log_text());
}
