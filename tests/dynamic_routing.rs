//! Dynamic routing over real sockets: a route's back end chosen per request
//! by a selector (`request.headers[..]`, `request.query[..]`,
//! `request.path[..]`, `request.host`, `request.auth[..]`, the usage-plan
//! subscriber and plan) over cases with exact keys and wildcard patterns, a
//! default, and 404 when nothing matches; `portcullis check` refuses what
//! cannot work; `/config` and the access log name the case.

mod auth_support;
mod common;

use auth_support::*;
use common::*;
use jsonwebtoken::Algorithm;

/// Two upstreams, each answering with its own name.
fn upstreams() -> (RecordingUpstream, RecordingUpstream) {
    (
        RecordingUpstream::start(|_| Reply::ok("eu")),
        RecordingUpstream::start(|_| Reply::ok("us")),
    )
}

/// A gateway whose deployment `api` (prefix `/api`) has `routes`, with `EU`
/// and `US` replaced by the two upstreams' addresses; `top` goes before
/// everything, `deployment` into the deployment table.
fn gateway(
    ups: &(RecordingUpstream, RecordingUpstream),
    top: &str,
    deployment: &str,
    routes: &str,
) -> Gateway {
    Gateway::start(&config(ups, top, deployment, routes))
}

fn config(
    ups: &(RecordingUpstream, RecordingUpstream),
    top: &str,
    deployment: &str,
    routes: &str,
) -> String {
    format!(
        r#"
{top}
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
{deployment}
{}
"#,
        routes
            .replace("EU", &ups.0.addr().to_string())
            .replace("US", &ups.1.addr().to_string())
    )
}

/// A route on `/orders/{tenant}` whose back end is chosen by `selector`,
/// with cases for `eu` and `us` keys and the given extra cases.
fn region_route(selector: &str, eu_keys: &str, us_keys: &str, more: &str) -> String {
    format!(
        r#"
[[deployments.routes]]
path = "/orders/{{tenant}}"
[deployments.routes.backend]
type = "dynamic"
selector = "{selector}"
[[deployments.routes.backend.cases]]
name = "europe"
keys = {eu_keys}
backend = {{ type = "http", url = "http://EU/orders/{{tenant}}" }}
[[deployments.routes.backend.cases]]
name = "america"
keys = {us_keys}
backend = {{ type = "http", url = "http://US/orders/{{tenant}}" }}
{more}
"#
    )
}

fn send(gw: &Gateway, target: &str, fields: &str) -> Response {
    request(
        gw.addr(),
        format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n{fields}\r\n"),
    )
}

/// Which upstream answered (the body), or the status when the gateway did.
fn served_by(r: &Response) -> String {
    if r.status == 200 {
        r.text()
    } else {
        r.status.to_string()
    }
}

// Rule: a header selector picks the case by exact key; the chosen back end gets the request with its own URL.
#[test]
fn header_selector_exact_keys() {
    let ups = upstreams();
    let gw = gateway(
        &ups,
        "",
        "",
        &region_route("request.headers[X-Region]", r#"["eu"]"#, r#"["us"]"#, ""),
    );
    let picks: Vec<String> = ["eu", "us", "eu"]
        .iter()
        .map(|region| {
            served_by(&send(
                &gw,
                "/api/orders/acme",
                &format!("X-Region: {region}\r\n"),
            ))
        })
        .collect();
    assert_eq!(picks, ["eu", "us", "eu"]);
    assert_eq!(ups.0.requests().len(), 2);
    assert_eq!(ups.1.only_request().target, "/orders/acme");
}

// Rule: without a matching key and without a default, the request is answered 404 and nothing is forwarded.
#[test]
fn no_match_and_no_default_is_404() {
    let ups = upstreams();
    let gw = gateway(
        &ups,
        "",
        "",
        &region_route("request.headers[X-Region]", r#"["eu"]"#, r#"["us"]"#, ""),
    );
    assert_eq!(
        send(&gw, "/api/orders/acme", "X-Region: apac\r\n").status,
        404
    );
    assert_eq!(send(&gw, "/api/orders/acme", "").status, 404);
    let mut c = gw.connect();
    // The 404 keeps the connection usable.
    assert_eq!(c.roundtrip(get_req("/api/orders/a")).status, 404);
    let again = "GET /api/orders/a HTTP/1.1\r\nHost: gw.test\r\nX-Region: us\r\n\r\n";
    assert_eq!(c.roundtrip(again).status, 200);
    assert!(ups.0.requests().is_empty());
}

// Rule: wildcard keys match after exact keys miss, in the order written; the default takes the rest, including requests without the value.
#[test]
fn wildcards_and_default() {
    let ups = upstreams();
    let default = r#"
[[deployments.routes.backend.cases]]
name = "elsewhere"
default = true
backend = { type = "stock", status = 421, body = "no such region" }
"#;
    let gw = gateway(
        &ups,
        "",
        "",
        &region_route(
            "request.query[region]",
            r#"["eu-*", "europe"]"#,
            r#"["us-east-?", "eu-special"]"#,
            default,
        ),
    );
    let pick = |q: &str| served_by(&send(&gw, &format!("/api/orders/x{q}"), ""));
    assert_eq!(
        [
            pick("?region=eu-west-1"),
            pick("?region=europe"),
            pick("?region=us-east-2"),
            pick("?region=eu-special"),
            pick("?region=us-east-12"),
            pick(""),
        ],
        ["eu", "eu", "us", "us", "421", "421"].map(String::from)
    );
    let stock = send(&gw, "/api/orders/x?region=mars", "");
    assert_eq!(stock.text(), "no such region");
}

// Rule: a path parameter and the host can select the back end.
#[test]
fn path_and_host_selectors() {
    let ups = upstreams();
    let routes = format!(
        "{}{}",
        region_route(
            "request.path[tenant]",
            r#"["acme", "a*"]"#,
            r#"["zeta"]"#,
            ""
        ),
        r#"
[[deployments.routes]]
path = "/by-host"
[deployments.routes.backend]
type = "dynamic"
selector = "request.host"
[[deployments.routes.backend.cases]]
keys = ["eu.example.com", "*.eu.example.com:8443"]
backend = { type = "http", url = "http://EU/h" }
[[deployments.routes.backend.cases]]
keys = ["us.example.com"]
backend = { type = "http", url = "http://US/h" }
"#
    );
    let gw = gateway(&ups, "", "", &routes);
    let by_path: Vec<String> = ["acme", "alpha", "zeta", "omega"]
        .iter()
        .map(|t| served_by(&send(&gw, &format!("/api/orders/{t}"), "")))
        .collect();
    assert_eq!(by_path, ["eu", "eu", "us", "404"]);
    let host = |h: &str| {
        served_by(&request(
            gw.addr(),
            format!("GET /api/by-host HTTP/1.1\r\nHost: {h}\r\n\r\n"),
        ))
    };
    // Host names compare case-insensitively.
    assert_eq!(
        [
            host("EU.Example.com"),
            host("us.example.com"),
            host("a.eu.example.com:8443"),
            host("other.test")
        ],
        ["eu", "us", "eu", "404"].map(String::from)
    );
}

// Rule: a verified JWT claim selects the back end, and a request refused by authentication reaches no case.
#[test]
fn claim_selector() {
    let ups = upstreams();
    let dir = tempfile::tempdir().unwrap();
    let jwks = write_jwks(dir.path());
    let gw = gateway(
        &ups,
        "",
        &jwt_auth_table(&jwks, ""),
        &region_route("request.auth[region]", r#"["eu"]"#, r#"["us"]"#, ""),
    );
    let with_region = |region: &str| {
        let mut c = claims("read");
        c["region"] = serde_json::json!(region);
        let token = keys().token(Algorithm::ES256, &c);
        served_by(&send(
            &gw,
            "/api/orders/acme",
            &format!("Authorization: Bearer {token}\r\nX-Region: eu\r\n"),
        ))
    };
    assert_eq!(
        [with_region("us"), with_region("eu")],
        ["us", "eu"].map(String::from)
    );
    assert_eq!(send(&gw, "/api/orders/acme", "").status, 401);
    assert_eq!((ups.0.requests().len(), ups.1.requests().len()), (1, 1));
}

const PLANS: &str = r#"
[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "all"
deployments = ["api"]

[[usage_plans]]
name = "free"
[[usage_plans.entitlements]]
name = "all"
deployments = ["api"]

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{ name = "prod", token = "acme-prod-token-0123456789" }]

[[subscribers]]
name = "beta"
usage_plans = ["free"]
clients = [{ name = "main", token = "beta-token-0123456789abcdef" }]
"#;

// Rule: the usage-plan subscriber and the plan that admitted the request select the back end.
#[test]
fn subscriber_and_plan_selectors() {
    let ups = upstreams();
    let state = tempfile::tempdir().unwrap();
    let top = format!("state_dir = \"{}\"\n{PLANS}", state.path().display());
    let routes = format!(
        "{}{}",
        region_route("request.subscriber", r#"["acme"]"#, r#"["b*"]"#, ""),
        r#"
[[deployments.routes]]
path = "/tier"
[deployments.routes.backend]
type = "dynamic"
selector = "request.usage_plan"
[[deployments.routes.backend.cases]]
keys = ["gold"]
backend = { type = "http", url = "http://EU/premium" }
[[deployments.routes.backend.cases]]
default = true
backend = { type = "http", url = "http://US/standard" }
"#
    );
    // The top-level keys must come before the first table.
    let text = config(
        &ups,
        "",
        r#"usage_plans = { token_locations = ["header:X-Client-Token"] }"#,
        &routes,
    );
    let gw = Gateway::start(&format!("{top}\n{text}"));
    let as_client = |path: &str, token: &str| {
        served_by(&send(&gw, path, &format!("X-Client-Token: {token}\r\n")))
    };
    assert_eq!(
        [
            as_client("/api/orders/x", "acme-prod-token-0123456789"),
            as_client("/api/orders/x", "beta-token-0123456789abcdef"),
            as_client("/api/tier", "acme-prod-token-0123456789"),
            as_client("/api/tier", "beta-token-0123456789abcdef"),
        ],
        ["eu", "us", "eu", "us"].map(String::from)
    );
    assert_eq!(ups.0.requests().last().unwrap().target, "/premium");
    assert_eq!(ups.1.requests().last().unwrap().target, "/standard");
}

// Rule: `check` refuses a dynamic back end that cannot work, naming the key; and lists the cases of one that can.
#[test]
fn check_refuses_bad_dynamic_backends() {
    let ups = upstreams();
    let bad = [
        (
            region_route("request.cookie[x]", r#"["eu"]"#, r#"["us"]"#, ""),
            "backend.selector",
        ),
        (
            region_route("request.path[nope]", r#"["eu"]"#, r#"["us"]"#, ""),
            "no path parameter `nope`",
        ),
        (
            region_route("request.host", r#"["eu"]"#, r#"["eu"]"#, ""),
            "key `eu` is already case 0's",
        ),
        (
            region_route("request.host", r#"["eu"]"#, "[]", ""),
            "backend.cases[1].keys",
        ),
        (
            region_route(
                "request.host",
                r#"["eu"]"#,
                r#"["us"]"#,
                "[[deployments.routes.backend.cases]]\ndefault = true\nbackend = { type = \"dynamic\", selector = \"request.host\" }",
            ),
            "not another `dynamic`",
        ),
        (
            region_route(
                "request.host",
                r#"["eu"]"#,
                r#"["us"]"#,
                "[[deployments.routes.backend.cases]]\nkeys = [\"x\"]\nbackend = { type = \"http\", url = \"ftp://h\" }",
            ),
            "backend.cases[2].backend.url",
        ),
        (
            "[[deployments.routes]]\npath = \"/x\"\nbackend = { type = \"dynamic\", selector = \"request.host\", url = \"http://EU/\" }".to_string(),
            "`url` does not apply to a `dynamic` back end",
        ),
        (
            "[[deployments.routes]]\npath = \"/x\"\nbackend = { type = \"http\", url = \"http://EU/\", selector = \"request.host\" }".to_string(),
            "`selector` does not apply to a `http` back end",
        ),
        (
            "[[deployments.routes]]\npath = \"/x\"\nbackend = { type = \"dynamic\", selector = \"request.host\" }".to_string(),
            "at least one case",
        ),
    ];
    for (routes, expected) in bad {
        let (ok, text) = check_config(&config(&ups, "", "", &routes));
        assert!(
            !ok && text.contains(expected),
            "expected {expected:?} in: {text}"
        );
    }
    let (ok, text) = check_config(&config(
        &ups,
        "",
        "",
        &region_route("request.headers[X-Region]", r#"["eu"]"#, r#"["us"]"#, ""),
    ));
    assert!(ok, "{text}");
    assert!(
        text.contains("dynamic on request.headers[X-Region]")
            && text.contains("europe -> http://")
            && text.contains("america -> http://"),
        "{text}"
    );
}

// Rule: `/config` shows each case and where it goes; the access log names the case that served a request.
#[test]
fn config_and_access_log_name_the_case() {
    let ups = upstreams();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let top = format!("[access_log]\npath = \"{}\"\n", log.display());
    let gw = gateway(
        &ups,
        &top,
        "",
        &region_route("request.headers[X-Region]", r#"["eu"]"#, r#"["us"]"#, ""),
    );
    assert_eq!(send(&gw, "/api/orders/a", "X-Region: us\r\n").status, 200);
    let inventory = get(gw.admin_addr(), "/config").text();
    assert!(
        inventory.contains("dynamic on request.headers[X-Region]: europe -> http://")
            && inventory.contains("america -> http://"),
        "{inventory}"
    );
    let mut line = String::new();
    let found = eventually(|| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match text.lines().find(|l| l.contains("\"backend_case\"")) {
            Some(l) => {
                line = l.to_string();
                true
            }
            None => false,
        }
    });
    assert!(found, "no access log line with backend_case");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["backend"].as_str(), v["backend_case"].as_str()),
        (Some("dynamic"), Some("america"))
    );
}

// Rule: a case may spread over several servers; each case balances on its own state.
#[test]
fn cases_with_several_servers_balance_separately() {
    let ups = upstreams();
    let third = RecordingUpstream::start(|_| Reply::ok("third"));
    let routes = r#"
[[deployments.routes]]
path = "/pool"
[deployments.routes.backend]
type = "dynamic"
selector = "request.headers[X-Pool]"
[[deployments.routes.backend.cases]]
keys = ["one"]
backend = { type = "http", url = "http://THIRD/p" }
[[deployments.routes.backend.cases]]
keys = ["two"]
backend = { type = "http", servers = [{ url = "http://EU/p" }, { url = "http://US/p" }] }
"#
    .replace("THIRD", &third.addr().to_string());
    let gw = gateway(&ups, "", "", &routes);
    let mut seen = Vec::new();
    for i in 0..8 {
        let pool = if i % 2 == 0 { "one" } else { "two" };
        seen.push(served_by(&send(
            &gw,
            "/api/pool",
            &format!("X-Pool: {pool}\r\n"),
        )));
    }
    let count = |name: &str| seen.iter().filter(|s| *s == name).count();
    assert_eq!(
        (count("third"), count("eu"), count("us")),
        (4, 2, 2),
        "{seen:?}"
    );
}
