//! The HTTP authorizer authentication type over real sockets: the gateway
//! POSTs the chosen request parts as JSON to an authorizer started by the
//! test (a recording server that counts what it received) and uses its
//! answer: allowed, refused (its `WWW-Authenticate` relayed), scopes for
//! route authorization, context values in header templates, answers cached
//! per worker, fail closed when the authorizer is down or slow, and no call
//! at all for a request an earlier step (network rules) refused.

mod common;

use common::*;
use std::time::Duration;

/// An authorizer: `Bearer good-*` tokens are active (principal = the token,
/// scope `orders:read`, tenant `acme`); `Bearer refuse` gets 401 with a
/// challenge; anything else `active: false`.
fn authorizer() -> RecordingUpstream {
    RecordingUpstream::start(|r| {
        let question: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let token = question["headers"]["authorization"].as_str().unwrap_or("");
        if token == "Bearer refuse" {
            return Reply::raw(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"orders\", error=\"invalid_token\"\r\nContent-Length: 0\r\n\r\n",
            );
        }
        let body = match token.strip_prefix("Bearer good-") {
            Some(who) => format!(
                r#"{{"active":true,"principal":"{who}","scope":["orders:read"],"expires_in":60,"context":{{"tenant":"acme"}}}}"#
            ),
            None => r#"{"active":false}"#.to_string(),
        };
        Reply::raw(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    })
}

fn gateway(authz: &str, up: &RecordingUpstream, extra: &str, network: &str) -> Gateway {
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
{network}
[deployments.authentication]
type = "http_authorizer"
authorizer = {{ url = "http://{authz}/authorize", parameters = ["header:Authorization", "method", "path", "client_address"], timeout = "500ms" {extra} }}

[[deployments.routes]]
path = "/read"
authorization = {{ any_of = ["orders:read"] }}
backend = {{ type = "http", url = "http://{up}/read" }}
request_headers = {{ set = [
    {{ name = "X-Tenant", value = "${{request.auth[tenant]}}" }},
    {{ name = "X-User", value = "${{request.auth[sub]}}" }},
] }}

[[deployments.routes]]
path = "/write"
authorization = {{ any_of = ["orders:write"] }}
backend = {{ type = "http", url = "http://{up}/write" }}
"#,
        up = up.addr()
    ))
}

fn call(gw: &Gateway, path: &str, token: &str) -> Response {
    request(
        gw.addr(),
        format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer {token}\r\n\r\n"),
    )
}

// Rule: an active answer lets the caller in; its principal and context values fill
// header templates; the authorizer got the chosen parts as JSON.
#[test]
fn allowed_with_context_values_in_templates() {
    let authz = authorizer();
    let up = RecordingUpstream::ok();
    let gw = gateway(&authz.addr().to_string(), &up, "", "");
    assert_eq!(call(&gw, "/orders/read", "good-alice").status, 200);
    let got = up.only_request();
    assert_eq!(
        (got.header("x-tenant"), got.header("x-user")),
        (Some("acme"), Some("alice"))
    );
    let question: serde_json::Value = serde_json::from_slice(&authz.only_request().body).unwrap();
    assert_eq!(
        question,
        serde_json::json!({
            "headers": {"authorization": "Bearer good-alice"},
            "method": "GET",
            "path": "/orders/read",
            "client_address": "127.0.0.1"
        })
    );
}

// Rule: a refusing authorizer's 401 and WWW-Authenticate reach the client; an inactive
// answer is a 401; the back end sees neither request.
#[test]
fn refused_and_challenge_relayed() {
    let authz = authorizer();
    let up = RecordingUpstream::ok();
    let gw = gateway(&authz.addr().to_string(), &up, "", "");
    let refused = call(&gw, "/orders/read", "refuse");
    assert_eq!(
        (refused.status, refused.header("www-authenticate")),
        (
            401,
            Some("Bearer realm=\"orders\", error=\"invalid_token\"")
        )
    );
    assert_eq!(call(&gw, "/orders/read", "someone-else").status, 401);
    gw.wait_log_line("the refusal's decision", |l| {
        l.contains("authentication.authorizerRefused")
    });
    up.assert_received_nothing(gw);
}

// Rule: the answer's scopes feed route authorization (403 without the scope).
#[test]
fn scopes_feed_route_authorization() {
    let authz = authorizer();
    let up = RecordingUpstream::ok();
    let gw = gateway(&authz.addr().to_string(), &up, "", "");
    assert_eq!(call(&gw, "/orders/read", "good-bob").status, 200);
    assert_eq!(call(&gw, "/orders/write", "good-bob").status, 403);
}

// Rule: answers are cached per worker: N requests with the same parts make one call;
// other parts make another.
#[test]
fn answers_are_cached() {
    let authz = authorizer();
    let up = RecordingUpstream::ok();
    let gw = gateway(&authz.addr().to_string(), &up, "", "");
    for _ in 0..5 {
        assert_eq!(call(&gw, "/orders/read", "good-carol").status, 200);
    }
    assert_eq!(authz.requests().len(), 1);
    assert_eq!(call(&gw, "/orders/read", "good-dave").status, 200);
    assert_eq!(authz.requests().len(), 2);
}

// Rule: an authorizer that is down fails closed: 503 by default, 401 with
// on_error = "unauthorized"; the decision is in the access log.
#[test]
fn authorizer_down_fails_closed() {
    let down = format!("127.0.0.1:{}", unused_port());
    let up = RecordingUpstream::ok();
    let gw = gateway(&down, &up, "", "");
    assert_eq!(call(&gw, "/orders/read", "good-erin").status, 503);
    gw.wait_log_line("the failure's decision", |l| {
        l.contains("authentication.authorizerUnavailable")
    });
    let gw401 = gateway(&down, &up, r#", on_error = "unauthorized""#, "");
    assert_eq!(call(&gw401, "/orders/read", "good-erin").status, 401);
    up.assert_received_nothing(gw);
}

// Rule: an authorizer slower than its timeout fails closed, answered within the
// client's read timeout (the authorizer's is 500 ms).
#[test]
fn slow_authorizer_fails_closed() {
    let slow = RecordingUpstream::start(|_| Reply::after(Duration::from_secs(30)).then_ok("{}"));
    let up = RecordingUpstream::ok();
    let gw = gateway(&slow.addr().to_string(), &up, "", "");
    assert_eq!(call(&gw, "/orders/read", "good-frank").status, 503);
    up.assert_received_nothing(gw);
}

// Rule: a request the deployment's network rule refuses never reaches the authorizer.
#[test]
fn no_call_for_requests_refused_by_network_rules() {
    let authz = authorizer();
    let up = RecordingUpstream::ok();
    let gw = gateway(
        &authz.addr().to_string(),
        &up,
        "",
        "network = { deny = [\"127.0.0.0/8\"] }",
    );
    assert_eq!(call(&gw, "/orders/read", "good-gina").status, 403);
    authz.assert_received_nothing(gw);
}
