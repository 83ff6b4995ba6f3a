//! CORS over real sockets: a preflight is answered by the gateway (the back
//! end sees nothing), an allowed origin's call gets the CORS fields, a
//! disallowed origin gets none, credentials echo the origin, a 401 carries the
//! fields so the page can read it, and the back end's own `Access-Control-*`
//! fields are replaced by the gateway's.

mod auth_support;
mod common;

use auth_support::*;
use common::*;

fn gateway(up: &RecordingUpstream, deployment_extra: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
cors = {{ allowed_origins = ["https://app.test"], allowed_methods = ["GET", "PUT"], allowed_headers = ["Authorization", "Content-Type"], exposed_headers = ["X-Trace"], max_age_in_seconds = 600 }}
{deployment_extra}

[[deployments.routes]]
path = "/data"
methods = ["GET", "PUT"]
authorization = "anonymous"
backend = {{ type = "http", url = "http://{up}/data" }}

[[deployments.routes]]
path = "/creds"
cors = {{ allowed_origins = ["*"], is_allow_credentials_enabled = true }}
authorization = "anonymous"
backend = {{ type = "http", url = "http://{up}/creds" }}

[[deployments.routes]]
path = "/plain"
methods = ["GET"]
authorization = "anonymous"
backend = {{ type = "stock", status = 200, body = "plain" }}
"#,
        up = up.addr()
    ))
}

fn preflight(gw: &Gateway, path: &str, origin: &str, method: &str, headers: &str) -> Response {
    request(
        gw.addr(),
        format!(
            "OPTIONS {path} HTTP/1.1\r\nHost: gw.test\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: {method}\r\nAccess-Control-Request-Headers: {headers}\r\n\r\n"
        ),
    )
}

// Rule: an allowed preflight is answered 204 with the CORS fields; the back end is not touched.
#[test]
fn preflight_answered_by_gateway() {
    let up = RecordingUpstream::ok();
    let gw = gateway(&up, "");
    let r = preflight(
        &gw,
        "/api/data",
        "https://app.test",
        "PUT",
        "content-type, authorization",
    );
    assert_eq!(
        (
            r.status,
            r.header("access-control-allow-origin"),
            r.header("access-control-allow-methods"),
            r.header("access-control-allow-headers"),
            r.header("access-control-max-age"),
            r.header("vary"),
        ),
        (
            204,
            Some("https://app.test"),
            Some("GET, PUT"),
            Some("content-type, authorization"),
            Some("600"),
            Some("Origin")
        )
    );
    up.assert_received_nothing(gw);
}

// Rule: a preflight from a disallowed origin, or for a disallowed method or header, gets no CORS fields.
#[test]
fn preflight_refused_without_cors_fields() {
    let up = RecordingUpstream::ok();
    let gw = gateway(&up, "");
    let answers = [
        preflight(&gw, "/api/data", "https://evil.test", "PUT", "content-type"),
        preflight(&gw, "/api/data", "https://app.test", "GET", "x-custom"),
        // No route takes DELETE on this path: OPTIONS is then an ordinary request (405).
        preflight(
            &gw,
            "/api/data",
            "https://app.test",
            "DELETE",
            "content-type",
        ),
    ];
    let seen = answers.map(|r| {
        (
            r.status,
            r.header("access-control-allow-origin").map(str::to_string),
        )
    });
    assert_eq!(seen, [(204, None), (204, None), (405, None)]);
    up.assert_received_nothing(gw);
}

// Rule: an allowed origin's call gets Allow-Origin, Vary and Expose-Headers; a disallowed one none.
#[test]
fn simple_request_headers() {
    let up = RecordingUpstream::start(|_| {
        Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nAccess-Control-Allow-Origin: *\r\nX-Trace: t\r\n\r\nok")
    });
    let gw = gateway(&up, "");
    let call = |origin: &str| {
        request(
            gw.addr(),
            format!("GET /api/data HTTP/1.1\r\nHost: gw.test\r\nOrigin: {origin}\r\n\r\n"),
        )
    };
    let allowed = call("https://app.test");
    let refused = call("https://evil.test");
    assert_eq!(
        (
            allowed.status,
            allowed.header_all("access-control-allow-origin"),
            allowed.header("access-control-expose-headers"),
            allowed.header("vary"),
        ),
        (
            200,
            vec!["https://app.test"],
            Some("X-Trace"),
            Some("Origin")
        )
    );
    // The call itself still happens (CORS is enforced by the browser); it just carries no CORS fields.
    assert_eq!(
        (
            refused.status,
            refused.header("access-control-allow-origin")
        ),
        (200, None)
    );
}

// Rule: with credentials, the origin is echoed (never `*`) with Allow-Credentials.
#[test]
fn credentials_echo_origin() {
    let up = RecordingUpstream::ok();
    let gw = gateway(&up, "");
    let r = request(
        gw.addr(),
        "GET /api/creds HTTP/1.1\r\nHost: gw.test\r\nOrigin: http://127.0.0.1:8080\r\n\r\n",
    );
    assert_eq!(
        (
            r.header("access-control-allow-origin"),
            r.header("access-control-allow-credentials")
        ),
        (Some("http://127.0.0.1:8080"), Some("true"))
    );
}

// Rule: a 401 from authentication carries the CORS fields, and a preflight needs no token.
#[test]
fn unauthorized_answer_readable_by_page() {
    let up = RecordingUpstream::ok();
    let dir = tempfile::tempdir().unwrap();
    let path = write_jwks(dir.path());
    let gw = gateway(
        &up,
        &jwt_auth_table(&path, ", is_anonymous_access_allowed = true"),
    );
    let r = request(
        gw.addr(),
        "GET /api/data HTTP/1.1\r\nHost: gw.test\r\nOrigin: https://app.test\r\nAuthorization: Bearer bad.token.here\r\n\r\n",
    );
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (401, Some("https://app.test"))
    );
    let p = preflight(&gw, "/api/data", "https://app.test", "GET", "authorization");
    assert_eq!(p.status, 204);
}

// Rule: a route without CORS treats OPTIONS as any other method (here 405).
#[test]
fn route_without_cors_not_answered() {
    let up = RecordingUpstream::ok();
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"

[[deployments.routes]]
path = "/x"
methods = ["GET"]
backend = {{ type = "http", url = "http://{}/x" }}
"#,
        up.addr()
    ));
    let r = preflight(&gw, "/x", "https://app.test", "GET", "x");
    assert_eq!(
        (r.status, r.header("access-control-allow-origin")),
        (405, None)
    );
}
