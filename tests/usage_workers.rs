//! Requests per subscriber with two workers, over real sockets: each worker
//! counts on its own and adds its count to the subscriber's total on its
//! tick, so `/usage` and `/metrics` show every request whichever worker
//! served it, and a reload that keeps the subscriber keeps its count.

mod common;

use common::*;

const TOKEN: &str = "acme-token-0123456789abcdef";

/// Deployment `api` (client token in `X-Client-Token`, stock answers),
/// subscriber `acme` entitled to it.
fn config() -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"
usage_plans = {{ token_locations = ["header:X-Client-Token"] }}

[[deployments.routes]]
path = "/{{rest*}}"
backend = {{ type = "stock", status = 200 }}

[[usage_plans]]
name = "basic"
[[usage_plans.entitlements]]
name = "api"
deployments = ["api"]

[[subscribers]]
name = "acme"
usage_plans = ["basic"]
clients = [{{ name = "prod", token = "{TOKEN}" }}]
"#
    )
}

fn two_workers(config_text: &str) -> Gateway {
    Gateway::start_with_args(config_text, &["--workers", "2"])
}

/// Sends `n` requests with acme's token, each on a connection of its own (so
/// the kernel spreads them over the workers); every one must be answered 200.
fn calls(gw: &Gateway, n: usize) {
    for i in 0..n {
        let response = request(
            gw.addr(),
            format!("GET /api/{i} HTTP/1.1\r\nHost: gw.test\r\nX-Client-Token: {TOKEN}\r\n\r\n"),
        );
        assert_eq!(response.status, 200, "request {i}: {}", response.text());
    }
}

/// acme's `requests` in `/usage`.
fn usage_requests(gw: &Gateway) -> Option<u64> {
    let body = get(gw.admin_addr(), "/usage?subscriber=acme").text();
    let report: serde_json::Value = serde_json::from_str(&body).ok()?;
    report["subscribers"][0]["requests"].as_u64()
}

/// Answers per worker, from `/metrics`.
fn worker_answers(gw: &Gateway) -> Vec<u64> {
    get(gw.admin_addr(), "/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("portcullis_worker_responses_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// Whether `/usage` and `/metrics` both count `n` requests of acme.
fn counted(gw: &Gateway, n: u64) -> bool {
    let series = format!("portcullis_subscriber_requests_total{{subscriber=\"acme\"}} {n}\n");
    usage_requests(gw) == Some(n) && get(gw.admin_addr(), "/metrics").text().contains(&series)
}

// Rule: requests served by two workers are all counted in `/usage` and `/metrics`.
#[test]
fn requests_over_two_workers_all_counted() {
    let gw = two_workers(&config());
    calls(&gw, 40);
    assert!(
        eventually(|| worker_answers(&gw).iter().sum::<u64>() == 40),
        "{:?}",
        worker_answers(&gw)
    );
    let answers = worker_answers(&gw);
    assert!(
        answers.len() == 2 && answers.iter().all(|&n| n > 0),
        "both workers must have served some of the requests: {answers:?}"
    );
    assert!(
        eventually(|| counted(&gw, 40)),
        "/usage says {:?}\n{}",
        usage_requests(&gw),
        gw.log_text()
    );
}

// Rule: a reload that keeps the subscriber keeps its count; requests on
// either side of it are all counted.
#[test]
fn reload_keeps_the_request_count() {
    let gw = two_workers(&config());
    calls(&gw, 10);
    let text = std::fs::read_to_string(gw.config_path()).unwrap();
    let edited = format!(
        "{text}\n[[deployments]]\nname = \"new\"\nlistener = \"public\"\npath_prefix = \"/new\"\n[[deployments.routes]]\npath = \"/x\"\nbackend = {{ type = \"stock\", status = 204 }}\n"
    );
    let tmp = gw.config_path().with_extension("swp");
    std::fs::write(&tmp, edited).unwrap();
    std::fs::rename(&tmp, gw.config_path()).unwrap();
    assert!(
        eventually(|| get(gw.addr(), "/new/x").status == 204),
        "{}",
        gw.log_text()
    );
    calls(&gw, 10);
    assert!(
        eventually(|| counted(&gw, 20)),
        "/usage says {:?}",
        usage_requests(&gw)
    );
}
