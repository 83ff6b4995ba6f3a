//! Startup checks: `run` refuses to start, exiting non-zero with one clear line, on a port
//! already in use (by any process, another gateway included; a gateway killed a moment ago
//! is not one), on a file-descriptor limit
//! too low for `--connections`, on a control socket a running gateway owns, and on a
//! takeover with nobody to take over from. (A config that does not validate is covered in
//! `lifecycle.rs`; io_uring being unavailable cannot be arranged in a test without
//! privileges, so its decision is a unit test in `service/preflight.rs`.)

mod common;

use common::*;
use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `portcullis run --config <config> --workers 1 ARGS` and returns (exit code, stderr);
/// fails the test if it is still running after 10 s.
fn run_expecting_exit(config: &str, args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, format!("admin = \"\"\n{config}")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["run", "--config", path.to_str().unwrap(), "--workers", "1"])
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`portcullis run` still running after 10 s: it did not refuse to start");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status.code(), strip_ansi(&reader.join().unwrap()))
}

fn listener_at(address: &str) -> String {
    format!(
        "[[listeners]]\nname = \"public\"\naddress = \"{address}\"\n\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = {{ type = \"stock\", status = 200 }}\n"
    )
}

/// The `error: ...` line on stderr (the one line an operator reads).
fn error_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no `error:` line on stderr:\n{stderr}"))
}

// Rule: a port bound by another process refuses the start, naming the address and listener.
#[test]
fn port_bound_by_another_process_refuses_start() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let (code, stderr) = run_expecting_exit(&listener_at(&address), &[]);
    assert_ne!(code, Some(0));
    let line = error_line(&stderr);
    assert!(
        line.contains(&address) && line.contains("already in use") && line.contains("public"),
        "{line}"
    );
}

// Rule: a port served by a running gateway refuses the start (SO_REUSEPORT must not let a
// second gateway join it silently).
#[test]
fn port_served_by_a_running_gateway_refuses_start() {
    let first = Gateway::start(&listener_at("127.0.0.1:0"));
    let address = first.addr().to_string();
    let (code, stderr) = run_expecting_exit(&listener_at(&address), &[]);
    assert_ne!(code, Some(0));
    let line = error_line(&stderr);
    assert!(
        line.contains("already in use") && line.contains(&format!("(pid {})", first.pid())),
        "{stderr}"
    );
    assert_eq!(
        get(first.addr(), "/hello").status,
        200,
        "the first gateway still serves"
    );
}

// Rule: a gateway started at once after `kill -9` of the previous one on the same port
// serves: the listening sockets the killed process still holds (SIGKILL pending) or leaves
// while the kernel tears its io_uring down are not taken for a live gateway.
#[test]
fn restart_right_after_kill_9_serves() {
    let config = listener_at(&format!("127.0.0.1:{}", unused_port()));
    let mut first = Gateway::start_with_args(&config, &["--workers", "2"]);
    let mut idle = first.connect();
    assert_eq!(idle.roundtrip(get_req("/hello")).status, 200);
    let killed = Command::new("kill")
        .args(["-KILL", &first.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let second = Gateway::start(&config);
    first
        .wait_exit(Duration::from_secs(10))
        .expect("the killed gateway exits");
    assert_eq!(
        get(second.addr(), "/hello").status,
        200,
        "log:\n{}",
        second.log_text()
    );
    drop(idle);
}

// Rule: a connection target beyond any file-descriptor limit (2e9 descriptors: more than the
// kernel's fs.nr_open ceiling allows) refuses the start, naming the limit, the need and the
// remedy.
#[test]
fn fd_limit_too_low_for_connections_refuses_start() {
    let (code, stderr) = run_expecting_exit(
        &listener_at("127.0.0.1:0"),
        &["--connections", "1000000000"],
    );
    assert_ne!(code, Some(0));
    let line = error_line(&stderr);
    assert!(
        line.contains("file-descriptor limit") && line.contains("LimitNOFILE"),
        "{line}"
    );
}

// Rule: a control socket a running gateway answers on refuses a plain start (use --takeover).
#[test]
fn control_socket_of_a_running_gateway_refuses_start() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("control.sock");
    let control = control.to_str().unwrap();
    let first =
        Gateway::start_with_args(&listener_at("127.0.0.1:0"), &["--control-socket", control]);
    assert!(eventually(|| first
        .log_text()
        .contains("control socket ready")));
    let (code, stderr) =
        run_expecting_exit(&listener_at("127.0.0.1:0"), &["--control-socket", control]);
    assert_ne!(code, Some(0));
    assert!(error_line(&stderr).contains("--takeover"), "{stderr}");
}

// Rule: --takeover with no gateway on the control socket refuses the start, naming the path.
#[test]
fn takeover_without_a_running_gateway_refuses_start() {
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("nobody.sock");
    let control = control.to_str().unwrap();
    let (code, stderr) = run_expecting_exit(
        &listener_at("127.0.0.1:0"),
        &["--control-socket", control, "--takeover"],
    );
    assert_ne!(code, Some(0));
    assert!(error_line(&stderr).contains("nobody.sock"), "{stderr}");
}
