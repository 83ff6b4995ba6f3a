//! The Prometheus text exposition of `/metrics`: counters and histograms
//! summed over workers at scrape time (the admin thread's work, never a
//! worker's).

use super::AdminState;
use crate::snapshot::{RouteSpec, Snapshot};
use crate::telemetry::counters::{
    merged, total, Latency, DECISIONS, STATUS_CLASSES, WEBSOCKET_ENDS,
};
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// Upper bounds (seconds) of the latency histogram buckets.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The text exposition being written: one family (`# HELP`, `# TYPE`) after
/// another, each followed by its samples.
struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts a family.
    fn family(&mut self, name: &str, kind: &str, help: &str) -> &mut Self {
        metric(&mut self.out, name, kind, help);
        self
    }

    /// One sample; `labels` already escaped (`a="b",c="d"`), or empty.
    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) -> &mut Self {
        if labels.is_empty() {
            let _ = writeln!(self.out, "{name} {value}");
        } else {
            let _ = writeln!(self.out, "{name}{{{labels}}} {value}");
        }
        self
    }

    /// A family with one sample and no labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help).sample(name, "", value);
    }
}

/// The Prometheus text exposition.
pub fn metrics(state: &AdminState) -> String {
    let mut x = Exposition {
        out: String::with_capacity(8192),
    };
    let snapshot = state.store.load();
    let workers = &state.workers;
    let reloads = &state.reloads;
    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    x.single(
        "portcullis_config_generation",
        "gauge",
        "Generation of the running configuration.",
        snapshot.generation,
    );
    let name = "portcullis_config_reloads_total";
    x.family(name, "counter", "Configuration reload attempts by result.")
        .sample(name, "result=\"applied\"", count(&reloads.applied))
        .sample(name, "result=\"rejected\"", count(&reloads.failed))
        .sample(name, "result=\"unchanged\"", count(&reloads.unchanged));
    x.single(
        "portcullis_workers",
        "gauge",
        "Worker threads serving.",
        state.ready_workers.load(Ordering::Acquire),
    );
    let name = "portcullis_responses_total";
    x.family(
        name,
        "counter",
        "Answers to clients by status class, routed or not.",
    );
    for class in 0..STATUS_CLASSES {
        let n = total(workers, |w| &w.requests_by_class[class]);
        x.sample(name, &format!("status_class=\"{}xx\"", class + 1), n);
    }
    let name = "portcullis_worker_responses_total";
    x.family(
        name,
        "counter",
        "Answers to clients by worker (how evenly the kernel spreads connections).",
    );
    for (id, worker) in workers.iter().enumerate() {
        let n: u64 = worker.requests_by_class.iter().map(count).sum();
        x.sample(name, &format!("worker=\"{id}\""), n);
    }
    x.single(
        "portcullis_subscribers",
        "gauge",
        "Subscribers in the running configuration.",
        snapshot.usage.subscribers.len(),
    );
    let clients: usize = snapshot
        .usage
        .subscribers
        .iter()
        .map(|s| s.clients.len())
        .sum();
    x.single(
        "portcullis_subscriber_clients",
        "gauge",
        "Client credentials in the running configuration.",
        clients,
    );
    subscriber_series(&mut x.out, &snapshot);
    let name = "portcullis_decisions_total";
    x.family(
        name,
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
        x.sample(name, &format!("decision=\"{code}\""), n);
    }
    route_series(&mut x, &snapshot);
    super::servers::server_series(&mut x.out, &snapshot);
    x.single(
        "portcullis_received_bytes_total",
        "counter",
        "Request bytes received (head and body).",
        total(workers, |w| &w.bytes_in),
    );
    x.single(
        "portcullis_sent_bytes_total",
        "counter",
        "Response bytes sent.",
        total(workers, |w| &w.bytes_out),
    );
    histogram(
        &mut x.out,
        "portcullis_request_duration_seconds",
        "Time from a complete request head to the end of the answer.",
        &merged(workers, |w| &w.request_latency),
    );
    histogram(
        &mut x.out,
        "portcullis_backend_duration_seconds",
        "Time spent in the exchange with the back end.",
        &merged(workers, |w| &w.backend_latency),
    );
    x.single(
        "portcullis_connections_accepted_total",
        "counter",
        "Client connections accepted.",
        total(workers, |w| &w.connections_accepted),
    );
    let name = "portcullis_connections_refused_total";
    x.family(name, "counter", "Connections closed at accept, by reason.");
    for (i, reason) in ["network_rule", "per_address_cap"].iter().enumerate() {
        let n = total(workers, |w| &w.connections_refused[i]);
        x.sample(name, &format!("reason=\"{reason}\""), n);
    }
    x.single(
        "portcullis_tls_handshakes_total",
        "counter",
        "Client TLS handshakes completed on TLS listeners.",
        total(workers, |w| &w.tls_handshakes[0]),
    );
    x.single(
        "portcullis_tls_handshake_failures_total",
        "counter",
        "Client TLS handshakes that failed or timed out (the connection was closed).",
        total(workers, |w| &w.tls_handshakes[1]),
    );
    x.single(
        "portcullis_connections_active",
        "gauge",
        "Client connections open.",
        total(workers, |w| &w.connections_active),
    );
    x.single(
        "portcullis_websockets_active",
        "gauge",
        "WebSockets open (relayed after their 101).",
        total(workers, |w| &w.websockets_active),
    );
    x.single(
        "portcullis_websockets_total",
        "counter",
        "WebSocket upgrades accepted by back ends and relayed.",
        total(workers, |w| &w.websockets_total),
    );
    let name = "portcullis_websocket_ends_total";
    x.family(
        name,
        "counter",
        "Relayed WebSockets ended, by how they ended.",
    );
    for (i, end) in WEBSOCKET_ENDS.iter().enumerate() {
        let n = total(workers, |w| &w.websocket_ends[i]);
        x.sample(name, &format!("end=\"{end}\""), n);
    }
    if let Some(log) = &state.access_log {
        let name = "portcullis_access_log_lines_total";
        x.family(name, "counter", "Access log lines by fate.")
            .sample(name, "result=\"written\"", count(&log.lines_written))
            .sample(name, "result=\"dropped\"", count(&log.lines_dropped));
        x.single(
            "portcullis_access_log_reopens_total",
            "counter",
            "Times the access log file was reopened.",
            count(&log.reopens),
        );
    }
    crate::cluster::stats::write_metrics(&mut x.out);
    x.out
}

/// Requests, received and sent bytes per route.
fn route_series(x: &mut Exposition, snapshot: &Snapshot) {
    let name = "portcullis_requests_total";
    x.family(
        name,
        "counter",
        "Routed requests by deployment, route and status class.",
    );
    let mut route_bytes = Vec::with_capacity(snapshot.routes.len());
    for route in &snapshot.routes {
        let (classes, bytes_in, bytes_out) = route.stats.totals();
        let labels = route_labels(snapshot, route);
        for (class, n) in classes.iter().enumerate() {
            x.sample(
                name,
                &format!("{labels},status_class=\"{}xx\"", class + 1),
                n,
            );
        }
        route_bytes.push((labels, bytes_in, bytes_out));
    }
    let name = "portcullis_route_received_bytes_total";
    x.family(name, "counter", "Request bytes (head and body) by route.");
    for (labels, bytes_in, _) in &route_bytes {
        x.sample(name, labels, bytes_in);
    }
    let name = "portcullis_route_sent_bytes_total";
    x.family(name, "counter", "Response bytes by route.");
    for (labels, _, bytes_out) in &route_bytes {
        x.sample(name, labels, bytes_out);
    }
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

/// Latencies (recorded in microseconds) as a Prometheus histogram in seconds;
/// `_sum` is the exact sum of the recorded values, written as a decimal.
fn histogram(out: &mut String, name: &str, help: &str, latency: &Latency) {
    let h = &latency.histogram;
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
    let sum = latency.sum_micros;
    let _ = writeln!(out, "{name}_sum {}.{:06}", sum / 1_000_000, sum % 1_000_000);
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

#[cfg(test)]
mod tests {
    use super::*;

    // Rule: a histogram's `_sum` is the exact sum of the recorded microseconds, in seconds.
    #[test]
    fn histogram_sum_is_exact() {
        let mut latency = Latency::new();
        for micros in [123_457, 7, 1_999_999] {
            latency.record(micros);
        }
        let mut out = String::new();
        histogram(&mut out, "x", "help", &latency);
        assert!(
            out.contains("\nx_sum 2.123463\n") && out.contains("\nx_count 3\n"),
            "{out}"
        );
    }
}
