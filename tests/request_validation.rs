//! Request validation over real sockets: required header fields and query
//! parameters with allowed values and patterns, allowed content types, a JSON
//! Schema for bodies (read whole before forwarding, within a size limit), in
//! enforcing and permissive mode; refusals are RFC 9457 problem documents;
//! validation runs after authentication; `check` refuses bad rules.

mod common;

use common::*;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["orderId", "amount"],
  "properties": {
    "orderId": { "type": "string", "pattern": "^[A-Z]{2}[0-9]+$" },
    "amount": { "type": "number", "minimum": 0 }
  }
}"#;

/// A gateway with an `orders` route validated by `rules` (in `mode`), a
/// schema file beside the config, and an access log.
struct Setup {
    gw: Gateway,
    up: RecordingUpstream,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn setup(mode: &str, rules: &str, deployment: &str) -> Setup {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("order.schema.json");
    std::fs::write(&schema, SCHEMA).unwrap();
    let log = dir.path().join("access.log");
    let text = format!(
        r#"
[access_log]
path = "{log}"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
{deployment}

[[deployments.routes]]
path = "/orders"
backend = {{ type = "http", url = "http://{up}/orders" }}
[deployments.routes.validation]
mode = "{mode}"
{rules}
"#,
        log = log.display(),
        up = up.addr(),
        rules = rules.replace("SCHEMA_FILE", schema.to_str().unwrap()),
    );
    let gw = Gateway::start(&text);
    Setup {
        gw,
        up,
        log,
        _dir: dir,
    }
}

const FIELD_RULES: &str = r#"
headers = [
  { name = "X-Tenant", pattern = "[a-z]{3,8}" },
  { name = "X-Channel", values = ["web", "mobile"], required = false },
]
query = [{ name = "version", values = ["1", "2"] }, { name = "trace", pattern = "[0-9a-f]{8}", required = false }]
content_types = ["application/json", "text/*"]
"#;

fn post(gw: &Gateway, target: &str, fields: &str, body: &str) -> Response {
    request(
        gw.addr(),
        format!(
            "POST {target} HTTP/1.1\r\nHost: gw.test\r\n{fields}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The failed rules of a problem document, as `rule:name:detail`.
fn failed_rules(r: &Response) -> Vec<String> {
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let v: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(v["status"].as_u64(), Some(r.status as u64));
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{}:{}:{}",
                e["rule"].as_str().unwrap(),
                e["name"].as_str().unwrap(),
                e["detail"].as_str().unwrap()
            )
        })
        .collect()
}

// Rule: a request that satisfies every field rule is forwarded unchanged.
#[test]
fn valid_request_is_forwarded() {
    let s = setup("enforcing", FIELD_RULES, "");
    let r = post(
        &s.gw,
        "/api/orders?version=2&trace=0badcafe",
        "X-Tenant: acme\r\nX-Channel: web\r\nContent-Type: application/json; charset=utf-8\r\n",
        "{}",
    );
    assert_eq!(r.status, 200);
    let got = s.up.only_request();
    assert_eq!(
        (got.target.as_str(), got.body.as_slice()),
        ("/orders?version=2&trace=0badcafe", &b"{}"[..])
    );
}

// Rule: enforcing mode answers 400 with one problem entry per failed rule, and forwards nothing.
#[test]
fn each_field_rule_fails_in_the_problem_document() {
    let s = setup("enforcing", FIELD_RULES, "");
    let r = post(
        &s.gw,
        "/api/orders?version=3&trace=xyz",
        "X-Channel: fax\r\nContent-Type: application/xml\r\n",
        "<a/>",
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        failed_rules(&r),
        [
            "header:X-Tenant:missing",
            "header:X-Channel:not one of the allowed values",
            "query:version:not one of the allowed values",
            "query:trace:does not match the pattern",
            "content_type:Content-Type:not an allowed media type",
        ]
    );
    // The pattern must match the whole value; a body without Content-Type fails.
    let r = post(
        &s.gw,
        "/api/orders?version=1",
        "X-Tenant: acme-corp\r\n",
        "x",
    );
    assert_eq!(
        failed_rules(&r),
        [
            "header:X-Tenant:does not match the pattern",
            "content_type:Content-Type:missing"
        ]
    );
    // A request without a body has no content type to check; a missing query parameter fails.
    let r = request(
        s.gw.addr(),
        "GET /api/orders HTTP/1.1\r\nHost: gw.test\r\nX-Tenant: acme\r\n\r\n",
    );
    assert_eq!(failed_rules(&r), ["query:version:missing"]);
    s.up.assert_received_nothing(s.gw);
}

// Rule: permissive mode forwards a failing request and marks it in the access log and the decision counters.
#[test]
fn permissive_mode_forwards_and_marks() {
    let s = setup("permissive", FIELD_RULES, "");
    let r = post(
        &s.gw,
        "/api/orders?version=9",
        "Content-Type: text/csv\r\n",
        "a,b",
    );
    assert_eq!(r.status, 200);
    let ok = post(
        &s.gw,
        "/api/orders?version=1",
        "X-Tenant: acme\r\nContent-Type: text/csv\r\n",
        "a,b",
    );
    assert_eq!(ok.status, 200);
    assert_eq!(s.up.requests().len(), 2);
    let lines = wait_lines(&s.log, 2);
    let decisions: Vec<&str> = lines
        .iter()
        .map(|l| l["decision"].as_str().unwrap())
        .collect();
    assert_eq!(
        decisions,
        [
            "validation.requestFailedButAllowed",
            "httpBackend.requestForwarded"
        ]
    );
    let metrics = s.gw.metrics();
    assert!(
        metrics.contains("validation.requestFailedButAllowed"),
        "no counter for the permissive decision"
    );
}

/// Waits for `n` access-log lines and parses them.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let mut lines = Vec::new();
    let found = eventually(|| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        lines = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        lines.len() >= n
    });
    assert!(found, "fewer than {n} access-log lines");
    lines
}

const BODY_RULES: &str = r#"
content_types = ["application/json"]
body_schema = "SCHEMA_FILE"
max_body_bytes = 4096
"#;

// Rule: a body that satisfies the schema is forwarded byte for byte; one that does not is refused with the failing locations, never the client's values.
#[test]
fn json_schema_pass_and_fail() {
    let s = setup("enforcing", BODY_RULES, "");
    let json = "Content-Type: application/json\r\n";
    let good = r#"{"orderId":"AB123","amount":12.5}"#;
    assert_eq!(post(&s.gw, "/api/orders", json, good).status, 200);
    let r = post(
        &s.gw,
        "/api/orders",
        json,
        r#"{"orderId":"secret-value","amount":-1}"#,
    );
    assert_eq!(r.status, 400);
    let rules = failed_rules(&r);
    assert_eq!(rules.len(), 2, "{rules:?}");
    assert!(
        rules.iter().any(|f| f.starts_with("body:/orderId:")),
        "{rules:?}"
    );
    assert!(
        rules.iter().any(|f| f.starts_with("body:/amount:")),
        "{rules:?}"
    );
    assert!(!r.text().contains("secret-value"), "{}", r.text());
    let missing = post(&s.gw, "/api/orders", json, r#"{"orderId":"AB1"}"#);
    assert_eq!(missing.status, 400);
    let not_json = post(&s.gw, "/api/orders", json, "{oops");
    assert_eq!(failed_rules(&not_json), ["body::not valid JSON"]);
    assert_eq!(s.up.only_request().body, good.as_bytes());
}

// Rule: a body sent in pieces is read whole, validated, then forwarded intact.
#[test]
fn body_in_pieces_is_validated_whole() {
    let s = setup("enforcing", BODY_RULES, "");
    let body = format!(
        r#"{{"orderId":"ZZ9","amount":1,"note":"{}"}}"#,
        "n".repeat(3000)
    );
    let head = format!(
        "POST /api/orders HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut c = s.gw.connect();
    c.stream.write_all(head.as_bytes()).unwrap();
    for piece in body.as_bytes().chunks(700) {
        c.stream.write_all(piece).unwrap();
        c.stream.flush().unwrap();
        // Separate reads on the gateway's side, not one segment.
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = c.read_response();
    assert_eq!(r.status, 200);
    assert_eq!(s.up.only_request().body, body.as_bytes());
}

// Rule: a body over max_body_bytes is 413, a chunked body 411, and a body held back behind `Expect: 100-continue` 417; none is forwarded.
#[test]
fn framing_the_schema_cannot_read() {
    let s = setup("enforcing", BODY_RULES, "");
    let big = format!(
        r#"{{"orderId":"AB1","amount":1,"pad":"{}"}}"#,
        "x".repeat(5000)
    );
    let r = post(
        &s.gw,
        "/api/orders",
        "Content-Type: application/json\r\n",
        &big,
    );
    assert_eq!(r.status, 413);
    let chunked = request(
        s.gw.addr(),
        "POST /api/orders HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    );
    assert_eq!(chunked.status, 411);
    let expect = request(
        s.gw.addr(),
        "POST /api/orders HTTP/1.1\r\nHost: gw.test\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    assert_eq!(expect.status, 417);
    s.up.assert_received_nothing(s.gw);
}

// Rule: validation comes after authentication: a caller without a token gets 401, not a validation answer.
#[test]
fn validation_runs_after_the_policies() {
    let s = setup(
        "enforcing",
        FIELD_RULES,
        r#"authentication = { type = "jwt", issuers = ["https://issuer.test"], audiences = ["a"], public_keys = { type = "static_keys", keys = [{ kid = "k", format = "json_web_key", kty = "oct", k = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", alg = "HS256" }] } }"#,
    );
    let r = post(&s.gw, "/api/orders", "", "x");
    assert_eq!(r.status, 401);
}

/// Runs `portcullis check` on a route with `rules`; returns (success, output).
fn check(rules: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.schema.json"), SCHEMA).unwrap();
    std::fs::write(dir.path().join("bad.schema.json"), r#"{"type": 5}"#).unwrap();
    let text = format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"

[[deployments.routes]]
path = "/x"
backend = {{ type = "stock", status = 200 }}
validation = {{ {rules} }}
"#
    );
    check_config_in(dir.path(), &text)
}

// Rule: `check` refuses rules that cannot work, naming the key; a schema path is relative to the config file.
#[test]
fn check_refuses_bad_rules() {
    let cases = [
        (
            r#"headers = [{ name = "bad name" }]"#,
            "validation.headers[0].name",
        ),
        (
            r#"query = [{ name = "q", pattern = "([" }]"#,
            "validation.query[0].pattern",
        ),
        (r#"content_types = ["json"]"#, "validation.content_types[0]"),
        (r#"body_schema = "missing.json""#, "validation.body_schema"),
        (
            r#"body_schema = "bad.schema.json""#,
            "not a usable JSON Schema",
        ),
        (r#"mode = "strict""#, "validation.mode"),
    ];
    for (rules, expected) in cases {
        let (ok, text) = check(rules);
        assert!(
            !ok && text.contains(expected),
            "{rules}: expected {expected:?} in {text}"
        );
    }
    let (ok, text) = check(r#"body_schema = "order.schema.json", max_body_bytes = 100"#);
    assert!(ok, "{text}");
}
