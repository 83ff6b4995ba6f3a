//! Process lifecycle and command line: graceful shutdown on SIGTERM (in-flight requests
//! finish, exit status 0, no new connections), `portcullis check` on good and bad configs
//! (errors name the file, line and key), `run` on a missing file, and `--help`.

mod common;

use common::*;
use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output of a finished CLI run.
struct CliOutput {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `portcullis ARGS` with a 10 s limit (killed after that, which fails the test).
fn cli(args: &[&str]) -> CliOutput {
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn portcullis");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`portcullis {}` still running after 10 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    CliOutput {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: strip_ansi(&t_err.join().unwrap()),
    }
}

/// Writes `config` to `bad-config.toml` in a temp dir and runs `portcullis check` on it.
fn check(config: &str) -> (CliOutput, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-config.toml");
    std::fs::write(&path, config).unwrap();
    (cli(&["check", "--config", path.to_str().unwrap()]), dir)
}

/// 1-based number of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in config"))
        + 1
}

/// Every number N written as `line N` in `text`.
fn mentioned_lines(text: &str) -> Vec<usize> {
    text.match_indices("line ")
        .filter_map(|(i, m)| {
            let digits: String = text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            digits.parse().ok()
        })
        .collect()
}

/// Asserts `check` failed and its stderr names the file, one of `lines` as `line N`, a
/// column, and `key`.
fn assert_config_error(config: &str, lines: &[usize], key: &str) {
    let (out, _dir) = check(config);
    assert_ne!(out.code, Some(0), "check must fail; stdout: {}", out.stdout);
    let e = &out.stderr;
    assert!(
        e.contains("bad-config.toml"),
        "stderr must name the file: {e}"
    );
    assert!(
        mentioned_lines(e).iter().any(|n| lines.contains(n)),
        "stderr must say `line N` for N in {lines:?}: {e}"
    );
    assert!(e.contains("column"), "stderr must give a column: {e}");
    assert!(e.contains(key), "stderr must name {key:?}: {e}");
}

const LISTENER: &str = "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n";

/// Waits until every worker has left its serving loop for its drain (it stops
/// accepting as it does; `portcullis_workers` counts the workers still serving).
fn wait_drain_started(gw: &Gateway) {
    gw.wait_metric_until("portcullis_workers", "0 (every worker draining)", |n| {
        n == 0.0
    });
}

// Rule: SIGTERM lets an in-flight request finish with its 200, then the process exits with status 0.
#[test]
fn sigterm_drains_in_flight_request_and_exits_0() {
    let gate = Gate::new();
    let up = {
        let gate = gate.clone();
        RecordingUpstream::start(move |r| Reply::wait_for(&gate).then_ok(r.target.clone()))
    };
    let mut gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(get_req("/api/items/1"));
    up.wait_for_requests(1);
    gw.sigterm();
    // The request is still in flight (the upstream holds its answer) when the drain starts.
    wait_drain_started(&gw);
    gate.open();
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, "/v1/items/1".to_string()));
    drop(c);
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("gateway still running 10 s after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status {status:?}");
}

// Rule: after SIGTERM the gateway accepts no new requests (checked once the in-flight request has completed).
#[test]
fn no_new_connections_after_sigterm() {
    let gate = Gate::new();
    let up = {
        let gate = gate.clone();
        RecordingUpstream::start(move |r| Reply::wait_for(&gate).then_ok(r.target.clone()))
    };
    let gw = start_standard(&up, "");
    let addr = gw.addr();
    let mut c = gw.connect();
    c.send(get_req("/api/items/1"));
    up.wait_for_requests(1);
    gw.sigterm();
    wait_drain_started(&gw);
    gate.open();
    assert_eq!(c.read_response().status, 200);
    match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Err(_) => {} // refused: the listener is closed
        Ok(_) => {
            // Accepted by a lingering socket: it must not be served.
            let mut late = Client::connect(addr);
            let _ = late.try_send(get_req("/api/hello"));
            let rest = late.read_to_end_or_closed();
            assert!(
                rest.is_empty() || !rest.starts_with(b"HTTP/1.1 200"),
                "a connection made after SIGTERM was served"
            );
        }
    }
    drop(c);
    up.settle(gw);
    assert_eq!(up.requests().len(), 1);
}

// Rule: an idle gateway exits with status 0 on SIGTERM.
#[test]
fn idle_gateway_exits_0_on_sigterm() {
    let up = RecordingUpstream::ok();
    let mut gw = start_standard(&up, "");
    assert_eq!(get(gw.addr(), "/api/hello").status, 200);
    gw.sigterm();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("gateway still running 10 s after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

// Rule: `check` on a good config exits 0 and prints the listener, the deployment and its routes.
#[test]
fn check_good_config_prints_summary() {
    let (out, _dir) = check(&standard_config("127.0.0.1:9".parse().unwrap(), ""));
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    for name in ["public", "api", "/hello", "/items/{id}", "/files/{rest*}"] {
        assert!(
            out.stdout.contains(name),
            "summary must mention {name:?}:\n{}",
            out.stdout
        );
    }
}

// Rule: the shipped config/gateway.toml passes `check`.
#[test]
fn shipped_config_passes_check() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/gateway.toml");
    let out = cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
}

// Rule: every shipped example config passes `check` and lists its routes.
#[test]
fn example_configs_pass_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = cli(&["check", "--config", path.to_str().unwrap()]);
            assert_eq!(out.code, Some(0), "{}: {}", path.display(), out.stderr);
            checked += 1;
        }
    }
    assert!(checked > 0, "no example configs found in {}", dir.display());
}

// Rule: an unknown key is an error naming the file, its line and the key.
#[test]
fn check_unknown_key_fails() {
    let config = format!("{LISTENER}colour = \"blue\"\n");
    assert_config_error(&config, &[line_of(&config, "colour")], "colour");
}

// Rule: an unknown key inside a route's back end is an error naming its line and the key.
#[test]
fn check_unknown_backend_key_fails() {
    let config = format!(
        "{LISTENER}\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\npath_prefix = \"/api\"\n\n[[deployments.routes]]\npath = \"/x\"\n[deployments.routes.backend]\ntype = \"http\"\nurl = \"http://127.0.0.1:9/x\"\nretries = 3\n"
    );
    assert_config_error(&config, &[line_of(&config, "retries")], "retries");
}

// Rule: a value of the wrong type is an error naming its line and the key path.
#[test]
fn check_bad_type_fails() {
    let config = format!("[limits]\nmax_headers = \"many\"\n\n{LISTENER}");
    assert_config_error(
        &config,
        &[line_of(&config, "max_headers")],
        "limits.max_headers",
    );
}

// Rule: a back-end URL of the wrong type is an error naming the full key path.
#[test]
fn check_bad_backend_url_type_fails() {
    let config = format!(
        "{LISTENER}\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\npath_prefix = \"/api\"\n\n[[deployments.routes]]\npath = \"/x\"\n[deployments.routes.backend]\ntype = \"http\"\nurl = 42\n"
    );
    assert_config_error(
        &config,
        &[line_of(&config, "url = 42")],
        "deployments[0].routes[0].backend.url",
    );
}

// Rule: a deployment naming an unknown listener is an error naming its line and the key path.
#[test]
fn check_unknown_listener_fails() {
    let config = format!(
        "{LISTENER}\n[[deployments]]\nname = \"api\"\nlistener = \"nope\"\npath_prefix = \"/api\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = {{ type = \"stock\", status = 200 }}\n"
    );
    assert_config_error(
        &config,
        &[line_of(&config, "\"nope\"")],
        "deployments[0].listener",
    );
}

// Rule: two routes with the same path and methods in one deployment are an error naming the second one.
#[test]
fn check_duplicate_route_fails() {
    let config = format!(
        "{LISTENER}\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\npath_prefix = \"/api\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = {{ type = \"stock\", status = 200 }}\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = {{ type = \"stock\", status = 201 }}\n"
    );
    let second_path = config
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("path = \"/hello\""))
        .nth(1)
        .unwrap()
        .0
        + 1;
    // The error may point at the second route's table header or at its `path`.
    assert_config_error(
        &config,
        &[second_path - 1, second_path],
        "deployments[0].routes[1]",
    );
}

// Rule: invalid TOML syntax is an error naming the file and the line.
#[test]
fn check_invalid_syntax_fails() {
    let config = "[[listeners]]\nname = \"public\naddress = \"127.0.0.1:0\"\n";
    let (out, _dir) = check(config);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("bad-config.toml"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        mentioned_lines(&out.stderr).contains(&2),
        "stderr must say `line 2`: {}",
        out.stderr
    );
}

// Rule: `run` on a missing config file exits non-zero with a message naming the file.
#[test]
fn run_missing_config_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let out = cli(&["run", "--config", path.to_str().unwrap(), "--workers", "1"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("missing.toml"),
        "stderr: {}",
        out.stderr
    );
}

// Rule: `run` on an invalid config fails fast naming the file and line, without serving.
#[test]
fn run_invalid_config_fails_fast() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-config.toml");
    std::fs::write(&path, format!("{LISTENER}colour = \"blue\"\n")).unwrap();
    let out = cli(&["run", "--config", path.to_str().unwrap(), "--workers", "1"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("bad-config.toml"),
        "stderr: {}",
        out.stderr
    );
    assert!(
        mentioned_lines(&out.stderr).contains(&4),
        "stderr must say `line 4`: {}",
        out.stderr
    );
}

// Rule: `portcullis --help` exits 0 and lists the run and check commands.
#[test]
fn top_level_help() {
    let out = cli(&["--help"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("run") && out.stdout.contains("check"),
        "{}",
        out.stdout
    );
}

// Rule: `portcullis run --help` exits 0 and documents --config and --workers.
#[test]
fn run_help() {
    let out = cli(&["run", "--help"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(
        out.stdout.contains("--config") && out.stdout.contains("--workers"),
        "{}",
        out.stdout
    );
}

// Rule: `portcullis check --help` exits 0 and documents --config.
#[test]
fn check_help() {
    let out = cli(&["check", "--help"]);
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    assert!(out.stdout.contains("--config"), "{}", out.stdout);
}
