//! `portcullis import oci` end to end: OCI exports (fixtures in
//! `tests/fixtures/oci/`, written from OCI's API reference) are imported by the
//! real binary, the result passes `portcullis check`, and a gateway serving it
//! is driven over loopback sockets against a real upstream: client tokens,
//! rate limits and quotas, JWT and scopes, path parameters, header
//! transformations, stock answers, CORS, closed deployments. Also the report
//! (JSON paths, `--strict`), envelopes, bad input and token digests.

mod auth_support;
mod common;
mod oci_support;

use common::*;
use oci_support::*;
use std::path::{Path, PathBuf};
const ACME: &str = "acme-prod-token-0123456789";
const SEED_TOKEN: &str = "a-prod-client-token-5f1e0c7d9b";

// Rule: the seed case — one deployment, a rate limit per client address, a
// header token and one subscriber — imports with nothing left over, passes
// check, and serves as OCI did: 403 without a valid token, the integration
// path reaches the back end without the token, 429 over the rate.
#[test]
fn seed_case_imports_checks_and_serves() {
    let upstream = RecordingUpstream::start(|r| Reply::ok(format!("hello via {}", r.target)));
    let dir = tempfile::tempdir().unwrap();
    let vars = [("__UPSTREAM__", upstream.addr().to_string())];
    let files = [
        fixture(dir.path(), "seed/deployment.json", &vars),
        fixture(dir.path(), "seed/usage-plan.json", &vars),
        fixture(dir.path(), "seed/subscriber.json", &vars),
    ];
    let out = dir.path().join("gateway.toml");
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let run = import(
        &refs,
        &["--listener", "public=127.0.0.1:0", "--strict"],
        &out,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("everything was carried over"),
        "{}",
        run.stderr
    );
    assert_checks(&out);
    let toml = std::fs::read_to_string(&out).unwrap();
    let gw = Gateway::start(&toml);

    assert_eq!(call(&gw, "/oic/hello", &[]).status, 403);
    assert_eq!(
        call(
            &gw,
            "/oic/hello",
            &[("X-Client-Token", "not-a-token-0123456789")]
        )
        .status,
        403
    );
    let ok = call(&gw, "/oic/hello", &[("X-Client-Token", SEED_TOKEN)]);
    assert_eq!(ok.status, 200, "{}", gw.log_text());
    let seen = upstream.only_request();
    assert_eq!(
        (seen.target.as_str(), seen.has_header("x-client-token")),
        (
            "/ic/api/integration/v1/flows/rest/HELLO_WORLD/1.0/hello",
            false
        )
    );
    let limited = call(&gw, "/oic/hello", &[("X-Client-Token", SEED_TOKEN)]);
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    let post = request(
        gw.addr(),
        "POST /oic/hello HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
}

// Rule: a deployment with every policy kind behaves as in OCI once imported:
// JWT from static keys (JWK and PEM), scopes, anonymous routes, header
// transformations, path parameters and catch-alls in back-end URLs, stock
// answers, CORS preflights, query tokens, the quota (429 past it), routes and
// deployments that could not be carried closed or absent.
#[test]
fn every_policy_kind_imports_checks_and_serves() {
    let upstream = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let files = full_fixtures(dir.path(), &upstream);
    let out = dir.path().join("gateway.toml");
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let run = import(&refs, &["--listener", "public=127.0.0.1:0"], &out);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_checks(&out);
    let toml = std::fs::read_to_string(&out).unwrap();
    let gw = Gateway::start(&toml);
    let token = ("X-Client-Token", ACME);

    // Anonymous route under authentication: only the client token is needed.
    assert_eq!(call(&gw, "/orders/health", &[]).status, 403);
    let health = call(&gw, "/orders/health", &[token]);
    assert_eq!(
        (
            health.status,
            health.text().as_str(),
            health.header("content-type")
        ),
        (200, "{\"status\":\"up\"}", Some("application/json"))
    );
    // Scopes: no JWT → 401, a JWT without the scope → 403.
    assert_eq!(call(&gw, "/orders/items/42", &[token]).status, 401);
    let write_only = jwt("rsa", "orders:write");
    assert_eq!(
        call(
            &gw,
            "/orders/items/42",
            &[token, ("Authorization", &write_only)]
        )
        .status,
        403
    );
    // JWK key, path parameter, request and response header transformations.
    let reader = jwt("rsa", "orders:read");
    let item = call(
        &gw,
        "/orders/items/42",
        &[
            token,
            ("Authorization", &reader),
            ("Cookie", "session=1"),
            ("X-Legacy-Id", "7"),
        ],
    );
    assert_eq!(item.status, 200, "{}", gw.log_text());
    assert_eq!(item.header("x-served-by"), Some("portcullis"));
    let seen = upstream.wait_for_requests(1).remove(0);
    assert_eq!(
        (
            seen.target.as_str(),
            seen.header("x-user"),
            seen.header("x-item"),
            seen.header("x-order-ref"),
            seen.has_header("cookie"),
            seen.has_header("x-client-token"),
        ),
        (
            "/backend/items/42",
            Some("alice"),
            Some("42"),
            Some("7"),
            false,
            false
        )
    );
    // PEM key and the query-parameter token, which the back end never sees.
    let pem_reader = jwt("pem", "orders:admin");
    let by_query = call(
        &gw,
        &format!("/orders/items/43?api_key={ACME}"),
        &[("Authorization", &pem_reader)],
    );
    assert_eq!(by_query.status, 200);
    assert_eq!(upstream.wait_for_requests(2)[1].target, "/backend/items/43");
    // A catch-all parameter in the back-end URL.
    assert_eq!(
        call(&gw, "/orders/files/css/site.css", &[token]).status,
        200
    );
    assert_eq!(
        upstream.wait_for_requests(3)[2].target,
        "/static/css/site.css"
    );
    // Routes that were not imported are unknown; the closed deployment refuses.
    assert_eq!(call(&gw, "/orders/invoices", &[token]).status, 404);
    assert_eq!(call(&gw, "/orders/reports", &[token]).status, 404);
    assert_eq!(call(&gw, "/partner/ping", &[]).status, 403);
    // A CORS preflight is answered by the gateway, without a token.
    let preflight = request(
        gw.addr(),
        "OPTIONS /orders/items/1 HTTP/1.1\r\nHost: gw.test\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: GET\r\n\r\n",
    );
    assert_eq!(
        (
            preflight.status,
            preflight.header("access-control-allow-origin")
        ),
        (204, Some("https://app.example.com"))
    );
    // The gold plan's quota: 6 a day; 4 used above.
    let statuses: Vec<u16> = (0..3)
        .map(|_| call(&gw, "/orders/health", &[token]).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
}

// Rule: what could not be carried over is listed on stderr with its file and
// JSON path, written as a comment where it would be, and `--strict` makes the
// command fail (status 2) while still writing the config.
#[test]
fn report_names_json_paths_and_strict_fails() {
    let upstream = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let files = full_fixtures(dir.path(), &upstream);
    let out = dir.path().join("gateway.toml");
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let run = import(&refs, &["--strict"], &out);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    let toml = std::fs::read_to_string(&out).unwrap();
    for path in [
        "$.data.specification.routes[3].backend.functionId",
        "$.data.specification.routes[4].requestPolicies.queryParameterValidations",
        "$.data.specification.routes[4].responsePolicies.responseCacheStore",
        "$.data.specification.routes[5].backend.url",
        "$.data.specification.loggingPolicies.accessLog.isEnabled",
        "$.specification.requestPolicies.authentication",
        "$.specification.requestPolicies.mutualTls.allowedSans",
        "$.data.entitlements[2].targets[0].deploymentId",
        "$.data.items[0].clients[0].token",
        "$.data.items[1].usagePlans[0]",
    ] {
        assert!(
            run.stderr.contains(path),
            "stderr lacks {path}:\n{}",
            run.stderr
        );
        assert!(
            toml.lines()
                .any(|l| l.starts_with("# not carried over:") && l.contains(path)),
            "config lacks a comment on {path}:\n{toml}"
        );
    }
    // The function route is written commented out, where it was.
    assert!(toml.contains("# path = \"/invoices\""), "{toml}");
    assert_checks(&out);
}

// Rule: a `get` export in the CLI's `data` envelope, the bare object and a
// `list` export's `data.items` all import the same subscriber; the OCI CLI's
// kebab-case member names read as the API's camel case.
#[test]
fn envelopes_and_cli_spelling_import_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("__UPSTREAM__", "127.0.0.1:9".to_string())];
    let deployment = fixture(dir.path(), "seed/deployment.json", &vars);
    let plan = fixture(dir.path(), "seed/usage-plan.json", &vars);
    let enveloped = fixture(dir.path(), "seed/subscriber.json", &vars);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&enveloped).unwrap()).unwrap();
    let bare = dir.path().join("subscriber-bare.json");
    std::fs::write(&bare, value["data"].to_string()).unwrap();
    let listed = dir.path().join("subscriber-list.json");
    let list = serde_json::json!({"data": {"items": [value["data"]]}});
    std::fs::write(&listed, list.to_string()).unwrap();
    let kebab = dir.path().join("subscriber-kebab.json");
    std::fs::write(&kebab, kebab_keys(&value).to_string()).unwrap();
    let subscribers_of = |file: &Path| {
        let out = dir.path().join("out.toml");
        let run = import(&[&deployment, &plan, file], &["--strict"], &out);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let toml = std::fs::read_to_string(&out).unwrap();
        let at = toml.find("[[subscribers]]").expect("a subscriber");
        toml[at..].to_string()
    };
    let reference = subscribers_of(&enveloped);
    assert!(reference.contains("name = \"A\""), "{reference}");
    for other in [&bare, &listed, &kebab] {
        assert_eq!(subscribers_of(other), reference, "{}", other.display());
    }
}

// Rule: bad input is an error naming the file and the JSON path, exit status
// 1, never a panic; nothing is written.
#[test]
fn bad_input_names_the_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("not-json-deployment.json", "{\"data\": ", "not JSON"),
        (
            "shape-deployment.json",
            r#"{"pathPrefix": "/a", "specification": {"routes": "none"}}"#,
            "$.specification.routes: expected an array, found a string",
        ),
        (
            "type-deployment.json",
            r#"{"pathPrefix": "/a", "specification": {"routes": [{"path": "/x", "backend": {"type": "SOAP_BACKEND"}}]}}"#,
            "$.specification.routes[0].backend.type: unknown back-end type `SOAP_BACKEND`",
        ),
        (
            "policy-deployment.json",
            r#"{"data": {"pathPrefix": "/a", "specification": {"requestPolicies": {"authentication": {"type": "SAML"}}, "routes": []}}}"#,
            "$.data.specification.requestPolicies.authentication.type: unknown authentication type `SAML`",
        ),
        (
            "summary-deployment.json",
            r#"{"data": {"items": [{"id": "ocid1.x", "pathPrefix": "/a"}]}}"#,
            "$.data.items[0]: a deployment summary",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = dir.path().join(format!("{name}.toml"));
        let run = import(&[&path], &[], &out);
        assert_eq!(run.code, Some(1), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected) && run.stderr.contains(name),
            "{name}: stderr lacks `{expected}`:\n{}",
            run.stderr
        );
        assert!(!out.exists(), "{name}: nothing is written on an error");
    }
}

// Rule: client tokens are written as SHA-256 digests unless --plain-tokens;
// a token too short for a plain `token` stays a digest, and a client the
// export has no token for gets a placeholder digest and a finding.
#[test]
fn tokens_hashed_by_default_plain_on_request() {
    let upstream = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let files = full_fixtures(dir.path(), &upstream);
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let hashed_out = dir.path().join("hashed.toml");
    let run = import(&refs, &[], &hashed_out);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let hashed = std::fs::read_to_string(&hashed_out).unwrap();
    let digest = portcullis::config::digest::sha256_hex(ACME);
    assert!(
        hashed.contains(&format!("token_sha256 = \"{digest}\"")),
        "{hashed}"
    );
    assert!(
        !hashed.contains(ACME) && !hashed.contains("\"acme-ci\""),
        "{hashed}"
    );
    assert!(hashed.contains("PLACEHOLDER"), "{hashed}");
    assert_checks(&hashed_out);

    let plain_out = dir.path().join("plain.toml");
    let run = import(&refs, &["--plain-tokens"], &plain_out);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let plain = std::fs::read_to_string(&plain_out).unwrap();
    assert!(plain.contains(&format!("token = \"{ACME}\"")), "{plain}");
    let short = portcullis::config::digest::sha256_hex("acme-ci");
    assert!(
        plain.contains(&format!("token_sha256 = \"{short}\"")),
        "{plain}"
    );
    assert_checks(&plain_out);
}

// Rule: without --out the config goes to stdout and the report to stderr.
#[test]
fn stdout_carries_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("__UPSTREAM__", "127.0.0.1:9".to_string())];
    let deployment = fixture(dir.path(), "seed/deployment.json", &vars);
    let run = portcullis(&[
        "import",
        "oci",
        "--deployment",
        deployment.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let parsed: toml::Table = toml::from_str(&run.stdout).expect("TOML on stdout");
    assert_eq!(
        (
            parsed["listeners"][0]["address"].as_str(),
            parsed["deployments"][0]["path_prefix"].as_str(),
        ),
        (Some("0.0.0.0:8080"), Some("/oic"))
    );
    assert!(run.stderr.contains("import report"), "{}", run.stderr);
}

// Rule: no input shape makes the importer panic: every member of every
// fixture replaced in turn by null, a number, a string, an empty array and an
// empty object gives a config or an error, never a panic.
#[test]
fn mutated_exports_never_panic() {
    use portcullis::import::oci::{import, Options};
    use serde_json::{json, Value};
    let upstream = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let files = full_fixtures(dir.path(), &upstream);
    for file in &files {
        let original: Value =
            serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let mutants = [Value::Null, json!(-1), json!("x"), json!([]), json!({})];
        for at in 0..count_nodes(&original) {
            for mutant in &mutants {
                let mut value = original.clone();
                replace_node(&mut value, &mut at.clone(), mutant);
                let path = dir.path().join("mutant-deployment.json");
                std::fs::write(&path, value.to_string()).unwrap();
                let name = file.file_name().unwrap().to_string_lossy();
                let mut options = Options {
                    deployments: vec![],
                    usage_plans: vec![],
                    subscribers: vec![],
                    listener: ("public".into(), "127.0.0.1:0".into()),
                    plain_tokens: false,
                };
                if name.contains("deployment") {
                    options.deployments.push(path);
                } else if name.contains("plan") {
                    options.usage_plans.push(path);
                } else {
                    options.subscribers.push(path);
                }
                let _ = import(&options);
            }
        }
    }
}

// Rule: the result is compiled as `check` would: two deployments whose
// routes collide on the one listener are a finding (so --strict fails); the
// same deployment given twice is an error naming the second one's `id`.
#[test]
fn collisions_are_reported_and_repeats_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("__UPSTREAM__", "127.0.0.1:9".to_string())];
    let first = fixture(dir.path(), "seed/deployment.json", &vars);
    let text = std::fs::read_to_string(&first).unwrap();
    let second = dir.path().join("other-deployment.json");
    std::fs::write(&second, text.replace("deploymenthello", "deploymentother")).unwrap();
    let out = dir.path().join("out.toml");
    let run = import(&[&first, &second], &["--strict"], &out);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("`portcullis check` refuses the result")
            && run.stderr.contains("repeats methods"),
        "{}",
        run.stderr
    );
    let run = import(&[&first, &first], &[], &dir.path().join("twice.toml"));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("$.data.id: this deployment is given twice"),
        "{}",
        run.stderr
    );
}
