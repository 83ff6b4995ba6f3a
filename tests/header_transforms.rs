//! Header transformations over real sockets, on the request the back end
//! receives and on the response the client receives: set (overwrite, append,
//! skip if present), rename, remove (block list), keep only (allow list), and
//! the context variables (`request.path`, `request.auth`, `request.headers`,
//! `request.query`, `subscriber.name`). `portcullis check` refuses a
//! transformation of a header the gateway owns.

mod auth_support;
mod common;

use auth_support::*;
use common::*;
use jsonwebtoken::Algorithm;

/// An upstream whose answers carry a few headers to transform.
fn upstream() -> RecordingUpstream {
    RecordingUpstream::start(|_| {
        Reply::raw(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Internal: secret\r\nX-Old-Name: v\r\nCache-Control: no-store\r\nX-Keep: 1\r\n\r\nok",
        )
    })
}

fn gateway(up: &RecordingUpstream, auth: &str, routes: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
{auth}
{}
"#,
        routes.replace("UP", &up.addr().to_string())
    ))
}

// Rule: set overwrites, appends or skips; rename and remove act on the client's fields.
#[test]
fn request_set_rename_remove() {
    let up = upstream();
    let gw = gateway(
        &up,
        "",
        r#"
[[deployments.routes]]
path = "/items/{id}"
backend = { type = "http", url = "http://UP/items/{id}" }
request_headers = { set = [
    { name = "X-Item", value = "item-${request.path[id]}" },
    { name = "X-Tag", value = "gw", if_exists = "append" },
    { name = "X-Default", value = "fallback", if_exists = "skip" },
    { name = "X-Absent", value = "added", if_exists = "skip" },
    { name = "X-From-Query", value = "${request.query[q]}/${request.headers[X-Src]}" },
    { name = "X-Subscriber", value = "[${subscriber.name}]" },
], rename = [{ from = "X-Old", to = "X-New" }], remove = ["X-Secret"] }
"#,
    );
    let r = request(
        gw.addr(),
        "GET /api/items/42?q=hello HTTP/1.1\r\nHost: gw.test\r\nX-Item: client\r\nX-Tag: client\r\nX-Default: mine\r\nX-Old: renamed\r\nX-Secret: s3cr3t\r\nX-Src: src\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let got = up.only_request();
    assert_eq!(
        (
            got.header_all("x-item"),
            got.header_all("x-tag"),
            got.header_all("x-default"),
            got.header("x-absent"),
            got.header("x-new"),
            got.has_header("x-old"),
            got.has_header("x-secret"),
            got.header("x-from-query"),
            got.header("x-subscriber"),
        ),
        (
            vec!["item-42"],
            vec!["client", "gw"],
            vec!["mine"],
            Some("added"),
            Some("renamed"),
            false,
            false,
            Some("hello/src"),
            Some("[]"),
        )
    );
}

// Rule: keep_only passes only the listed fields (the gateway's own fields still go).
#[test]
fn request_keep_only() {
    let up = upstream();
    let gw = gateway(
        &up,
        "",
        r#"
[[deployments.routes]]
path = "/k"
backend = { type = "http", url = "http://UP/k" }
request_headers = { keep_only = ["Accept", "X-Wanted"] }
"#,
    );
    request(
        gw.addr(),
        "GET /api/k HTTP/1.1\r\nHost: gw.test\r\nAccept: */*\r\nX-Wanted: y\r\nX-Unwanted: n\r\nCookie: c=1\r\n\r\n",
    );
    let got = up.only_request();
    assert_eq!(
        (
            got.header("accept"),
            got.header("x-wanted"),
            got.has_header("x-unwanted"),
            got.has_header("cookie"),
            got.has_header("x-forwarded-for"),
            got.has_header("host"),
        ),
        (Some("*/*"), Some("y"), false, false, true, true)
    );
}

// Rule: a verified claim can be passed to the back end (control characters dropped).
#[test]
fn request_claim_variable() {
    let up = upstream();
    let dir = tempfile::tempdir().unwrap();
    let path = write_jwks(dir.path());
    let gw = gateway(
        &up,
        &jwt_auth_table(&path, ""),
        r#"
[[deployments.routes]]
path = "/me"
backend = { type = "http", url = "http://UP/me" }
request_headers = { set = [{ name = "X-User", value = "${request.auth[sub]}" }, { name = "X-Evil", value = "${request.auth[evil]}" }] }
"#,
    );
    let mut c = claims("read");
    c["evil"] = serde_json::json!("a\r\nInjected: yes");
    let token = keys().token(Algorithm::ES256, &c);
    let r = request(
        gw.addr(),
        format!("GET /api/me HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer {token}\r\nX-User: forged\r\n\r\n"),
    );
    assert_eq!(r.status, 200);
    let got = up.only_request();
    assert_eq!(
        (
            got.header_all("x-user"),
            got.header("x-evil"),
            got.has_header("injected")
        ),
        (vec!["alice"], Some("aInjected: yes"), false)
    );
}

// Rule: the response side sets, renames, removes and keeps only, like the request side.
#[test]
fn response_transformations() {
    let up = upstream();
    let gw = gateway(
        &up,
        "",
        r#"
[[deployments.routes]]
path = "/r/{id}"
backend = { type = "http", url = "http://UP/r" }
response_headers = { set = [
    { name = "X-Item", value = "${request.path[id]}" },
    { name = "Cache-Control", value = "private", if_exists = "skip" },
    { name = "X-Keep", value = "2", if_exists = "append" },
], rename = [{ from = "X-Old-Name", to = "X-New-Name" }], remove = ["X-Internal"] }

[[deployments.routes]]
path = "/only"
backend = { type = "http", url = "http://UP/only" }
response_headers = { keep_only = ["Cache-Control"] }
"#,
    );
    let r = get(gw.addr(), "/api/r/7");
    assert_eq!(
        (
            r.status,
            r.header("x-item"),
            r.header_all("cache-control"),
            r.header_all("x-keep"),
            r.header("x-new-name"),
            r.header("x-old-name"),
            r.header("x-internal"),
            r.text(),
        ),
        (
            200,
            Some("7"),
            vec!["no-store"],
            vec!["1", "2"],
            Some("v"),
            None,
            None,
            "ok".to_string()
        )
    );
    let only = get(gw.addr(), "/api/only");
    assert_eq!(
        (
            only.header("cache-control"),
            only.header("x-keep"),
            only.header("content-length"),
            only.has_x_request_id(),
        ),
        (Some("no-store"), None, Some("2"), true)
    );
}

trait HasId {
    fn has_x_request_id(&self) -> bool;
}

impl HasId for Response {
    fn has_x_request_id(&self) -> bool {
        self.header("x-request-id").is_some()
    }
}

/// `portcullis check` on one route with `transform`; (success, stderr).
fn check(transform: &str) -> (bool, String) {
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

[[deployments.routes]]
path = "/x"
backend = {{ type = "http", url = "http://127.0.0.1:9/x" }}
{transform}
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

// Rule: `check` refuses transformations of gateway-owned headers, naming the key; a sound one passes.
#[test]
fn check_refuses_owned_headers() {
    let refused = [
        (
            "request_headers = { set = [{ name = \"Host\", value = \"evil\" }] }",
            "request_headers.set[0].name",
        ),
        (
            "request_headers = { remove = [\"X-Forwarded-For\"] }",
            "request_headers.remove[0]",
        ),
        (
            "request_headers = { rename = [{ from = \"X-A\", to = \"Content-Length\" }] }",
            "request_headers.rename[0].to",
        ),
        (
            "response_headers = { set = [{ name = \"Transfer-Encoding\", value = \"chunked\" }] }",
            "response_headers.set[0].name",
        ),
        (
            "response_headers = { remove = [\"Connection\"] }",
            "response_headers.remove[0]",
        ),
        (
            "request_headers = { set = [{ name = \"X-Request-Id\", value = \"1\" }] }",
            "request_headers.set[0].name",
        ),
    ];
    for (transform, key) in refused {
        let (ok, stderr) = check(transform);
        assert!(
            !ok && stderr.contains(key) && stderr.contains("owned by the gateway"),
            "{transform}: {stderr}"
        );
    }
    let (ok, stderr) =
        check("request_headers = { set = [{ name = \"X-Ok\", value = \"${request.query[a]}\" }] }");
    assert!(ok, "{stderr}");
    let (ok, stderr) = check(
        "request_headers = { set = [{ name = \"X-Bad\", value = \"${request.path[nope]}\" }] }",
    );
    assert!(!ok && stderr.contains("no path parameter"), "{stderr}");
}
