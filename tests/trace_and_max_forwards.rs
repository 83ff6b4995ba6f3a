//! TRACE, TRACK and `Max-Forwards`: a route without a `methods` list answers TRACE and
//! TRACK with 405 (an echo would show a page the caller's credentials: cross-site
//! tracing); a route that lists TRACE forwards it. On OPTIONS and TRACE the gateway
//! honours `Max-Forwards` (RFC 9110 §7.6.2): at 0 it answers itself (OPTIONS: 200 with
//! `Allow`; TRACE: a `message/http` echo without credentials or the query), above 0 it
//! forwards one fewer.

mod common;

use common::*;

/// The standard config plus a route that lists TRACE and OPTIONS, under a deployment that
/// reads a client token from `X-Client-Token`.
fn config(upstream: std::net::SocketAddr) -> String {
    format!(
        r#"{}
[[deployments]]
name = "traced"
listener = "public"
path_prefix = "/traced"
usage_plans = {{ token_locations = ["header:X-Client-Token", "query:api_key"] }}

[[deployments.routes]]
path = "/t"
methods = ["TRACE", "OPTIONS", "GET"]
backend = {{ type = "http", url = "http://{upstream}/t" }}

[[usage_plans]]
name = "all"
[[usage_plans.entitlements]]
name = "traced"
deployments = ["traced"]

[[subscribers]]
name = "acme"
usage_plans = ["all"]
clients = [{{ name = "one", token = "TOKENSECRET-0123456789" }}]
"#,
        standard_config(upstream, "")
    )
}

// Rule: TRACE and TRACK on a route without a methods list get 405 with an `Allow` that
// names neither, and reach nothing (the GET sent after them on the same connection is the
// only request the upstream sees).
#[test]
fn trace_and_track_are_refused_on_routes_without_methods() {
    let up = RecordingUpstream::echo_target();
    let gw = Gateway::start(&config(up.addr()));
    let mut c = gw.connect();
    for method in ["TRACE", "TRACK"] {
        let r = c.roundtrip(format!(
            "{method} /api/echo HTTP/1.1\r\nHost: gw.test\r\nCookie: s=1\r\n\r\n"
        ));
        let allow = r.header("allow").unwrap_or_default().to_string();
        assert_eq!(r.status, 405, "{method}");
        assert!(
            allow.contains("GET") && allow.contains("OPTIONS") && !allow.contains("TRACE"),
            "{method}: Allow: {allow}"
        );
    }
    assert_eq!(c.roundtrip(get_req("/api/echo")).status, 200);
    let seen = up.wait_for_requests(1);
    assert_eq!(
        seen.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["GET"]
    );
}

// Rule: a route that lists TRACE forwards it with `Max-Forwards` one fewer; an OPTIONS on
// a route without a methods list is forwarded the same way; other methods' `Max-Forwards`
// passes unchanged.
#[test]
fn max_forwards_is_decremented_when_forwarding() {
    let up = RecordingUpstream::echo_target();
    let gw = Gateway::start(&config(up.addr()));
    let token = "X-Client-Token: TOKENSECRET-0123456789\r\n";
    let mut c = gw.connect();
    for raw in [
        format!("TRACE /traced/t HTTP/1.1\r\nHost: gw.test\r\n{token}Max-Forwards: 3\r\n\r\n"),
        "OPTIONS /api/echo HTTP/1.1\r\nHost: gw.test\r\nMax-Forwards: 10\r\n\r\n".to_string(),
        "GET /api/echo HTTP/1.1\r\nHost: gw.test\r\nMax-Forwards: 10\r\n\r\n".to_string(),
    ] {
        assert_eq!(c.roundtrip(&raw).status, 200, "{raw}");
    }
    let seen = up.wait_for_requests(3);
    let forwarded: Vec<(&str, Vec<&str>)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.header_all("max-forwards")))
        .collect();
    assert_eq!(
        forwarded,
        [
            ("TRACE", vec!["2"]),
            ("OPTIONS", vec!["9"]),
            ("GET", vec!["10"])
        ]
    );
}

// Rule: at `Max-Forwards: 0` the gateway is the final recipient: an OPTIONS gets 200 with
// the path's `Allow`, a TRACE gets 200 `message/http` echoing its request line (without
// the query) and fields (without `Authorization`, `Cookie` or the client token); neither
// reaches the back end.
#[test]
fn max_forwards_zero_is_answered_by_the_gateway() {
    let up = RecordingUpstream::echo_target();
    let gw = Gateway::start(&config(up.addr()));
    let mut c = gw.connect();
    let options = c.roundtrip(
        "OPTIONS /traced/t HTTP/1.1\r\nHost: gw.test\r\nX-Client-Token: TOKENSECRET-0123456789\r\nMax-Forwards: 0\r\n\r\n",
    );
    assert_eq!(
        (options.status, options.header("allow")),
        (200, Some("TRACE, OPTIONS, GET"))
    );
    let trace = c.roundtrip(
        "TRACE /traced/t?api_key=QUERYSECRET HTTP/1.1\r\nHost: gw.test\r\nX-Client-Token: TOKENSECRET-0123456789\r\nAuthorization: Bearer AUTHSECRET\r\nCookie: session=COOKIESECRET\r\nX-Trace-Me: yes\r\nMax-Forwards: 0\r\n\r\n",
    );
    let echo = trace.text();
    assert_eq!(
        (trace.status, trace.header("content-type")),
        (200, Some("message/http"))
    );
    assert!(
        echo.starts_with("TRACE /traced/t HTTP/1.1\r\n")
            && echo.contains("X-Trace-Me: yes\r\n")
            && echo.contains("Max-Forwards: 0\r\n")
            && !echo.contains("SECRET"),
        "{echo}"
    );
    assert_eq!(
        c.roundtrip("GET /traced/t HTTP/1.1\r\nHost: gw.test\r\nX-Client-Token: TOKENSECRET-0123456789\r\n\r\n")
            .status,
        200
    );
    let seen = up.wait_for_requests(1);
    assert_eq!(
        seen.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["GET"]
    );
}
