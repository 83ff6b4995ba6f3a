//! The HTML report opens in headless Chromium with both plots drawn.
//!
//! Chromium comes from scripts/install-test-deps.sh (found as
//! `$PORTCULLIS_CHROMIUM`, `chromium` or `chromium-browser`, like the gateway's
//! browser test). Where it is missing the test fails under CI=true and is
//! skipped (with a message) elsewhere.

mod common;

use common::{harness, Behaviour, TestServer};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The browser binary, if installed.
fn find_chromium() -> Option<String> {
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

// The rendered DOM holds the latency and rate plots, each with a data line,
// and a screenshot of the page is not blank.
#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(browser) = find_chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed: run scripts/install-test-deps.sh"
        );
        eprintln!("skipped: chromium is not installed (scripts/install-test-deps.sh installs it)");
        return;
    };
    let server = TestServer::start(Behaviour {
        fail_every: 0,
        stall_at: None,
        stall: Duration::ZERO,
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("report.html");
    harness(&[
        &server.url("/"),
        "--duration",
        "2s",
        "--connections",
        "4",
        "--quiet",
        "--html",
        report.to_str().expect("path"),
    ]);
    let url = format!("file://{}", report.display());
    let dom = chromium(&browser, dir.path(), &["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom);
    let screenshot = dir.path().join("shot.png");
    let shot_arg = format!("--screenshot={}", screenshot.display());
    chromium(
        &browser,
        dir.path(),
        &[&shot_arg, "--window-size=1000,1200", &url],
    );
    let shot_bytes = std::fs::metadata(&screenshot).map(|m| m.len()).unwrap_or(0);
    assert!(
        dom.contains("class=\"latency-plot\"")
            && dom.contains("class=\"rate-plot\"")
            && dom.matches("<polyline").count() == 2
            && shot_bytes > 20_000,
        "rendered DOM lacks the plots or the screenshot is blank ({shot_bytes} bytes):\n{dom}"
    );
}

/// Runs headless Chromium (`browser`) with `args`, at most 90 s; returns its stdout.
fn chromium(browser: &str, profile: &Path, args: &[&str]) -> Vec<u8> {
    let profile_arg = format!("--user-data-dir={}", profile.join("profile").display());
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &profile_arg,
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut out);
        out
    });
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("reader")
}
