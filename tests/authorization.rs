//! Route authorization over real sockets: `anonymous`, the default
//! (`authenticated` under a deployment with authentication), and
//! `{ any_of = [scopes] }` read from `scope` or `scp` (403 without a scope,
//! 401 without a token); `check` refuses a route that needs a caller on a
//! deployment without authentication, and an anonymous route under
//! authentication that does not allow anonymous access (as OCI does).

mod auth_support;
mod common;

use auth_support::*;
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::json;
use std::net::SocketAddr;

fn gateway(upstream: &RecordingUpstream) -> (Gateway, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_jwks(dir.path());
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
{}

[[deployments.routes]]
path = "/health"
authorization = "anonymous"
backend = {{ type = "stock", status = 200, body = "up" }}

[[deployments.routes]]
path = "/orders"
backend = {{ type = "http", url = "http://{up}/orders" }}

[[deployments.routes]]
path = "/admin"
authorization = {{ any_of = ["admin", "orders:write"] }}
backend = {{ type = "http", url = "http://{up}/admin" }}
"#,
        jwt_auth_table(&path, ", is_anonymous_access_allowed = true"),
        up = upstream.addr()
    ));
    (gw, dir)
}

fn call(addr: SocketAddr, path: &str, token: Option<&str>) -> Response {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    request(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n{auth}\r\n"),
    )
}

// Rule: an anonymous route needs no token; the default route needs one.
#[test]
fn anonymous_and_default_authenticated() {
    let upstream = RecordingUpstream::ok();
    let (gw, _dir) = gateway(&upstream);
    let token = keys().token(Algorithm::ES256, &claims(""));
    assert_eq!(
        (
            call(gw.addr(), "/api/health", None).status,
            call(gw.addr(), "/api/orders", None).status,
            call(gw.addr(), "/api/orders", Some(&token)).status,
        ),
        (200, 401, 200)
    );
}

// Rule: any_of passes with one listed scope from `scope` or `scp`, else 403 (401 without token).
#[test]
fn any_of_scopes() {
    let upstream = RecordingUpstream::ok();
    let (gw, _dir) = gateway(&upstream);
    let with_scope = |scope: &str| keys().token(Algorithm::RS256, &claims(scope));
    let mut scp_array = claims("");
    scp_array["scp"] = json!(["read", "admin"]);
    let scp_array = keys().token(Algorithm::EdDSA, &scp_array);
    let denied = call(gw.addr(), "/api/admin", Some(&with_scope("orders:read")));
    assert_eq!(
        (
            call(
                gw.addr(),
                "/api/admin",
                Some(&with_scope("orders:read orders:write"))
            )
            .status,
            call(gw.addr(), "/api/admin", Some(&scp_array)).status,
            denied.status,
            denied.header("www-authenticate"),
            call(gw.addr(), "/api/admin", None).status,
        ),
        (
            200,
            200,
            403,
            Some("Bearer error=\"insufficient_scope\""),
            401
        )
    );
    upstream.assert_received_only(gw, &["/admin", "/admin"]);
}

/// Runs `portcullis check` on a config with one route carrying `route_extra`
/// under a deployment carrying `deployment_extra`; returns (success, stderr).
fn check(deployment_extra: &str, route_extra: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
{deployment_extra}

[[deployments.routes]]
path = "/x"
{route_extra}
backend = {{ type = "stock", status = 200 }}
"#
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

// Rule: `check` refuses a route that needs a caller when the deployment cannot authenticate one.
#[test]
fn check_refuses_authorization_without_authentication() {
    let (ok, stderr) = check("", "authorization = { any_of = [\"admin\"] }");
    assert!(
        !ok && stderr.contains("deployments[0].routes[0].authorization"),
        "{stderr}"
    );
}

// Rule: `check` refuses an anonymous route under authentication without anonymous access.
#[test]
fn check_refuses_anonymous_route_without_anonymous_access() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_jwks(dir.path());
    let (ok, stderr) = check(&jwt_auth_table(&path, ""), "authorization = \"anonymous\"");
    assert!(
        !ok && stderr.contains("is_anonymous_access_allowed"),
        "{stderr}"
    );
}
