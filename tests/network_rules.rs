//! Network rules: listener allow/deny at accept (closed before a byte is
//! read), deployment allow/deny (403 or close), the client address behind
//! `trusted_proxies` (a forged `X-Forwarded-For` from an untrusted peer changes
//! nothing), the per-address connection cap, and IPv6.

mod common;

use common::*;
use std::net::{IpAddr, SocketAddr};
use std::thread;
use std::time::Duration;

fn config(listener_extra: &str, deployment_extra: &str, address: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "{address}"
{listener_extra}

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
{deployment_extra}

[[deployments.routes]]
path = "/hello"
backend = {{ type = "stock", status = 200, body = "hi\n" }}
"#
    )
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Sends a GET from `from` and returns the status, or None if the connection was closed unanswered.
fn status_from(addr: SocketAddr, from: IpAddr, extra_headers: &str) -> Option<u16> {
    let mut c = Client::connect_from(addr, from);
    let _ = c.try_send(format!(
        "GET /api/hello HTTP/1.1\r\nHost: x\r\n{extra_headers}\r\n"
    ));
    c.try_read_response(false).ok().map(|r| r.status)
}

// Rule: a peer denied by the listener is closed without an answer; an allowed one is served.
#[test]
fn listener_deny_closes_before_reading() {
    let gw = Gateway::start(&config("deny = [\"127.0.0.2/32\"]", "", "127.0.0.1:0"));
    assert_eq!(
        (
            status_from(gw.addr(), ip("127.0.0.2"), ""),
            status_from(gw.addr(), ip("127.0.0.1"), "")
        ),
        (None, Some(200))
    );
}

// Rule: with an allow list, addresses outside it are closed; deny wins over allow.
#[test]
fn listener_allow_list_and_deny_wins() {
    let listener = "allow = [\"127.0.0.0/8\"]\ndeny = [\"127.0.0.3/32\"]";
    let gw = Gateway::start(&config(listener, "", "127.0.0.1:0"));
    assert_eq!(
        (
            status_from(gw.addr(), ip("127.0.0.1"), ""),
            status_from(gw.addr(), ip("127.0.0.3"), "")
        ),
        (Some(200), None)
    );
}

// Rule: a deployment rule answers 403 to a denied client, or closes when on_deny = "close".
#[test]
fn deployment_rule_forbids_or_closes() {
    let forbid = Gateway::start(&config(
        "",
        "network = { deny = [\"127.0.0.2/32\"] }",
        "127.0.0.1:0",
    ));
    let close = Gateway::start(&config(
        "",
        "network = { deny = [\"127.0.0.2/32\"], on_deny = \"close\" }",
        "127.0.0.1:0",
    ));
    assert_eq!(
        (
            status_from(forbid.addr(), ip("127.0.0.2"), ""),
            status_from(forbid.addr(), ip("127.0.0.1"), ""),
            status_from(close.addr(), ip("127.0.0.2"), ""),
        ),
        (Some(403), Some(200), None)
    );
}

// Rule: behind a trusted proxy the client is the right-most untrusted X-Forwarded-For entry.
#[test]
fn trusted_proxy_client_address() {
    let gw = Gateway::start(&config(
        "trusted_proxies = [\"127.0.0.1/32\"]",
        "network = { allow = [\"10.1.0.0/16\"] }",
        "127.0.0.1:0",
    ));
    let from = ip("127.0.0.1");
    assert_eq!(
        (
            status_from(gw.addr(), from, "X-Forwarded-For: 10.1.2.3\r\n"),
            status_from(gw.addr(), from, "X-Forwarded-For: 10.1.2.3, 192.0.2.9\r\n"),
            status_from(
                gw.addr(),
                from,
                "X-Forwarded-For: 192.0.2.9, 10.1.2.3, 127.0.0.1\r\n"
            ),
        ),
        (Some(200), Some(403), Some(200))
    );
}

// Rule: a forged X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
#[test]
fn forged_forwarded_for_is_ignored() {
    let gw = Gateway::start(&config(
        "",
        "network = { allow = [\"10.1.0.0/16\"] }",
        "127.0.0.1:0",
    ));
    assert_eq!(
        status_from(gw.addr(), ip("127.0.0.1"), "X-Forwarded-For: 10.1.2.3\r\n"),
        Some(403)
    );
}

// Rule: connections past max_connections_per_ip are closed at once; closing one frees a place.
#[test]
fn per_address_connection_cap() {
    let gw = Gateway::start(&config("max_connections_per_ip = 2", "", "127.0.0.1:0"));
    let mut a = gw.connect();
    let mut b = gw.connect();
    assert_eq!(
        (
            a.roundtrip(get_req("/api/hello")).status,
            b.roundtrip(get_req("/api/hello")).status
        ),
        (200, 200)
    );
    assert_eq!(status_from(gw.addr(), ip("127.0.0.1"), ""), None);
    drop(a);
    // The place is free once the gateway has seen `a` go: it counts the connection
    // closed as it lets go of its place.
    gw.wait_metric_until("portcullis_connections_active", "1 (b only)", |n| n <= 1.0);
    assert_eq!(status_from(gw.addr(), ip("127.0.0.1"), ""), Some(200));
}

// Rule: IPv6 rules apply to IPv6 peers.
#[test]
fn ipv6_rules() {
    let gw = Gateway::start(&config("deny = [\"::1/128\"]", "", "[::1]:0"));
    assert_eq!(status_from(gw.addr(), ip("::1"), ""), None);
}

// Rule: a malformed CIDR is a config error naming the entry's key.
#[test]
fn bad_cidr_is_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, config("deny = [\"10.0.0.1/8\"]", "", "127.0.0.1:0")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("listeners[0].deny[0]"),
        "{stderr}"
    );
}

// Rule: refusals are summarised in one aggregated audit line per period, not one line per attempt.
#[test]
fn refusals_are_aggregated_in_the_audit_log() {
    let gw = Gateway::start_with_args(
        &config("deny = [\"127.0.0.2/32\"]", "", "127.0.0.1:0"),
        &["--audit-period", "1"],
    );
    let started = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(status_from(gw.addr(), ip("127.0.0.2"), ""), None);
    }
    // Summaries come at least a period (1 s) apart, and each refusal is in the first
    // one after it: refusals made within `spread` can only be in the summaries of
    // floor(spread / 1 s) + 2 periods (2 when the 20 attempts take under a second).
    let spread = started.elapsed();
    let periods = spread.as_secs() as usize + 2;
    // The 20 refusals may straddle several periods: add up every summary line.
    let refused_in = |log: &str| -> u64 {
        log.lines()
            .filter(|l| l.contains("security: refusals"))
            .filter_map(|l| l.split("connections_refused_by_network_rule=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while refused_in(&gw.log_text()) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "no summary:\n{}",
            gw.log_text()
        );
        thread::sleep(Duration::from_millis(100));
    }
    let log = gw.log_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("security: refusals"))
        .count();
    assert!(
        refused_in(&log) == 20 && lines <= periods,
        "{lines} lines for refusals made within {spread:?}:\n{log}"
    );
}

// Rule: an encoded path cannot reach a restricted deployment's routes through another deployment's catch-all.
#[test]
fn encoded_path_does_not_bypass_deployment_rule() {
    let config = r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "admin"
listener = "public"
path_prefix = "/admin"
network = { deny = ["127.0.0.1/32"] }
[[deployments.routes]]
path = "/{rest*}"
backend = { type = "stock", status = 200, body = "admin\n" }

[[deployments]]
name = "public"
listener = "public"
[[deployments.routes]]
path = "/{rest*}"
backend = { type = "stock", status = 200, body = "public\n" }
"#;
    let gw = Gateway::start(config);
    assert_eq!(
        (
            get(gw.addr(), "/admin/x").status,
            get(gw.addr(), "/%61dmin/x").status,
            get(gw.addr(), "/other").status
        ),
        (403, 403, 200)
    );
}
