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

// Rule: a value of the wrong type or shape is refused in the operator's
// words (what the key takes, with an example, and what was found), naming
// the file, line and key; so is a TOML syntax error, with the nearest key.
#[test]
fn wrong_types_are_refused_in_operator_words() {
    let route = |backend_extra: &str, route_extra: &str| {
        format!("{LISTENER}[[deployments]]\nname = \"api\"\nlistener = \"public\"\n[[deployments.routes]]\npath = \"/a\"\n{route_extra}backend = {{ type = \"stock\", status = 200{backend_extra} }}\n")
    };
    let plan = |quota: &str| {
        format!("{LISTENER}{ROUTE}[[usage_plans]]\nname = \"gold\"\n[[usage_plans.entitlements]]\nname = \"e\"\ndeployments = [\"api\"]\nquota = {{ {quota} }}\n")
    };
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            format!("[timeouts]\nhead = \"fast\"\n{LISTENER}{ROUTE}"),
            2,
            "timeouts.head",
            "expected a number of seconds, like 15 or 0.5; found text \"fast\"",
        ),
        (
            format!("[upstream]\nidle_timeout = true\n{LISTENER}{ROUTE}"),
            2,
            "upstream.idle_timeout",
            "expected a number of seconds, like 15 or 0.5; found true",
        ),
        (
            format!("[limits]\nmax_head_bytes = \"8k\"\n{LISTENER}{ROUTE}"),
            2,
            "limits.max_head_bytes",
            "expected a whole number (0 or more), like 8192; found text \"8k\"",
        ),
        (
            format!("[limits]\nmax_body_bytes = -5\n{LISTENER}{ROUTE}"),
            2,
            "limits.max_body_bytes",
            "expected a whole number (0 or more), like 8192; found -5",
        ),
        (
            format!("{LISTENER}max_connections_per_ip = 1.5\n{ROUTE}"),
            4,
            "listeners[0].max_connections_per_ip",
            "expected a whole number from 0 to 4294967295, like 100; found 1.5",
        ),
        (
            route(", read_timeout = \"10s\"", ""),
            9,
            "deployments[0].routes[0].backend.read_timeout",
            "expected a number of seconds, like 15 or 0.5; found text \"10s\"",
        ),
        (
            route("", "").replace("status = 200", "status = \"OK\""),
            9,
            "deployments[0].routes[0].backend.status",
            "expected a whole number from 0 to 65535, like 200; found text \"OK\"",
        ),
        (
            route(", headers = [\"X-A: 1\"]", ""),
            9,
            "deployments[0].routes[0].backend.headers",
            "expected a table, like { name = \"value\" }; found a list",
        ),
        (
            route("", "methods = \"GET\"\n"),
            9,
            "deployments[0].routes[0].methods",
            "expected a list in square brackets, like [\"a\", \"b\"]; found text \"GET\"",
        ),
        (
            route("", "authorization = \"everyone\"\n"),
            9,
            "deployments[0].routes[0].authorization",
            "expected \"anonymous\", \"authenticated\" or { any_of = [\"scope\", ...] }",
        ),
        (
            route("", "").replace("type = \"stock\"", "type = \"ftp\""),
            9,
            "deployments[0].routes[0].backend.type",
            "\"ftp\" is not accepted here; expected \"http\", \"stock\" or \"dynamic\"",
        ),
        (
            format!("{LISTENER}name = 7\n{ROUTE}").replace("name = \"public\"\n", ""),
            3,
            "listeners[0].name",
            "expected text in double quotes, like \"...\"; found 7",
        ),
        (
            format!("{LISTENER}tls = {{ certificates = [], client_auth = {{ ca = \"ca.pem\", required = \"yes\" }} }}\n{ROUTE}"),
            4,
            "listeners[0].tls.client_auth.required",
            "expected true or false (without quotes); found text \"yes\"",
        ),
        (
            format!("limits = 5\n{LISTENER}{ROUTE}"),
            1,
            "limits",
            "expected a table: a [section] or { key = value, ... }; found 5",
        ),
        (
            format!("{LISTENER}[[deployments]]\nname = \"api\"\nlistener = \"public\"\nrate_limit = {{ requests_per_second = \"lots\" }}\n"),
            7,
            "deployments[0].rate_limit.requests_per_second",
            "expected a number of requests per second, like 100 or 0.5; found text \"lots\"",
        ),
        (
            plan("limit = 1.5, period = \"day\""),
            16,
            "usage_plans[0].entitlements[0].quota.limit",
            "expected a whole number (0 or more), like 100; found 1.5",
        ),
        (
            plan("limit = 10, period = \"weekly\""),
            16,
            "usage_plans[0].entitlements[0].quota.period",
            "\"weekly\" is not accepted here; expected \"minute\", \"hour\", \"day\", \"week\" or \"month\"",
        ),
        (
            format!("{LISTENER}port = 80\n{ROUTE}"),
            4,
            "listeners[0].port",
            "unknown key `port`; the keys here are",
        ),
        (
            format!("{LISTENER}address = 127.0.0.1:80\n{ROUTE}").replace("address = \"127.0.0.1:0\"\n", ""),
            3,
            "listeners[0].address",
            "not a number; text must be in double quotes, like \"value\"",
        ),
        (
            format!("{LISTENER}name = public\n{ROUTE}").replace("name = \"public\"\n", ""),
            3,
            "listeners[0].name",
            "text must be in double quotes, like \"value\"",
        ),
        (
            format!("[limits]\nmax_headers = 10\nmax_headers = 20\n{LISTENER}{ROUTE}"),
            3,
            "limits.max_headers",
            "this key is given twice",
        ),
        (
            format!("[limits\n{LISTENER}{ROUTE}"),
            1,
            "limits",
            "unclosed table, expected `]`",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (config, line, key, message) in &cases {
        std::fs::write(&path, config).unwrap();
        let at = format!("gateway.toml: line {line}, column ");
        let named = format!(": key `{key}`: {message}");
        assert_refused(key, &check_file(&path), &[&at, &named]);
    }
}
