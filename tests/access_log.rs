//! Access log and request ids end to end: one valid JSON object per request
//! with the documented fields, request ids taken from the client or generated
//! and passed to the back end and back, and a log file moved away reopened on
//! SIGUSR1.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const FIELDS: [&str; 18] = [
    "time",
    "request_id",
    "client",
    "method",
    "path",
    "protocol",
    "status",
    "bytes_in",
    "bytes_out",
    "duration_ms",
    "backend_ms",
    "deployment",
    "route",
    "backend",
    "subscriber",
    "client_name",
    "tls",
    "decision",
];

fn config(upstream: std::net::SocketAddr, log: &Path) -> String {
    format!(
        r#"
[access_log]
path = "{}"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/hello"
backend = {{ type = "stock", status = 200, body = "hi\n" }}

[[deployments.routes]]
path = "/up"
backend = {{ type = "http", url = "http://{upstream}/up" }}
"#,
        log.display()
    )
}

/// Waits up to 5 s for `path` to hold at least `n` lines; returns them parsed.
fn read_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .collect();
        }
        thread::sleep(Duration::from_millis(50));
    }
}

// Rule: every request writes one JSON line with all documented fields and its decision code.
#[test]
fn one_json_line_per_request_with_fields() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let gw = Gateway::start(&config(up.addr(), &log));
    assert_eq!(get(gw.addr(), "/api/hello?secret=1").status, 200);
    assert_eq!(get(gw.addr(), "/api/missing").status, 404);
    assert_eq!(get(gw.addr(), "/api/up").status, 200);
    let lines = read_lines(&log, 3);
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        for field in FIELDS {
            assert!(line.get(field).is_some(), "missing {field} in {line}");
        }
    }
    let decisions: Vec<&str> = lines
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        [
            "stockResponse.served",
            "routing.noRoute",
            "httpBackend.requestForwarded"
        ]
    );
    assert_eq!(lines[0]["path"], "/api/hello", "no query string by default");
    assert_eq!(
        (lines[2]["status"].as_u64(), lines[2]["deployment"].as_str()),
        (Some(200), Some("api"))
    );
    assert!(lines[2]["backend_ms"].as_f64().is_some(), "{}", lines[2]);
}

// Rule: a well-formed client request id reaches the back end, comes back, and is logged; otherwise one is generated.
#[test]
fn request_ids_flow_through() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let gw = Gateway::start(&config(up.addr(), &log));
    let r = request(
        gw.addr(),
        "GET /api/up HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n\r\n",
    );
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    assert_eq!(up.only_request().header("x-request-id"), Some("abc-123"));
    let r2 = request(
        gw.addr(),
        "GET /api/hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id\"\r\n\r\n",
    );
    let generated = r2.header("x-request-id").unwrap().to_string();
    assert_ne!(generated, "bad id\"");
    let lines = read_lines(&log, 2);
    assert_eq!(
        (
            lines[0]["request_id"].as_str(),
            lines[1]["request_id"].as_str()
        ),
        (Some("abc-123"), Some(generated.as_str()))
    );
}

// Rule: after the log file is moved away, SIGUSR1 makes the gateway write to a new file at the path.
#[test]
fn sigusr1_reopens_moved_log() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let gw = Gateway::start(&config(up.addr(), &log));
    assert_eq!(get(gw.addr(), "/api/hello").status, 200);
    assert_eq!(read_lines(&log, 1).len(), 1);
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let status = Command::new("kill")
        .arg("-USR1")
        .arg(gw.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // The log writer counts the reopen once the new file is in place.
    gw.wait_metric("portcullis_access_log_reopens_total", 1.0);
    assert_eq!(get(gw.addr(), "/api/hello").status, 200);
    assert_eq!(
        (read_lines(&log, 1).len(), read_lines(&rotated, 1).len()),
        (1, 1)
    );
}

// Rule: every line is one valid JSON object whatever the request held (malformed
// heads, quotes, backslashes, control and non-UTF-8 bytes, very long paths), and
// neither the Authorization header nor a query string reaches the log.
#[test]
fn hostile_requests_still_log_one_json_line_each() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let gw = Gateway::start(&config(up.addr(), &log));
    let long_path = format!("/api/{}", "x".repeat(3000));
    let requests: Vec<Vec<u8>> = vec![
        b"G\"T /api/hello HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /api/\x7f\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET /api/a\"b\\c\xff\xfe\xc3\x28?key=QUERYSECRET HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\\\x01\r\nAuthorization: Bearer AUTHSECRET\r\n\r\n".to_vec(),
        format!("GET {long_path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        b"GET /api/%0a%22 HTTP/1.1\r\nHost: x\r\nX-Request-Id: \"bad\\id\r\n\r\n".to_vec(),
    ];
    for raw in &requests {
        let _ = request(gw.addr(), raw);
    }
    let lines = read_lines(&log, requests.len());
    let statuses: Vec<u64> = lines
        .iter()
        .map(|l| l["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [400, 400, 400, 404, 404]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.lines().count(),
        requests.len(),
        "no line split: {text}"
    );
    assert!(!text.contains("AUTHSECRET") && !text.contains("QUERYSECRET"));
    assert_eq!(lines[3]["path"].as_str(), Some(long_path.as_str()));
    assert_eq!(lines[4]["path"].as_str(), Some("/api/%0a%22"));
    assert_eq!(lines[0]["tls"], Value::Null);
}
