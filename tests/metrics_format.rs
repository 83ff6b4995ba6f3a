//! `/metrics` is valid Prometheus text exposition (format 0.0.4) whatever the
//! operator named things: a deployment or subscriber name with a quote, a
//! backslash or a newline must not break a line. Checked two ways: by
//! Prometheus's own linter (`promtool check metrics`, installed by
//! scripts/install-test-deps.sh) and by the rules written out here (one HELP
//! and one TYPE per family, before its samples; no duplicate series;
//! histogram buckets cumulative, ending in `+Inf` equal to `_count`).

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::{Command, Stdio};

const TOKEN: &str = "metrics-format-token-0123456789";

fn config(upstream: std::net::SocketAddr) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "we\"ird\\dep"
listener = "public"
path_prefix = "/api"
usage_plans = {{ token_locations = ["header:X-Client-Token"] }}

[[deployments.routes]]
path = "/hello"
backend = {{ type = "stock", status = 200, body = "hi\n" }}

[[deployments.routes]]
path = "/up"
methods = ["GET", "POST"]
backend = {{ type = "http", url = "http://{upstream}/up" }}

[[usage_plans]]
name = "plan \"q\""
[[usage_plans.entitlements]]
name = "all\\of\nit"
deployments = ["we\"ird\\dep"]
quota = {{ limit = 1000, period = "day" }}

[[subscribers]]
name = "acme \"corp\"\\\nline two"
usage_plans = ["plan \"q\""]
clients = [{{ name = "one", token = "{TOKEN}" }}]
"#
    )
}

/// The metric family a sample belongs to (histogram suffixes stripped).
fn family(sample_name: &str, histograms: &HashSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = sample_name.strip_suffix(suffix) {
            if histograms.contains(base) {
                return base.to_string();
            }
        }
    }
    sample_name.to_string()
}

/// Checks the exposition rules; returns the problems found.
fn problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut help = HashSet::new();
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut histograms = HashSet::new();
    let mut series = HashSet::new();
    let mut buckets: HashMap<String, Vec<(String, f64)>> = HashMap::new();
    let mut counts: HashMap<String, f64> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("").to_string();
            if !help.insert(name.clone()) {
                problems.push(format!("HELP twice for {name}"));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if typed.insert(name.to_string(), kind.to_string()).is_some() {
                problems.push(format!("TYPE twice for {name}"));
            }
            if kind == "histogram" {
                histograms.insert(name.to_string());
            }
        } else if line.is_empty() || line.starts_with('#') {
            continue;
        } else {
            let Some((series_text, value)) = line.rsplit_once(' ') else {
                problems.push(format!("no value: {line:?}"));
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                problems.push(format!("bad value: {line:?}"));
                continue;
            };
            if !series.insert(series_text.to_string()) {
                problems.push(format!("duplicate series {series_text}"));
            }
            let name = series_text.split('{').next().unwrap_or("");
            let family = family(name, &histograms);
            if !typed.contains_key(&family) {
                problems.push(format!("sample before its TYPE: {line:?}"));
            }
            if let Some(labels) = name
                .strip_suffix("_bucket")
                .filter(|base| histograms.contains(*base))
                .and(series_text.split_once("le=\""))
            {
                let le = labels.1.split('"').next().unwrap_or("").to_string();
                buckets.entry(family).or_default().push((le, value));
            } else if name.ends_with("_count") && histograms.contains(&family) {
                counts.insert(family, value);
            }
        }
    }
    for (family, list) in &buckets {
        if list.windows(2).any(|w| w[1].1 < w[0].1) {
            problems.push(format!("{family} buckets not cumulative: {list:?}"));
        }
        match list.last() {
            Some((le, n)) if le == "+Inf" && Some(n) == counts.get(family) => {}
            last => problems.push(format!(
                "{family}: last bucket {last:?} is not +Inf = _count"
            )),
        }
    }
    problems
}

/// `promtool check metrics` on `text`: None when promtool is not installed.
fn promtool(text: &str) -> Option<(bool, String)> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success() && report.trim().is_empty(), report))
}

// Rule: /metrics passes promtool and the exposition rules with hostile names,
// traffic on every kind of series, and histograms filled.
#[test]
fn metrics_are_valid_exposition_with_hostile_names() {
    let up = RecordingUpstream::ok();
    let gw = Gateway::start(&config(up.addr()));
    let token = format!("X-Client-Token: {TOKEN}\r\n");
    for (target, extra, status) in [
        ("/api/hello", token.as_str(), 200),
        ("/api/up", token.as_str(), 200),
        ("/api/hello", "", 403),
        ("/api/missing", "", 404),
    ] {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: gw.test\r\n{extra}\r\n");
        assert_eq!(request(gw.addr(), raw).status, status, "{target}");
    }
    let admin = gw.admin_addr();
    // Histograms are published once a second.
    let mut text = String::new();
    assert!(
        eventually(|| {
            text = get(admin, "/metrics").text();
            text.contains("portcullis_backend_duration_seconds_count 1")
                && text.contains("portcullis_request_duration_seconds_count 4")
        }),
        "{text}"
    );
    assert!(
        text.contains(r#"subscriber="acme \"corp\"\\\nline two""#),
        "escaped subscriber label: {text}"
    );
    let found = problems(&text);
    assert!(found.is_empty(), "{found:#?}\n{text}");
    match promtool(&text) {
        Some((clean, report)) => assert!(clean, "promtool check metrics:\n{report}\n{text}"),
        None if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("promtool is not installed (scripts/install-test-deps.sh installs it)")
        }
        None => eprintln!("promtool not installed: checked the exposition rules only"),
    }
}
