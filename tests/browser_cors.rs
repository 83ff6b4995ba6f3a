//! CORS seen by a real browser: headless Chromium loads a page from one origin
//! (`http://127.0.0.1:A`) whose script calls the API through the gateway at
//! another origin (`http://127.0.0.1:B`). The call the gateway's CORS policy
//! allows (a `PUT` with a JSON body, so the browser sends a preflight first)
//! succeeds; the call to a route that allows another origin is blocked by the
//! browser. The page writes the outcome into the DOM, read with `--dump-dom`.
//!
//! Needs `chromium` (scripts/install-test-deps.sh installs it). Without it the
//! test skips, except under `CI=true`, where it fails.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser binary, if installed.
fn chromium() -> Option<String> {
    let candidates = [
        std::env::var("PORTCULLIS_CHROMIUM").ok(),
        Some("chromium".to_string()),
        Some("chromium-browser".to_string()),
    ];
    candidates.into_iter().flatten().find(|bin| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Serves `page` for every request on `listener` (one thread, until the test ends).
fn serve_page(listener: TcpListener, page: String) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let (status, body) = if head.starts_with(b"GET / ") {
                ("200 OK", page.as_str())
            } else {
                ("404 Not Found", "")
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
}

const PAGE: &str = r#"<!doctype html>
<html><body><pre id="result">pending</pre>
<script>
async function attempt(url, init) {
  try {
    const r = await fetch(url, init);
    return "ok " + r.status + " " + (await r.text());
  } catch (e) {
    return "blocked";
  }
}
(async () => {
  const allowed = await attempt("GATEWAY/api/allowed", {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ n: 1 }),
  });
  const disallowed = await attempt("GATEWAY/api/denied", {});
  document.getElementById("result").textContent =
    "RESULT allowed=[" + allowed + "] disallowed=[" + disallowed + "] END";
})();
</script></body></html>"#;

// Rule: in a real browser, the CORS-allowed cross-origin call succeeds (after a preflight the
// back end never sees) and the call from a disallowed origin is blocked.
#[test]
fn browser_sees_allowed_call_succeed_and_disallowed_blocked() {
    let Some(browser) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed (run scripts/install-test-deps.sh)");
        }
        eprintln!("skipping: chromium is not installed (run scripts/install-test-deps.sh)");
        return;
    };
    let upstream = RecordingUpstream::start(|r| Reply::ok(format!("{} {}", r.method, r.target)));
    let page_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let page_origin = format!("http://{}", page_listener.local_addr().unwrap());
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/allowed"
methods = ["PUT"]
cors = {{ allowed_origins = ["{page_origin}"], allowed_methods = ["PUT"], allowed_headers = ["Content-Type"] }}
backend = {{ type = "http", url = "http://{up}/allowed" }}

[[deployments.routes]]
path = "/denied"
cors = {{ allowed_origins = ["https://elsewhere.test"] }}
backend = {{ type = "http", url = "http://{up}/denied" }}
"#,
        up = upstream.addr()
    ));
    serve_page(
        page_listener,
        PAGE.replace("GATEWAY", &format!("http://{}", gw.addr())),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{page_origin}/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Bounded: a hung browser fails the test instead of hanging CI.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child.wait_with_output().unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let result = dom
        .split("RESULT ")
        .nth(1)
        .and_then(|r| r.split(" END").next())
        .unwrap_or_else(|| {
            panic!(
                "no result in the DOM:\n{dom}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(
        result,
        "allowed=[ok 200 PUT /allowed] disallowed=[blocked]",
        "gateway log:\n{}",
        gw.log_text()
    );
    // The preflight was answered by the gateway: the back end saw the PUT, never an OPTIONS.
    assert!(upstream.requests().iter().all(|r| r.method != "OPTIONS"));
}
