//! WebSocket passthrough over real sockets: Python's `websockets` library
//! (installed by scripts/install-test-deps.sh) as both the echo server behind
//! the gateway and the client in front of it. Text and binary frames up to
//! 1 MiB through plain and TLS listeners to plain and https back ends; 1,000
//! WebSockets at once through one worker; one WebSocket kept across 20
//! reloads; a JWT-protected route refuses the upgrade without a token; an
//! idle WebSocket is closed; the upgrade fields reach the back end, other
//! upgrades (h2c) do not. The end of the shutdown grace is in
//! tests/websocket_grace.rs.
//!
//! Without the library the tests skip, except under `CI=true`, where they fail.

mod auth_support;
mod common;
#[path = "support/tls.rs"]
mod support;
mod websocket_support;

use auth_support::*;
use common::*;
use jsonwebtoken::Algorithm;
use std::time::Duration;
use support::{toml_path, Pki};
use websocket_support::*;

// Text and binary frames of 0 B to 1 MiB are echoed through a plain
// listener and a plain back end; the upgrade is counted and logged with
// status 101 and the relayed bytes.
#[test]
fn echo_through_plain_listener() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let prelude = format!("[access_log]\npath = \"{}\"", toml_path(&log));
    let gw = Gateway::start(&config(&plain_backend(&echo), None, "", &prelude));
    let (code, out) = run_client(&python, &["echo", &ws_url(&gw)]);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    gw.wait_metric("portcullis_websockets_total", 1.0);
    gw.wait_metric_until("portcullis_websockets_active", "0", |v| v == 0.0);
    let line = wait_for_line(&log, "\"status\":101");
    let record: serde_json::Value = serde_json::from_str(&line).unwrap();
    // Both ways: at least the frames' payloads (2 × 1 MiB and more).
    for field in ["bytes_in", "bytes_out"] {
        let bytes = record[field].as_u64().unwrap();
        assert!(bytes > 2 * 1024 * 1024, "{field} = {bytes} in {line}");
    }
}

// The relay on the epoll driver (where io_uring is unavailable): echo, and
// 200 at once.
#[test]
fn echo_on_the_epoll_driver() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let config = config(&plain_backend(&echo), None, "", "");
    let gw = Gateway::start_with_args(&config, &["--driver", "epoll"]);
    let (code, out) = run_client(&python, &["echo", &ws_url(&gw)]);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
    let (code, out) = run_client(&python, &["many", &ws_url(&gw), "200"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("ok 200\n"), "{out}");
}

/// Waits (bounded) for a line of the access log that contains `needle`.
fn wait_for_line(log: &std::path::Path, needle: &str) -> String {
    let mut found = None;
    let seen = eventually(|| {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        found = text
            .lines()
            .find(|l| l.contains(needle))
            .map(str::to_string);
        found.is_some()
    });
    assert!(seen, "no access log line with {needle}");
    found.unwrap()
}

// The same through a TLS listener to an https back end.
#[test]
fn echo_through_tls_listener_to_https_backend() {
    let Some(python) = python() else { return };
    let pki = Pki::new("ws");
    let front = pki.issue("gw", "gateway", &["localhost", "127.0.0.1"]);
    let back = pki.issue("up", "upstream", &["localhost", "127.0.0.1"]);
    let echo = EchoServer::start(&python, Some(&back));
    let backend = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/\", ca = \"{}\" }}",
        echo.port,
        toml_path(&pki.ca_path)
    );
    let gw = Gateway::start(&config(&backend, Some(&front), "", ""));
    let url = format!("wss://{}/api/ws", gw.addr());
    let ca = pki.ca_path.to_str().unwrap();
    let (code, out) = run_client(&python, &["echo", &url, "--ca", ca]);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
}

// 1,000 WebSockets open at once through one worker, each echoed twice.
#[test]
fn many_at_once_through_one_worker() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let gw = Gateway::start(&config(&plain_backend(&echo), None, "", ""));
    let (code, out) = run_client(&python, &["many", &ws_url(&gw), "1000"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("ok 1000\n"), "{out}");
    gw.wait_metric("portcullis_websockets_total", 1000.0);
}

// One WebSocket stays open and working across 20 reloads.
#[test]
fn survives_twenty_reloads() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let gw = Gateway::start(&config(&plain_backend(&echo), None, "", ""));
    // As started (with the admin address the harness added).
    let base = std::fs::read_to_string(gw.config_path()).unwrap();
    let mut held = Held::open(&python, &ws_url(&gw));
    let applied = "portcullis_config_reloads_total{result=\"applied\"";
    for i in 1..=20 {
        let edited = format!(
            "{base}\n[[deployments.routes]]\npath = \"/r{i}\"\nbackend = {{ type = \"stock\", status = 200 }}\n"
        );
        let tmp = gw.config_path().with_extension("tmp");
        std::fs::write(&tmp, edited).unwrap();
        std::fs::rename(&tmp, gw.config_path()).unwrap();
        gw.wait_metric(applied, f64::from(i));
        held.ping();
    }
    assert_eq!(gw.metric("portcullis_websockets_active"), 1.0);
}

// A JWT-protected route refuses the upgrade without a token (401) and
// relays it with one.
#[test]
fn jwt_applies_to_the_upgrade() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let dir = tempfile::tempdir().unwrap();
    let jwks = write_jwks(dir.path());
    let auth = jwt_auth_table(&jwks, "");
    let gw = Gateway::start(&config(&plain_backend(&echo), None, &auth, ""));
    let url = ws_url(&gw);
    let (code, out) = run_client(&python, &["echo", &url]);
    assert_eq!((code, out.as_str()), (3, "refused 401\n"));
    let token = keys().token(Algorithm::RS256, &claims("read"));
    let header = format!("Authorization: Bearer {token}");
    let (code, out) = run_client(&python, &["echo", &url, "--header", &header]);
    assert_eq!((code, out.as_str()), (0, "ok\n"));
}

// A WebSocket with no byte either way for `websocket_idle` is closed.
#[test]
fn idle_websocket_is_closed() {
    let Some(python) = python() else { return };
    let echo = EchoServer::start(&python, None);
    let prelude = "[timeouts]\nwebsocket_idle = 1";
    let gw = Gateway::start(&config(&plain_backend(&echo), None, "", prelude));
    let mut held = Held::open(&python, &ws_url(&gw));
    held.ping();
    held.wait_close(Duration::from_secs(30));
    gw.wait_metric_until("portcullis_websockets_active", "0", |v| v == 0.0);
    gw.wait_metric("portcullis_websocket_ends_total{end=\"idle\"}", 1.0);
    assert_eq!(
        gw.metric("portcullis_websocket_ends_total{end=\"grace_close\"}"),
        0.0
    );
}

const UPGRADE_HEAD: &str = "GET /api/ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

// The back end receives the upgrade fields; its non-101 answer is relayed
// as a normal response.
#[test]
fn upgrade_fields_reach_the_back_end() {
    let upstream = RecordingUpstream::ok();
    let backend = format!(
        "{{ type = \"http\", url = \"http://{}/ws\" }}",
        upstream.addr()
    );
    let gw = Gateway::start(&config(&backend, None, "", ""));
    let r = request(gw.addr(), UPGRADE_HEAD);
    assert_eq!(r.status, 200);
    let seen = &upstream.requests()[0];
    assert_eq!(seen.header("connection"), Some("Upgrade"), "{seen:?}");
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(
        seen.header("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
    assert_eq!(seen.header("sec-websocket-version"), Some("13"));
    assert_eq!(seen.header("sec-websocket-protocol"), Some("chat"));
}

// Another upgrade (h2c) is not forwarded: its fields are dropped as before.
#[test]
fn other_upgrades_are_dropped() {
    let upstream = RecordingUpstream::ok();
    let backend = format!(
        "{{ type = \"http\", url = \"http://{}/ws\" }}",
        upstream.addr()
    );
    let gw = Gateway::start(&config(&backend, None, "", ""));
    let r = request(
        gw.addr(),
        "GET /api/ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = &upstream.requests()[0];
    assert!(!seen.has_header("upgrade"), "{seen:?}");
    assert!(!seen.has_header("http2-settings"), "{seen:?}");
}

// `websocket = false` on the back end drops a WebSocket's upgrade like any other.
#[test]
fn a_back_end_may_turn_websocket_off() {
    let upstream = RecordingUpstream::ok();
    let backend = format!(
        "{{ type = \"http\", url = \"http://{}/ws\", websocket = false }}",
        upstream.addr()
    );
    let gw = Gateway::start(&config(&backend, None, "", ""));
    assert_eq!(request(gw.addr(), UPGRADE_HEAD).status, 200);
    let seen = &upstream.requests()[0];
    assert!(!seen.has_header("upgrade"), "{seen:?}");
    assert_eq!(seen.header("connection"), None, "{seen:?}");
}
