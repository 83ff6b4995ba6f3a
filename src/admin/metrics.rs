//! The Prometheus text exposition of `/metrics`: counters and histograms
//! summed over workers at scrape time (the admin thread's work, never a
//! worker's).

use super::AdminState;
use crate::snapshot::{RouteSpec, Snapshot};
use crate::telemetry::counters::{merged, total, DECISIONS, STATUS_CLASSES};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The Prometheus text exposition.
pub fn metrics(state: &AdminState) -> String {
    let mut out = String::with_capacity(8192);
    let snapshot = state.store.load();
    let workers = &state.workers;
    let reloads = &state.reloads;
    metric(
        &mut out,
        "portcullis_config_generation",
        "gauge",
        "Generation of the running configuration.",
    );
    let _ = writeln!(out, "portcullis_config_generation {}", snapshot.generation);
    metric(
        &mut out,
        "portcullis_config_reloads_total",
        "counter",
        "Configuration reload attempts by result.",
    );
    for (result, counter) in [
        ("applied", &reloads.applied),
        ("rejected", &reloads.failed),
        ("unchanged", &reloads.unchanged),
    ] {
        let _ = writeln!(
            out,
            "portcullis_config_reloads_total{{result=\"{result}\"}} {}",
            counter.load(Ordering::Relaxed)
        );
    }
    metric(
        &mut out,
        "portcullis_workers",
        "gauge",
        "Worker threads serving.",
    );
    let _ = writeln!(
        out,
        "portcullis_workers {}",
        state.ready_workers.load(Ordering::Acquire)
    );
    metric(
        &mut out,
        "portcullis_responses_total",
        "counter",
        "Answers to clients by status class, routed or not.",
    );
    for class in 0..STATUS_CLASSES {
        let n = total(workers, |w| &w.requests_by_class[class]);
        let _ = writeln!(
            out,
            "portcullis_responses_total{{status_class=\"{}xx\"}} {n}",
            class + 1
        );
    }
    metric(
        &mut out,
        "portcullis_worker_responses_total",
        "counter",
        "Answers to clients by worker (how evenly the kernel spreads connections).",
    );
    for (id, worker) in workers.iter().enumerate() {
        let n: u64 = worker
            .requests_by_class
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(
            out,
            "portcullis_worker_responses_total{{worker=\"{id}\"}} {n}"
        );
    }
    let snapshot = state.store.load();
    metric(
        &mut out,
        "portcullis_subscribers",
        "gauge",
        "Subscribers in the running configuration.",
    );
    let _ = writeln!(
        out,
        "portcullis_subscribers {}",
        snapshot.usage.subscribers.len()
    );
    metric(
        &mut out,
        "portcullis_subscriber_clients",
        "gauge",
        "Client credentials in the running configuration.",
    );
    let clients: usize = snapshot
        .usage
        .subscribers
        .iter()
        .map(|s| s.clients.len())
        .sum();
    let _ = writeln!(out, "portcullis_subscriber_clients {clients}");
    subscriber_series(&mut out, &snapshot);
    metric(
        &mut out,
        "portcullis_decisions_total",
        "counter",
        "Requests by the decision that settled them.",
    );
    // Decisions that share a code (the usage-plan rejections) are one series.
    let mut by_code: Vec<(&str, u64)> = Vec::with_capacity(DECISIONS.len());
    for (i, decision) in DECISIONS.iter().enumerate() {
        let n = total(workers, |w| &w.decisions[i]);
        match by_code
            .iter_mut()
            .find(|(code, _)| *code == decision.code())
        {
            Some((_, sum)) => *sum += n,
            None => by_code.push((decision.code(), n)),
        }
    }
    for (code, n) in by_code {
        let _ = writeln!(out, "portcullis_decisions_total{{decision=\"{code}\"}} {n}");
    }
    metric(
        &mut out,
        "portcullis_requests_total",
        "counter",
        "Routed requests by deployment, route and status class.",
    );
    let mut route_bytes = Vec::with_capacity(snapshot.routes.len());
    for route in &snapshot.routes {
        let (classes, bytes_in, bytes_out) = route.stats.totals();
        let labels = route_labels(&snapshot, route);
        for (class, n) in classes.iter().enumerate() {
            let _ = writeln!(
                out,
                "portcullis_requests_total{{{labels},status_class=\"{}xx\"}} {n}",
                class + 1
            );
        }
        route_bytes.push((labels, bytes_in, bytes_out));
    }
    metric(
        &mut out,
        "portcullis_route_received_bytes_total",
        "counter",
        "Request bytes (head and body) by route.",
    );
    for (labels, bytes_in, _) in &route_bytes {
        let _ = writeln!(
            out,
            "portcullis_route_received_bytes_total{{{labels}}} {bytes_in}"
        );
    }
    metric(
        &mut out,
        "portcullis_route_sent_bytes_total",
        "counter",
        "Response bytes by route.",
    );
    for (labels, _, bytes_out) in &route_bytes {
        let _ = writeln!(
            out,
            "portcullis_route_sent_bytes_total{{{labels}}} {bytes_out}"
        );
    }
    metric(
        &mut out,
        "portcullis_received_bytes_total",
        "counter",
        "Request bytes received (head and body).",
    );
    let _ = writeln!(
        out,
        "portcullis_received_bytes_total {}",
        total(workers, |w| &w.bytes_in)
    );
    metric(
        &mut out,
        "portcullis_sent_bytes_total",
        "counter",
        "Response bytes sent.",
    );
    let _ = writeln!(
        out,
        "portcullis_sent_bytes_total {}",
        total(workers, |w| &w.bytes_out)
    );
    histogram(
        &mut out,
        "portcullis_request_duration_seconds",
        "Time from a complete request head to the end of the answer.",
        &merged(workers, |w| &w.request_latency),
    );
    histogram(
        &mut out,
        "portcullis_backend_duration_seconds",
        "Time spent in the exchange with the back end.",
        &merged(workers, |w| &w.backend_latency),
    );
    metric(
        &mut out,
        "portcullis_connections_accepted_total",
        "counter",
        "Client connections accepted.",
    );
    let _ = writeln!(
        out,
        "portcullis_connections_accepted_total {}",
        total(workers, |w| &w.connections_accepted)
    );
    metric(
        &mut out,
        "portcullis_connections_refused_total",
        "counter",
        "Connections closed at accept, by reason.",
    );
    for (i, reason) in ["network_rule", "per_address_cap"].iter().enumerate() {
        let n = total(workers, |w| &w.connections_refused[i]);
        let _ = writeln!(
            out,
            "portcullis_connections_refused_total{{reason=\"{reason}\"}} {n}"
        );
    }
    metric(
        &mut out,
        "portcullis_tls_handshakes_total",
        "counter",
        "Client TLS handshakes completed on TLS listeners.",
    );
    let _ = writeln!(
        out,
        "portcullis_tls_handshakes_total {}",
        total(workers, |w| &w.tls_handshakes[0])
    );
    metric(
        &mut out,
        "portcullis_tls_handshake_failures_total",
        "counter",
        "Client TLS handshakes that failed or timed out (the connection was closed).",
    );
    let _ = writeln!(
        out,
        "portcullis_tls_handshake_failures_total {}",
        total(workers, |w| &w.tls_handshakes[1])
    );
    metric(
        &mut out,
        "portcullis_connections_active",
        "gauge",
        "Client connections open.",
    );
    let _ = writeln!(
        out,
        "portcullis_connections_active {}",
        total(workers, |w| &w.connections_active)
    );
    if let Some(log) = &state.access_log {
        metric(
            &mut out,
            "portcullis_access_log_lines_total",
            "counter",
            "Access log lines by fate.",
        );
        let _ = writeln!(
            out,
            "portcullis_access_log_lines_total{{result=\"written\"}} {}",
            log.lines_written.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "portcullis_access_log_lines_total{{result=\"dropped\"}} {}",
            log.lines_dropped.load(Ordering::Relaxed)
        );
        metric(
            &mut out,
            "portcullis_access_log_reopens_total",
            "counter",
            "Times the access log file was reopened.",
        );
        let _ = writeln!(
            out,
            "portcullis_access_log_reopens_total {}",
            log.reopens.load(Ordering::Relaxed)
        );
    }
    out
}

/// `deployment="..",route="..",methods=".."` with Prometheus escaping.
fn route_labels(snapshot: &Snapshot, route: &RouteSpec) -> String {
    let deployment = &snapshot.deployments[route.deployment].name;
    let methods = if route.methods.is_empty() {
        "*".to_string()
    } else {
        route.methods.join(",")
    };
    format!(
        "deployment=\"{}\",route=\"{}\",methods=\"{}\"",
        escape_label(deployment),
        escape_label(&route.pattern),
        escape_label(&methods)
    )
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A latency histogram (recorded in microseconds) as a Prometheus histogram in seconds.
fn histogram(out: &mut String, name: &str, help: &str, h: &Histogram<u64>) {
    metric(out, name, "histogram", help);
    for bound in LATENCY_BUCKETS {
        let micros = (bound * 1_000_000.0) as u64;
        let count = if h.is_empty() {
            0
        } else {
            h.count_between(0, micros)
        };
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {count}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.len());
    let _ = writeln!(
        out,
        "{name}_sum {}",
        h.mean() * h.len() as f64 / 1_000_000.0
    );
    let _ = writeln!(out, "{name}_count {}", h.len());
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Per-subscriber series for the busiest `max_subscriber_series` subscribers:
/// requests that presented their tokens, and each quota's proportion used
/// (OCI's `SubscriberRequests` and `SubscriberQuotaProportionUsed`).
fn subscriber_series(out: &mut String, snapshot: &crate::snapshot::Snapshot) {
    use std::fmt::Write;
    let cap = snapshot.max_subscriber_series;
    if cap == 0 || snapshot.usage.subscribers.is_empty() {
        return;
    }
    let mut busiest: Vec<(u64, &crate::policy::usage::SubscriberSpec)> = snapshot
        .usage
        .subscribers
        .iter()
        .map(|s| (s.requests.load(Ordering::Relaxed), s))
        .filter(|(n, _)| *n > 0)
        .collect();
    busiest.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    busiest.truncate(cap);
    metric(
        out,
        "portcullis_subscriber_requests_total",
        "counter",
        "Requests that presented a subscriber's client token (the busiest subscribers, up to metrics.max_subscriber_series).",
    );
    for (n, s) in &busiest {
        let _ = writeln!(
            out,
            "portcullis_subscriber_requests_total{{subscriber=\"{}\"}} {n}",
            escape_label(&s.name)
        );
    }
    metric(
        out,
        "portcullis_subscriber_quota_used_ratio",
        "gauge",
        "Proportion of each quota used in its current period (same subscribers).",
    );
    let now = crate::time::clock::now().unix_secs;
    for (_, s) in &busiest {
        for grant in &s.grants {
            let entitlement = snapshot.usage.entitlement(grant);
            if let (Some(counter), Some(q)) = (&grant.quota, &entitlement.quota) {
                let used = counter.used(q.period, now) as f64 / q.limit as f64;
                let plan = &snapshot.usage.plans[grant.plan as usize].name;
                let _ = writeln!(
                    out,
                    "portcullis_subscriber_quota_used_ratio{{subscriber=\"{}\",plan=\"{}\",entitlement=\"{}\"}} {used}",
                    escape_label(&s.name),
                    escape_label(plan),
                    escape_label(&entitlement.name)
                );
            }
        }
    }
}
