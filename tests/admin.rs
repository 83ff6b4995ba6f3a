//! The admin endpoint: health and readiness, `/config` (generation, digest,
//! inventory in plain fields, no debug dumps, no secrets), `/metrics` counters
//! matching the traffic sent, and `check --admin` printing what a candidate
//! file would change.

mod common;

use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::process::Command;

const CONFIG: &str = r#"
admin = "127.0.0.1:0"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/hello"
backend = { type = "stock", status = 200, body = "hi\n" }
"#;

/// Parses Prometheus text: `name{labels}` -> value; panics on a malformed line.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "duplicate series {series}"
        );
    }
    samples
}

// Rule: /healthz answers ok and /readyz answers ready once the worker serves.
#[test]
fn health_and_readiness() {
    let gw = Gateway::start(CONFIG);
    let admin = gw.admin_addr();
    assert_eq!(get(admin, "/healthz").status, 200);
    assert!(eventually(|| get(admin, "/readyz").status == 200));
}

// Rule: /config reports the generation, the file's SHA-256 and the routes; a reload bumps the generation.
#[test]
fn config_reports_generation_and_digest() {
    let gw = Gateway::start(CONFIG);
    let admin = gw.admin_addr();
    let report = get(admin, "/config").text();
    assert!(report.contains("\"generation\":1"), "{report}");
    let digest = report
        .split("\"digest\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(digest.len(), 64, "{report}");
    assert!(report.contains("/api/hello"), "{report}");
    let extra =
        "[[deployments.routes]]\npath = \"/new\"\nbackend = { type = \"stock\", status = 204 }\n";
    std::fs::write(gw.config_path(), format!("{CONFIG}{extra}")).unwrap();
    assert!(
        eventually(|| get(admin, "/config").text().contains("\"generation\":2")),
        "log:\n{}",
        gw.log_text()
    );
}

// Rule: /metrics parses and its request counters match the requests sent, by status class.
#[test]
fn metrics_count_requests_by_class() {
    let gw = Gateway::start(CONFIG);
    let admin = gw.admin_addr();
    for _ in 0..3 {
        assert_eq!(get(gw.addr(), "/api/hello").status, 200);
    }
    for _ in 0..2 {
        assert_eq!(get(gw.addr(), "/api/missing").status, 404);
    }
    let hello = "deployment=\"api\",route=\"/api/hello\",methods=\"*\"";
    let expected = [
        (
            "portcullis_responses_total{status_class=\"2xx\"}".to_string(),
            3.0,
        ),
        (
            "portcullis_responses_total{status_class=\"4xx\"}".to_string(),
            2.0,
        ),
        (
            format!("portcullis_requests_total{{{hello},status_class=\"2xx\"}}"),
            3.0,
        ),
        (
            "portcullis_decisions_total{decision=\"routing.noRoute\"}".to_string(),
            2.0,
        ),
        (
            "portcullis_decisions_total{decision=\"stockResponse.served\"}".to_string(),
            3.0,
        ),
        ("portcullis_request_duration_seconds_count".to_string(), 5.0),
        ("portcullis_connections_accepted_total".to_string(), 5.0),
        ("portcullis_config_generation".to_string(), 1.0),
    ];
    let matches = || {
        let samples = parse_metrics(&get(admin, "/metrics").text());
        expected
            .iter()
            .all(|(series, value)| samples.get(series) == Some(value))
    };
    assert!(
        eventually(matches),
        "metrics:\n{}",
        get(admin, "/metrics").text()
    );
}

// Rule: `check --admin` prints what a candidate file would change against the running generation.
#[test]
fn check_against_running_gateway() {
    let gw = Gateway::start(CONFIG);
    let admin = gw.admin_addr();
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate.toml");
    let extra =
        "[[deployments.routes]]\npath = \"/new\"\nbackend = { type = \"stock\", status = 204 }\n";
    std::fs::write(&candidate, format!("{CONFIG}{extra}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "check",
            "--config",
            candidate.to_str().unwrap(),
            "--admin",
            &admin.to_string(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("against running generation 1")
            && stdout.contains("routes +1 [api * /api/new]"),
        "{stdout}"
    );
}

// Rule: unknown admin paths answer 404, methods other than GET and HEAD 405
// with `Allow`, and a HEAD gets the head (with the GET's length) and no body.
#[test]
fn admin_methods_and_paths() {
    let gw = Gateway::start(CONFIG);
    let admin = gw.admin_addr();
    for (raw, status, allow) in [
        ("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", 404, None),
        ("GET /metrics/ HTTP/1.1\r\nHost: a\r\n\r\n", 404, None),
        (
            "POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
            405,
            Some("GET, HEAD"),
        ),
        (
            "DELETE /config HTTP/1.1\r\nHost: a\r\n\r\n",
            405,
            Some("GET, HEAD"),
        ),
    ] {
        let r = request(admin, raw);
        assert_eq!((r.status, r.header("allow")), (status, allow), "{raw:?}");
    }
    let mut c = Client::connect(admin);
    c.send("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    let head = c.read_head_response();
    assert_eq!(
        (head.status, head.header("content-length")),
        (200, Some("3"))
    );
    assert!(
        c.read_to_end_or_closed().is_empty(),
        "a HEAD answer has no body"
    );
}

// Rule: once SIGTERM starts the drain, /readyz answers 503 (a load balancer
// stops sending) while /healthz still answers 200 and the request in flight finishes.
#[test]
fn readyz_fails_while_draining() {
    // The upstream holds its answer until the test has seen the drain's health checks.
    let gate = Gate::new();
    let up = {
        let gate = gate.clone();
        RecordingUpstream::start(move |r| Reply::wait_for(&gate).then_ok(r.target.clone()))
    };
    let gw = start_standard(&up, "");
    let admin = gw.admin_addr();
    assert!(eventually(|| get(admin, "/readyz").status == 200));
    let mut c = gw.connect();
    c.send(get_req("/api/items/1"));
    up.wait_for_requests(1);
    gw.sigterm();
    assert!(
        eventually(|| get(admin, "/readyz").status == 503),
        "{}",
        gw.log_text()
    );
    assert_eq!(get(admin, "/healthz").status, 200);
    gate.open();
    assert_eq!(c.read_response().status, 200);
}

// Rule: /config and /usage show names and fingerprints, never a secret: not a
// back-end URL's query (API keys live there), a stock answer's header values
// or body, a header transformation's value, nor a client token or its digest.
#[test]
fn config_report_shows_no_secrets() {
    let digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    let config = format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
usage_plans = {{ token_locations = ["header:X-Client-Token"] }}

[[deployments.routes]]
path = "/stock"
backend = {{ type = "stock", status = 200, headers = {{ "X-Key" = "STOCKHEADERSECRET" }}, body = "STOCKBODYSECRET" }}

[[deployments.routes]]
path = "/up"
backend = {{ type = "http", url = "http://127.0.0.1:9/x?api_key=URLQUERYSECRET" }}
request_headers = {{ set = [{{ name = "Authorization", value = "Bearer HEADERSETSECRET" }}] }}

[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "all"
deployments = ["api"]

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{{ name = "one", token = "CLIENTTOKENSECRET0123" }}, {{ name = "two", token_sha256 = "{digest}" }}]
"#
    );
    let gw = Gateway::start(&config);
    let admin = gw.admin_addr();
    for path in ["/config", "/usage"] {
        let body = get(admin, path).text();
        assert!(body.contains("acme"), "{path}: {body}");
        assert!(
            !body.contains("SECRET") && !body.contains(digest),
            "{path} leaks: {body}"
        );
    }
}

const PLAIN: &str = r#"
[limits]
max_head_bytes = 16384

[[listeners]]
name = "public"
address = "127.0.0.1:0"
allow = ["10.0.0.0/8", "127.0.0.1"]
deny = ["10.66.0.0/16"]
trusted_proxies = ["10.0.0.5/32"]

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
network = { allow = ["192.0.2.0/24", "2001:db8::/32"], on_deny = "close" }
usage_plans = { token_locations = ["header:X-Client-Token", "query:api_key"] }
rate_limit = { requests_per_second = 50, key = "client_ip" }

[[deployments.routes]]
path = "/up"
methods = ["GET"]
backend = { type = "http", url = "http://127.0.0.1:9/x?k=SECRET" }

[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "all"
deployments = ["api"]
quota = { limit = 1000, period = "day" }

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{ name = "one", token = "CLIENTTOKENSECRET0123" }]
"#;

/// Every string value in a JSON document.
fn strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

// Rule: /config is a JSON document of plain fields: CIDRs and token locations as written,
// limits as numbers, routes by name with their back end's target and a fingerprint,
// subscribers with their plans, clients by name.
#[test]
fn config_report_has_plain_fields() {
    let gw = Gateway::start(PLAIN);
    let report: serde_json::Value =
        serde_json::from_str(&get(gw.admin_addr(), "/config").text()).unwrap();
    let inventory = &report["inventory"];
    let listener = &inventory["listeners"][0];
    assert_eq!(
        (
            &listener["name"],
            &listener["allow"],
            &listener["deny"],
            &listener["trusted_proxies"]
        ),
        (
            &json!("public"),
            &json!(["10.0.0.0/8", "127.0.0.1"]),
            &json!(["10.66.0.0/16"]),
            &json!(["10.0.0.5/32"])
        )
    );
    let settings = &inventory["settings"];
    assert_eq!(settings["limits"]["max_head_bytes"], json!(16384));
    assert_eq!(settings["limits"]["max_uri_bytes"], json!(4096));
    assert_eq!(settings["timeouts"]["head"].as_f64(), Some(15.0));
    assert_eq!(settings["admin"], json!("127.0.0.1:0"));
    assert_eq!(settings["access_log"], json!(null));
    let deployment = &inventory["deployments"][0];
    assert_eq!(
        deployment["usage_plans"]["token_locations"],
        json!(["header:X-Client-Token", "query:api_key"])
    );
    assert_eq!(
        deployment["network"],
        json!({ "allow": ["192.0.2.0/24", "2001:db8::/32"], "deny": [], "on_deny": "close" })
    );
    assert_eq!(deployment["rate_limit"]["key"], json!("client_ip"));
    let route = &inventory["routes"][0];
    assert_eq!(
        (&route["name"], &route["backend"], &route["methods"]),
        (
            &json!("api GET /api/up"),
            &json!("http://127.0.0.1:9"),
            &json!(["GET"])
        )
    );
    let fingerprint = route["fingerprint"].as_str().unwrap_or_default();
    assert!(
        fingerprint.len() == 16 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit()),
        "{route}"
    );
    assert_eq!(
        inventory["subscribers"],
        json!([{ "name": "acme", "usage_plans": ["gold"] }])
    );
    assert_eq!(inventory["clients"][0]["name"], json!("acme/one"));
    assert_eq!(
        inventory["usage_plans"][0]["entitlements"][0]["quota"]["period"],
        json!("day")
    );
}

// Rule: no value in /config is a Rust debug dump (`Some(`, `None`, `Name { ... }`), and
// none holds a secret.
#[test]
fn config_report_has_no_debug_syntax() {
    let gw = Gateway::start(PLAIN);
    let text = get(gw.admin_addr(), "/config").text();
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut values = Vec::new();
    strings(&report, &mut values);
    assert!(values.len() > 20, "{text}");
    for value in values {
        assert!(
            !value.contains("Some(")
                && !value.contains("None")
                && !value.contains("{ ")
                && !value.contains("SECRET"),
            "{value:?} in {text}"
        );
    }
}

// Rule: `check --admin` names listener rule and settings changes against the running gateway.
#[test]
fn check_names_listener_and_settings_changes() {
    let gw = Gateway::start(CONFIG);
    let dir = tempfile::tempdir().unwrap();
    let candidate = dir.path().join("candidate.toml");
    let edited = CONFIG
        .replace(
            "address = \"127.0.0.1:0\"",
            "address = \"127.0.0.1:0\"\nallow = [\"127.0.0.0/8\"]",
        )
        .replace(
            "admin = \"127.0.0.1:0\"",
            "admin = \"127.0.0.1:0\"\n[limits]\nmax_headers = 50",
        );
    std::fs::write(&candidate, edited).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config", candidate.to_str().unwrap()])
        .args(["--admin", &gw.admin_addr().to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("settings ~1 [limits.max_headers]; listeners ~1 [public (allow)]"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Rule: clients that connect to the admin endpoint and send nothing do not hold
// up a health check or a scrape behind them (each would hold a one-at-a-time
// endpoint for its 2 s read timeout).
#[test]
fn silent_admin_clients_do_not_block_health_checks() {
    let gw = Gateway::start(CONFIG);
    let admin = gw.admin_addr();
    let silent: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(admin).unwrap())
        .collect();
    // No pause needed: the silent clients are queued ahead of the health check (a
    // listener hands out connections in the order they were made).
    assert_eq!(get(admin, "/healthz").status, 200);
    assert_eq!(get(admin, "/metrics").status, 200);
    drop(silent);
}
