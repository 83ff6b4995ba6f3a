//! OAuth2 token introspection (RFC 7662) over real sockets, against an
//! introspection endpoint started by the test (a recording server that
//! counts its calls): an active token passes with its scopes and claims, an
//! inactive or expired one is a 401, answers are cached, a down endpoint
//! fails closed, and the token never appears in the gateway's log.

mod common;

use base64::Engine;
use common::*;

const TOKEN: &str = "opaque-AbC123.xyz";

/// `opaque-*` tokens are active with scope `orders:read` until `exp`; `expired-*`
/// tokens are active but expired; anything else inactive.
fn endpoint() -> RecordingUpstream {
    RecordingUpstream::start(|r| {
        let body = String::from_utf8_lossy(&r.body).to_string();
        let token = body
            .split('&')
            .find_map(|p| p.strip_prefix("token="))
            .unwrap_or("");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let answer = if token.starts_with("opaque-") {
            format!(
                r#"{{"active":true,"scope":"orders:read","sub":"alice","client_id":"app-1","exp":{}}}"#,
                now + 600
            )
        } else if token.starts_with("expired-") {
            format!(
                r#"{{"active":true,"scope":"orders:read","exp":{}}}"#,
                now - 10
            )
        } else {
            r#"{"active":false}"#.to_string()
        };
        Reply::raw(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        ))
    })
}

fn gateway(endpoint: &str, up: &RecordingUpstream) -> Gateway {
    Gateway::start(&format!(
        r#"
[access_log]
path = "stdout"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "orders"
listener = "public"
path_prefix = "/orders"

[deployments.authentication]
type = "oauth2_introspection"
introspection = {{ url = "http://{endpoint}/oauth2/introspect", client_id = "gateway", client_secret = "gw secret", timeout = "500ms" }}

[[deployments.routes]]
path = "/read"
authorization = {{ any_of = ["orders:read"] }}
backend = {{ type = "http", url = "http://{up}/read" }}
request_headers = {{ set = [{{ name = "X-Client", value = "${{request.auth[client_id]}}" }}] }}
"#,
        up = up.addr()
    ))
}

fn call(gw: &Gateway, token: &str) -> Response {
    request(
        gw.addr(),
        format!(
            "GET /orders/read HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer {token}\r\n\r\n"
        ),
    )
}

// Rule: an active token passes; its scopes authorize the route and its claims fill
// templates; the gateway authenticated to the endpoint with HTTP Basic.
#[test]
fn active_token_passes_with_claims() {
    let introspect = endpoint();
    let up = RecordingUpstream::ok();
    let gw = gateway(&introspect.addr().to_string(), &up);
    assert_eq!(call(&gw, TOKEN).status, 200);
    assert_eq!(up.only_request().header("x-client"), Some("app-1"));
    let asked = introspect.only_request();
    let basic = base64::engine::general_purpose::STANDARD.encode("gateway:gw+secret");
    assert_eq!(
        (
            asked.header("authorization").map(str::to_string),
            asked.header("content-type"),
            String::from_utf8_lossy(&asked.body).to_string()
        ),
        (
            Some(format!("Basic {basic}")),
            Some("application/x-www-form-urlencoded"),
            "token=opaque-AbC123.xyz&token_type_hint=access_token".to_string()
        )
    );
}

// Rule: an inactive token, an expired one and a missing one are refused with 401.
#[test]
fn inactive_expired_and_missing_tokens_are_refused() {
    let introspect = endpoint();
    let up = RecordingUpstream::ok();
    let gw = gateway(&introspect.addr().to_string(), &up);
    for token in ["revoked-1", "expired-1"] {
        let r = call(&gw, token);
        assert_eq!(
            (r.status, r.header("www-authenticate")),
            (401, Some("Bearer error=\"invalid_token\"")),
            "{token}"
        );
    }
    assert_eq!(get(gw.addr(), "/orders/read").status, 401);
    assert_eq!(introspect.requests().len(), 2);
    up.assert_received_nothing(gw);
}

// Rule: answers are cached per token digest: N requests make one call.
#[test]
fn answers_are_cached() {
    let introspect = endpoint();
    let up = RecordingUpstream::ok();
    let gw = gateway(&introspect.addr().to_string(), &up);
    for _ in 0..5 {
        assert_eq!(call(&gw, TOKEN).status, 200);
    }
    assert_eq!(introspect.requests().len(), 1);
    assert_eq!(call(&gw, "opaque-other").status, 200);
    assert_eq!(introspect.requests().len(), 2);
}

// Rule: an endpoint that is down fails closed (503), with the decision in the access log.
#[test]
fn endpoint_down_fails_closed() {
    let up = RecordingUpstream::ok();
    let gw = gateway(&format!("127.0.0.1:{}", unused_port()), &up);
    assert_eq!(call(&gw, TOKEN).status, 503);
    gw.wait_log_line("the failure's decision", |l| {
        l.contains("authentication.authorizerUnavailable")
    });
    up.assert_received_nothing(gw);
}

// Rule: the token never appears in the gateway's log (access log included).
#[test]
fn token_never_in_logs() {
    let introspect = endpoint();
    let up = RecordingUpstream::ok();
    let gw = gateway(&introspect.addr().to_string(), &up);
    assert_eq!(call(&gw, TOKEN).status, 200);
    assert_eq!(call(&gw, "revoked-secret-token").status, 401);
    gw.wait_log_line("the access log", |l| {
        l.contains("authentication.authorizerRefused")
    });
    let log = gw.log_text();
    assert!(
        !log.contains("AbC123") && !log.contains("revoked-secret-token"),
        "{log}"
    );
}
