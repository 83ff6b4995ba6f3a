//! Listener security headers over real sockets: `X-Content-Type-Options` on
//! back-end answers and on the gateway's own answers, the back end's `Server`
//! and `X-Powered-By` removed, and HSTS ignored (with a warning from `check`)
//! on a plain listener.

mod common;

use common::*;

fn config(up: &RecordingUpstream, security: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
security_headers = {{ {security} }}

[[deployments]]
name = "api"
listener = "public"

[[deployments.routes]]
path = "/up"
backend = {{ type = "http", url = "http://{}/up" }}

[[deployments.routes]]
path = "/stock"
backend = {{ type = "stock", status = 200, body = "s" }}
"#,
        up.addr()
    )
}

fn server_upstream() -> RecordingUpstream {
    RecordingUpstream::start(|_| {
        Reply::raw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: nginx/1.0\r\nX-Powered-By: PHP\r\nX-Content-Type-Options: off\r\n\r\nok")
    })
}

// Rule: nosniff is on every answer (back end, stock, 404) and the back end's server identity is gone.
#[test]
fn nosniff_and_server_removed() {
    let up = server_upstream();
    let gw = Gateway::start(&config(
        &up,
        "content_type_options = true, remove_server_headers = true",
    ));
    let proxied = get(gw.addr(), "/up");
    let stock = get(gw.addr(), "/stock");
    let missing = get(gw.addr(), "/nothing");
    assert_eq!(
        (
            proxied.header_all("x-content-type-options"),
            proxied.header("server"),
            proxied.header("x-powered-by"),
            stock.header("x-content-type-options"),
            missing.status,
            missing.header("x-content-type-options"),
        ),
        (
            vec!["nosniff"],
            None,
            None,
            Some("nosniff"),
            404,
            Some("nosniff")
        )
    );
}

// Rule: without security_headers, the back end's fields pass unchanged.
#[test]
fn off_by_default() {
    let up = server_upstream();
    let gw = Gateway::start(&config(&up, "").replace("security_headers = {  }\n", ""));
    let r = get(gw.addr(), "/up");
    assert_eq!(
        (r.header("server"), r.header("x-content-type-options")),
        (Some("nginx/1.0"), Some("off"))
    );
}

// Rule: HSTS on a plain listener adds no header and `check` warns about it.
#[test]
fn hsts_ignored_on_plain_listener() {
    let up = server_upstream();
    let text = config(&up, "hsts = \"max-age=31536000\"");
    let gw = Gateway::start(&text);
    assert_eq!(
        get(gw.addr(), "/up").header("strict-transport-security"),
        None
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    std::fs::write(&path, &text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && all.contains("hsts is ignored"),
        "{all}"
    );
}
