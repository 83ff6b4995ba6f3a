//! Usage plans over real sockets: client tokens (header and query), subscriber
//! entitlements, first-plan-wins, shared quotas, per-second limits with
//! `Retry-After` and `RateLimit` fields, `on_breach = allow`, deployment rate
//! limits, the `/usage` endpoint, included subscriber files edited live,
//! token revocation on an open connection, counts kept across reloads and
//! across restarts (SIGTERM and SIGKILL).

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const ACME_TOKEN: &str = "acme-prod-token-0123456789";
const ACME_CI_TOKEN: &str = "acme-ci-token-0123456789ab";
const BETA_TOKEN: &str = "beta-token-0123456789abcdef";

/// Deployment `orders` (usage plans, header or query token) and `reports`
/// (no usage plans) in front of `upstream`, plus `extra` config.
fn config(upstream: &RecordingUpstream, extra: &str) -> String {
    let up = upstream.addr();
    // Top-level keys of `extra` (before its first table) go first, as TOML wants.
    let split = extra
        .lines()
        .position(|l| l.trim_start().starts_with('['))
        .unwrap_or(extra.lines().count());
    let lines: Vec<&str> = extra.lines().collect();
    let (top, extra) = (lines[..split].join("\n"), lines[split..].join("\n"));
    format!(
        r#"
{top}
[[listeners]]
name = "public"
address = "127.0.0.1:0"
trusted_proxies = ["127.0.0.0/8"]

[[deployments]]
name = "orders"
listener = "public"
path_prefix = "/orders"
usage_plans = {{ token_locations = ["header:X-Client-Token", "query:api_key"] }}

[[deployments.routes]]
path = "/{{rest*}}"
backend = {{ type = "http", url = "http://{up}/o" }}

[[deployments]]
name = "reports"
listener = "public"
path_prefix = "/reports"
usage_plans = {{ token_locations = ["header:X-Client-Token"], reject_status = 401 }}

[[deployments.routes]]
path = "/{{rest*}}"
backend = {{ type = "http", url = "http://{up}/r" }}
{extra}
"#
    )
}

const PLANS: &str = r#"
[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "orders"
deployments = ["orders"]
quota = { limit = 3, period = "day" }

[[usage_plans]]
name = "reports-only"
[[usage_plans.entitlements]]
name = "reports"
deployments = ["reports"]

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{ name = "prod", token = "acme-prod-token-0123456789" }, { name = "ci", token = "acme-ci-token-0123456789ab" }]

[[subscribers]]
name = "beta"
usage_plans = ["reports-only"]
clients = [{ name = "main", token = "beta-token-0123456789abcdef" }]
"#;

fn with_state(extra: &str, state: &Path) -> String {
    format!("state_dir = \"{}\"\n{extra}", state.display())
}

fn call(gw: &Gateway, path: &str, token: Option<&str>) -> Response {
    let token_field = token
        .map(|t| format!("X-Client-Token: {t}\r\n"))
        .unwrap_or_default();
    request(
        gw.addr(),
        format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\n{token_field}\r\n"),
    )
}

// Rule: no token, an unknown token, and a token not entitled to the deployment get 403.
#[test]
fn missing_unknown_and_unentitled_tokens_refused() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    let statuses = [
        call(&gw, "/orders/a", None).status,
        call(&gw, "/orders/a", Some("no-such-token-0123456789")).status,
        call(&gw, "/orders/a", Some(BETA_TOKEN)).status,
    ];
    assert_eq!(statuses, [403, 403, 403]);
    up.assert_received_nothing(gw);
}

// Rule: a valid header token passes and the back end never sees it.
#[test]
fn header_token_passes_and_is_stripped() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    assert_eq!(call(&gw, "/orders/a", Some(ACME_TOKEN)).status, 200);
    let seen = up.only_request();
    let leaked = seen.request_line.contains(ACME_TOKEN)
        || seen.headers.iter().any(|(_, v)| v.contains(ACME_TOKEN));
    assert!(!seen.has_header("x-client-token") && !leaked);
}

// Rule: a query token passes and is removed from the target; other parameters stay. A
// parameter name written with percent-escapes (`api%5Fkey`) is the same parameter.
#[test]
fn query_token_passes_and_is_stripped() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    for query in [
        format!("x=1&api_key={ACME_TOKEN}&y=2"),
        format!("x=1&api%5Fkey={ACME_TOKEN}&y=2"),
    ] {
        assert_eq!(call(&gw, &format!("/orders/a?{query}"), None).status, 200);
    }
    let targets: Vec<String> = up.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets, ["/o/a?x=1&y=2", "/o/a?x=1&y=2"]);
}

// Rule: a deployment may answer 401 with a challenge instead of 403.
#[test]
fn reject_status_401_has_challenge() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    let response = call(&gw, "/reports/x", None);
    assert_eq!(
        (
            response.status,
            response.header("www-authenticate").is_some()
        ),
        (401, true)
    );
}

// Rule: two clients of one subscriber share its quota; the refusal is 429 with
// Retry-After and the IETF RateLimit fields.
#[test]
fn clients_share_quota() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    let statuses: Vec<u16> = [ACME_TOKEN, ACME_CI_TOKEN, ACME_TOKEN, ACME_CI_TOKEN]
        .iter()
        .map(|t| call(&gw, "/orders/a", Some(t)).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
    let refused = call(&gw, "/orders/a", Some(ACME_TOKEN));
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=86_400).contains(&retry)
            && refused.header("ratelimit-policy") == Some("\"quota\";q=3;w=86400")
            && refused
                .header("ratelimit")
                .is_some_and(|v| v.starts_with("\"quota\";r=0;t=")),
        "{:?}",
        refused.headers
    );
}

// Rule: the first plan in the subscriber's list that entitles the deployment wins.
#[test]
fn first_plan_wins() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let plans = r#"
[[usage_plans]]
name = "tiny"
[[usage_plans.entitlements]]
name = "o"
deployments = ["orders"]
quota = { limit = 1, period = "hour" }

[[usage_plans]]
name = "huge"
[[usage_plans.entitlements]]
name = "o"
deployments = ["orders"]

[[subscribers]]
name = "acme"
usage_plans = ["tiny", "huge"]
clients = [{ name = "prod", token = "acme-prod-token-0123456789" }]
"#;
    let gw = Gateway::start(&config(&up, &with_state(plans, state.path())));
    let statuses = [0; 2].map(|_| call(&gw, "/orders/a", Some(ACME_TOKEN)).status);
    assert_eq!(statuses, [200, 429]);
}

// Rule: over the per-second rate limit → 429 with Retry-After in whole seconds, at least 1.
#[test]
fn rate_limit_answers_429_with_retry_after() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let plans = r#"
[[usage_plans]]
name = "slow"
[[usage_plans.entitlements]]
name = "o"
deployments = ["orders"]
rate_limit = { requests_per_second = 0.01, burst = 2 }

[[subscribers]]
name = "acme"
usage_plans = ["slow"]
clients = [{ name = "prod", token = "acme-prod-token-0123456789" }]
"#;
    let gw = Gateway::start(&config(&up, &with_state(plans, state.path())));
    // One token every 100 s, so the third call is over the limit however slow the
    // machine (it would take 100 s between the calls to refill one).
    let started = std::time::Instant::now();
    let responses: Vec<Response> = (0..3)
        .map(|_| call(&gw, "/orders/a", Some(ACME_TOKEN)))
        .collect();
    let elapsed = started.elapsed().as_secs();
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 429]);
    // The burst was spent within `elapsed`: the next token is due 100 s after the
    // first call, so the wait is at most 100 whole seconds and less only by the time
    // the calls took.
    let retry: u64 = responses[2].header("retry-after").unwrap().parse().unwrap();
    assert!(
        retry <= 100
            && retry + elapsed + 1 >= 100
            && responses[2].header("ratelimit-policy") == Some("\"entitlement\";q=1;w=100"),
        "Retry-After {retry} after {elapsed} s: {:?}",
        responses[2].headers
    );
}

// Rule: `on_breach = allow` lets requests over the quota through, counted and
// flagged in the access log; `/usage` shows the count past the limit.
#[test]
fn quota_allow_passes_and_flags() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let log = state.path().join("access.log");
    let plans = format!(
        r#"
access_log = {{ path = "{}" }}
[[usage_plans]]
name = "soft"
[[usage_plans.entitlements]]
name = "o"
deployments = ["orders"]
quota = {{ limit = 1, period = "month", on_breach = "allow" }}

[[subscribers]]
name = "acme"
usage_plans = ["soft"]
clients = [{{ name = "prod", token = "acme-prod-token-0123456789" }}]
"#,
        log.display()
    );
    let gw = Gateway::start(&config(&up, &with_state(&plans, state.path())));
    let statuses = [0; 3].map(|_| call(&gw, "/orders/a", Some(ACME_TOKEN)).status);
    assert_eq!(statuses, [200, 200, 200]);
    let usage = get(gw.admin_addr(), "/usage?subscriber=acme").text();
    let json: serde_json::Value = serde_json::from_str(&usage).unwrap();
    let quota = &json["subscribers"][0]["entitlements"][0]["quota"];
    assert_eq!(
        (quota["used"].as_u64(), quota["remaining"].as_u64()),
        (Some(3), Some(0))
    );
    assert!(eventually(|| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.matches("\"quota_breached\":true").count() == 2
            && text.contains("\"subscriber\":\"acme\",\"client_name\":\"prod\"")
            && !text.contains(ACME_TOKEN)
    }));
}

// Rule: a deployment rate limit keyed by client address limits each address
// (after trusted proxies) separately; a forged X-Forwarded-For from an
// untrusted peer would change nothing (the peer here is trusted).
#[test]
fn deployment_limit_per_client_address() {
    let up = RecordingUpstream::ok();
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1/32"]

[[deployments]]
name = "open"
listener = "public"
rate_limit = {{ requests_per_second = 0.01, key = "client_ip", burst = 1 }}

[[deployments.routes]]
path = "/{{rest*}}"
backend = {{ type = "http", url = "http://{}/" }}
"#,
        up.addr()
    ));
    let from = |ip: &str| {
        request(
            gw.addr(),
            format!("GET /x HTTP/1.1\r\nHost: gw\r\nX-Forwarded-For: {ip}\r\n\r\n"),
        )
        .status
    };
    let statuses = [
        from("10.0.0.1"),
        from("10.0.0.1"),
        from("10.0.0.2"),
        from("2001:db8::1"),
        from("2001:db8::2"),
    ];
    assert_eq!(statuses, [200, 429, 200, 200, 429]);
}

// Rule: a deployment `total` limit is shared by every client.
#[test]
fn deployment_total_limit() {
    let up = RecordingUpstream::ok();
    let gw = Gateway::start(&format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "open"
listener = "public"
rate_limit = {{ requests_per_second = 0.01, burst = 2 }}

[[deployments.routes]]
path = "/{{rest*}}"
backend = {{ type = "http", url = "http://{}/" }}
"#,
        up.addr()
    ));
    let statuses = [0; 3].map(|_| get(gw.addr(), "/x").status);
    assert_eq!(statuses, [200, 200, 429]);
}

/// Rewrites a file the way editors save it.
fn write_then_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const GOLD_ONLY: &str = r#"
[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "orders"
deployments = ["orders"]
quota = { limit = 3, period = "day" }
"#;

fn subscribers_file(clients: &[(&str, &str)]) -> String {
    let list: Vec<String> = clients
        .iter()
        .map(|(name, token)| format!("{{ name = \"{name}\", token = \"{token}\" }}"))
        .collect();
    format!(
        "[[subscribers]]\nname = \"acme\"\nusage_plans = [\"gold\"]\nclients = [{}]\n",
        list.join(", ")
    )
}

// Rule: a client added to an included subscribers file works at once; a
// client removed from it is refused on an already open keep-alive connection.
#[test]
fn included_subscribers_file_edited_live() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let subs = state.path().join("subscribers.toml");
    std::fs::write(&subs, subscribers_file(&[("prod", ACME_TOKEN)])).unwrap();
    let extra = format!("include = [\"{}\"]\n{GOLD_ONLY}", subs.display());
    let gw = Gateway::start(&config(&up, &with_state(&extra, state.path())));
    let mut open = gw.connect();
    let on_open = |c: &mut Client, token: &str| {
        c.roundtrip(format!(
            "GET /orders/a HTTP/1.1\r\nHost: gw\r\nX-Client-Token: {token}\r\n\r\n"
        ))
        .status
    };
    assert_eq!(on_open(&mut open, ACME_TOKEN), 200);
    assert_eq!(call(&gw, "/orders/a", Some(ACME_CI_TOKEN)).status, 403);
    write_then_rename(&subs, &subscribers_file(&[("ci", ACME_CI_TOKEN)]));
    assert!(
        eventually(|| call(&gw, "/orders/a", Some(ACME_CI_TOKEN)).status == 200),
        "{}",
        gw.log_text()
    );
    assert_eq!(on_open(&mut open, ACME_TOKEN), 403);
    assert!(gw
        .log_text()
        .lines()
        .any(|l| l.contains("config reload") && l.contains("clients +1") && l.contains("-1")));
}

// Rule: a reload that leaves a quota alone keeps its count (no refill).
#[test]
fn reload_keeps_quota_count() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    for _ in 0..3 {
        assert_eq!(call(&gw, "/orders/a", Some(ACME_TOKEN)).status, 200);
    }
    let edited = format!(
        "{text}\n[[deployments]]\nname = \"new\"\nlistener = \"public\"\npath_prefix = \"/new\"\n[[deployments.routes]]\npath = \"/x\"\nbackend = {{ type = \"stock\", status = 204 }}\n"
    );
    write_then_rename(gw.config_path(), &edited);
    assert!(eventually(|| get(gw.addr(), "/new/x").status == 204));
    assert_eq!(call(&gw, "/orders/a", Some(ACME_TOKEN)).status, 429);
}

/// The one quota count in a `quota-counts.json` state file, if it is there.
fn saved_count(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["counters"][0]["used"].as_u64()
}

fn used_now(gw: &Gateway) -> u64 {
    let usage = get(gw.admin_addr(), "/usage?subscriber=acme").text();
    let json: serde_json::Value = serde_json::from_str(&usage).unwrap();
    json["subscribers"][0]["entitlements"][0]["quota"]["used"]
        .as_u64()
        .unwrap()
}

const BIG_QUOTA: &str = r#"
[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "orders"
deployments = ["orders"]
quota = { limit = 1000, period = "day" }

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{ name = "prod", token = "acme-prod-token-0123456789" }]
"#;

// Rule: quota counts survive a SIGTERM restart exactly.
#[test]
fn quota_survives_sigterm_restart() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let text = config(&up, &with_state(BIG_QUOTA, state.path()));
    let mut first = Gateway::start(&text);
    for _ in 0..7 {
        assert_eq!(call(&first, "/orders/a", Some(ACME_TOKEN)).status, 200);
    }
    first.sigterm();
    assert!(first.wait_exit(Duration::from_secs(10)).is_some());
    let second = Gateway::start(&text);
    assert_eq!(used_now(&second), 7);
}

// Rule: after SIGKILL at most one second of counts is lost: counts older than
// a second are all back.
//
// The periodic write (every 0.5 s) is what bounds the loss; the test waits for that
// write to hold the first counts (the state file, replaced whole by a rename) instead
// of sleeping past it, so it checks the same thing on a machine of any speed.
#[test]
fn quota_survives_sigkill_losing_at_most_a_second() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let text = config(&up, &with_state(BIG_QUOTA, state.path()));
    let mut first = Gateway::start(&text);
    for _ in 0..5 {
        assert_eq!(call(&first, "/orders/a", Some(ACME_TOKEN)).status, 200);
    }
    let saved = state.path().join("quota-counts.json");
    assert!(
        eventually_within(EVENT_TIMEOUT, || saved_count(&saved) == Some(5)),
        "the first 5 counts were never written to {}",
        saved.display()
    );
    // Counted after the last write the test saw: these may be lost.
    for _ in 0..3 {
        assert_eq!(call(&first, "/orders/a", Some(ACME_TOKEN)).status, 200);
    }
    std::process::Command::new("kill")
        .args(["-KILL", &first.pid().to_string()])
        .status()
        .unwrap();
    assert!(first.wait_exit(Duration::from_secs(5)).is_some());
    let second = Gateway::start(&text);
    let used = used_now(&second);
    assert!((5..=8).contains(&used), "used {used}");
}

// Rule: `check` refuses an unknown plan name and a too-short token, naming the key.
#[test]
fn check_refuses_bad_usage_config() {
    let dir = tempfile::tempdir().unwrap();
    let up = RecordingUpstream::ok();
    let cases = [
        (
            "[[subscribers]]\nname = \"a\"\nusage_plans = [\"nope\"]\nclients = [{ name = \"c\", token = \"0123456789abcdefg\" }]\n",
            "subscribers[0].usage_plans[0]",
        ),
        (
            "[[usage_plans]]\nname = \"p\"\n[[subscribers]]\nname = \"a\"\nusage_plans = [\"p\"]\nclients = [{ name = \"c\", token = \"short\" }]\n",
            "subscribers[0].clients[0].token",
        ),
        (
            "[[usage_plans]]\nname = \"p\"\n[[usage_plans.entitlements]]\nname = \"e\"\ndeployments = [\"ghost\"]\n",
            "usage_plans[0].entitlements[0].deployments[0]",
        ),
    ];
    for (extra, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, config(&up, extra)).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains(key), "{stderr}");
    }
}

// Rule: an error in an included file names that file and the line in it.
#[test]
fn error_in_included_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let up = RecordingUpstream::ok();
    std::fs::write(
        dir.path().join("subscribers.toml"),
        "# subscribers\n[[subscribers]]\nname = \"a\"\nusage_plans = [\"gold\"]\nclients = [{ name = \"c\", token = \"tiny\" }]\n",
    )
    .unwrap();
    let main = dir.path().join("gateway.toml");
    std::fs::write(
        &main,
        config(
            &up,
            &format!("include = [\"subscribers.toml\"]\n{GOLD_ONLY}"),
        ),
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&main)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success()
            && stderr.contains("subscribers.toml: line 5")
            && stderr.contains("subscribers[0].clients[0].token"),
        "{stderr}"
    );
}

// Rule: /metrics has per-subscriber request counts and quota proportions, and
// rejections under the usage-plan decision codes; no token appears in it.
#[test]
fn subscriber_metrics() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    for _ in 0..4 {
        call(&gw, "/orders/a", Some(ACME_TOKEN));
    }
    call(&gw, "/orders/a", None);
    let text = || get(gw.admin_addr(), "/metrics").text();
    assert!(
        eventually(|| {
            let t = text();
            t.contains("portcullis_subscriber_requests_total{subscriber=\"acme\"} 4")
                && t.contains("portcullis_subscriber_quota_used_ratio{subscriber=\"acme\",plan=\"gold\",entitlement=\"orders\"} 1")
                && t.contains("portcullis_decisions_total{decision=\"usagePlans.quotaExceeded\"} 1")
                && t.contains("portcullis_decisions_total{decision=\"usagePlans.requestRejected\"} 1")
        }),
        "{}",
        text()
    );
    assert!(!text().contains(ACME_TOKEN));
    assert!(!gw.log_text().contains(ACME_TOKEN));
}

// Rule: a subscriber removed by one reload and added back by the next keeps
// the quota it had used (no fresh quota by commenting it out).
#[test]
fn removed_and_restored_subscriber_keeps_quota() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let gw = Gateway::start(&config(&up, &with_state(PLANS, state.path())));
    let full = std::fs::read_to_string(gw.config_path()).unwrap();
    for _ in 0..3 {
        assert_eq!(call(&gw, "/orders/a", Some(ACME_TOKEN)).status, 200);
    }
    let start = full.find("[[subscribers]]\nname = \"acme\"").unwrap();
    let end = start + full[start..].find("\n\n").unwrap();
    write_then_rename(
        gw.config_path(),
        &format!("{}{}", &full[..start], &full[end..]),
    );
    assert!(eventually(|| call(&gw, "/orders/a", Some(ACME_TOKEN))
        .status
        == 403));
    write_then_rename(gw.config_path(), &full);
    assert!(eventually(|| call(&gw, "/orders/a", Some(ACME_TOKEN))
        .status
        != 403));
    assert_eq!(call(&gw, "/orders/a", Some(ACME_TOKEN)).status, 429);
}

// Rule: a CORS preflight is answered without a client token, and a refusal for
// a missing token carries the CORS fields so the browser can read it.
#[test]
fn preflight_needs_no_client_token() {
    let up = RecordingUpstream::ok();
    let state = tempfile::tempdir().unwrap();
    let text = config(&up, &with_state(PLANS, state.path())).replace(
        "usage_plans = { token_locations = [\"header:X-Client-Token\", \"query:api_key\"] }",
        "usage_plans = { token_locations = [\"header:X-Client-Token\", \"query:api_key\"] }\ncors = { allowed_origins = [\"https://app.test\"], allowed_methods = [\"GET\"], allowed_headers = [\"X-Client-Token\"] }",
    );
    let gw = Gateway::start(&text);
    let preflight = request(
        gw.addr(),
        "OPTIONS /orders/a HTTP/1.1\r\nHost: gw\r\nOrigin: https://app.test\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: X-Client-Token\r\n\r\n",
    );
    let refused = request(
        gw.addr(),
        "GET /orders/a HTTP/1.1\r\nHost: gw\r\nOrigin: https://app.test\r\n\r\n",
    );
    assert_eq!(
        (
            preflight.status,
            refused.status,
            refused.header("access-control-allow-origin")
        ),
        (204, 403, Some("https://app.test"))
    );
    up.assert_received_nothing(gw);
}
