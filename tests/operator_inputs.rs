//! What an operator types and hand-edits, refused clearly: command-line
//! mistakes, config files that are not config files, and configs that parse
//! but that `run` could never serve. Each case must exit non-zero with one
//! `error:` line naming the problem (and the file, for config problems),
//! never a panic or a backtrace.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

const LISTENER: &str = "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n";
const ROUTE: &str = "[[deployments]]\nname = \"api\"\nlistener = \"public\"\n\n[[deployments.routes]]\npath = \"/hello\"\nbackend = { type = \"stock\", status = 200 }\n";

fn portcullis(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("spawn portcullis")
}

/// Asserts a failed run with one `error:` line containing every `needle`.
fn assert_refused(what: &str, out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "{what}: must exit non-zero (not by a signal): {:?}\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{what}: panicked:\n{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errors.len(),
        1,
        "{what}: one error line expected:\n{stderr}"
    );
    for needle in needles {
        assert!(
            errors[0].contains(needle),
            "{what}: {needle:?} not in {:?}",
            errors[0]
        );
    }
}

fn check_file(path: &Path) -> Output {
    portcullis(&["check", "--config", path.to_str().unwrap()])
}

// Rule: command-line mistakes are refused by name with a non-zero exit.
#[test]
fn command_line_mistakes_are_refused() {
    for (args, needle) in [
        (&["--bogus"][..], "--bogus"),
        (&["run", "--bogus"], "--bogus"),
        (&["run", "--config"], "--config"),
        (&["run", "--workers", "0"], "--workers"),
        (&["run", "--workers", "100000"], "--workers"),
        (&["run", "--workers", "-1"], "-1"),
        (&["run", "--audit-period", "0"], "--audit-period"),
        (&["frobnicate"], "frobnicate"),
    ] {
        assert_refused(&args.join(" "), &portcullis(args), &[needle]);
    }
}

// Rule: a config path that is missing, a directory, empty, binary, not UTF-8 or
// nested beyond reason is refused naming the file and the problem.
#[test]
fn files_that_are_not_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let deep = format!("a = {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let cases = [
        (dir.path().join("missing.toml"), "No such file"),
        (dir.path().to_path_buf(), "directory"),
        (write("empty.toml", b""), "listeners"),
        (
            write("binary.toml", &[0, 159, 146, 150, 0xff, 7, 0]),
            "UTF-8",
        ),
        (write("latin1.toml", b"admin = \"caf\xe9\"\n"), "UTF-8"),
        (write("deep.toml", deep.as_bytes()), "line 1"),
        (write("bom.toml", b"\xef\xbb\xbf[listeners"), "line 1"),
    ];
    for (path, needle) in &cases {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert_refused(name, &check_file(path), &[name, needle]);
    }
}

// Rule: listeners (and the admin endpoint) whose addresses one process cannot
// bind together are refused by `check`, naming both, instead of `run` failing
// later with "already in use by another process"; so is a back end on port 0.
#[test]
fn configs_that_cannot_be_served_are_refused_by_check() {
    let port = unused_port();
    let two = |a: &str, b: &str| {
        format!(
            "admin = \"\"\n[[listeners]]\nname = \"public\"\naddress = \"{a}\"\n[[listeners]]\nname = \"other\"\naddress = \"{b}\"\n{ROUTE}"
        )
    };
    let cases = [
        (
            "same address",
            two(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{port}")),
            vec!["listeners[1].address", "`public`"],
        ),
        (
            "wildcard and loopback on one port",
            two(&format!("0.0.0.0:{port}"), &format!("127.0.0.1:{port}")),
            vec!["listeners[1].address", "overlaps listener `public`"],
        ),
        (
            "dual-stack wildcard and IPv4",
            two(&format!("[::]:{port}"), &format!("127.0.0.1:{port}")),
            vec!["listeners[1].address", "overlaps"],
        ),
        (
            "admin on a listener's address",
            format!(
                "admin = \"127.0.0.1:{port}\"\n[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{port}\"\n{ROUTE}"
            ),
            vec!["key `admin`", "listener `public`"],
        ),
        (
            "back end on port 0",
            format!("admin = \"\"\n{LISTENER}{ROUTE}[[deployments.routes]]\npath = \"/up\"\nbackend = {{ type = \"http\", url = \"http://127.0.0.1:0/\" }}\n"),
            vec!["deployments[0].routes[1].backend.url"],
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (what, config, needles) in &cases {
        std::fs::write(&path, config).unwrap();
        let mut all = vec!["gateway.toml"];
        all.extend(needles);
        assert_refused(what, &check_file(&path), &all);
    }
}

// Rule: addresses that share a port but not an address (two loopback
// addresses, or IPv4 and IPv6 loopback) pass `check`.
#[test]
fn distinct_addresses_on_one_port_pass_check() {
    let port = unused_port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    let config = format!(
        "admin = \"127.0.0.2:{port}\"\n[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:{port}\"\n[[listeners]]\nname = \"v6\"\naddress = \"[::1]:{port}\"\n{ROUTE}"
    );
    std::fs::write(&path, config).unwrap();
    let out = check_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Rule: the admin endpoint off loopback passes `check` with a warning; the
// default (no `admin` key: 127.0.0.1:9901) gets none.
#[test]
fn admin_off_loopback_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (admin, warned) in [
        ("admin = \"0.0.0.0:9901\"\n", true),
        ("admin = \"[::]:9901\"\n", true),
        ("", false),
    ] {
        std::fs::write(&path, format!("{admin}{LISTENER}{ROUTE}")).unwrap();
        let out = check_file(&path);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{admin}: {stdout}");
        assert_eq!(
            stdout.contains("warning: the admin endpoint listens on"),
            warned,
            "{admin}: {stdout}"
        );
    }
}

// Rule: `run` with a path it cannot use (config missing or a directory, a
// control socket in a missing directory) exits non-zero naming that path.
#[test]
fn run_with_unusable_paths_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, format!("admin = \"\"\n{LISTENER}{ROUTE}")).unwrap();
    let config = config.to_str().unwrap();
    let missing = dir.path().join("missing.toml");
    let socket = dir.path().join("no-such-dir/control.sock");
    let dir_path = dir.path().to_str().unwrap();
    for (args, needle) in [
        (
            vec!["run", "--no-watch", "--config", missing.to_str().unwrap()],
            "missing.toml",
        ),
        (vec!["run", "--no-watch", "--config", dir_path], dir_path),
        (
            vec![
                "run",
                "--no-watch",
                "--workers",
                "1",
                "--config",
                config,
                "--control-socket",
                socket.to_str().unwrap(),
            ],
            "no-such-dir/control.sock",
        ),
    ] {
        let out = portcullis(&args);
        assert_refused(&args.join(" "), &out, &[needle]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.lines().filter(|l| l.contains(needle)).count(),
            1,
            "the error is said once:\n{stderr}"
        );
    }
}
